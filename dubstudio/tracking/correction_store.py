"""Tracking corrections in the project: ``edits/tracking_corrections.json`` (+ an autosave).

Only the user's inputs are stored (moved landmarks, nudges, settings; see
``dubstudio.tracking.correction`` for the format); the tracker's file is read and never written.
``corrected_tracking(project)`` is what downstream stages (curves, renderer, export) use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import atomic_write_json
from dubstudio.tracking.correction import CorrectionSettings, FrameCorrection, TrackingCorrector
from dubstudio.tracking.face_model import FaceModel
from dubstudio.tracking.result import Tracking

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KIND = "dubstudio.tracking_corrections"
CORRECTIONS_FILE = "edits/tracking_corrections.json"
AUTOSAVE_FILE = "edits/tracking_corrections.autosave.json"


def tracking_sha256(t: Tracking) -> str:
    """Hash of a tracking's fitted parameters (what corrections are made over)."""
    h = hashlib.sha256()
    for a in (t.scale, t.rotation, t.translation, t.controls, t.residual, t.has_face):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class CorrectionStore:
    """Saves, loads, autosaves and recovers one project's tracking corrections."""

    def __init__(self, project) -> None:
        self.project = project

    @property
    def path(self) -> Path:
        return self.project.path(CORRECTIONS_FILE)

    @property
    def autosave_path(self) -> Path:
        return self.project.path(AUTOSAVE_FILE)

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, corrector: TrackingCorrector) -> Path | None:
        """Write the corrections (or delete the file when there are none) and drop the autosave."""
        self._write(self.path, corrector)
        self.autosave_path.unlink(missing_ok=True)
        return self.path if self.path.is_file() else None

    def autosave(self, corrector: TrackingCorrector) -> Path:
        self._write(self.autosave_path, corrector, keep_empty=True)
        return self.autosave_path

    def discard_autosave(self) -> None:
        self.autosave_path.unlink(missing_ok=True)

    def _write(self, path: Path, c: TrackingCorrector, keep_empty: bool = False) -> None:
        if not c.corrections and not keep_empty:
            path.unlink(missing_ok=True)  # nothing corrected: no file (a reset shot stays clean)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"cannot create {path.parent}: {e.strerror}; check free space and permissions.") from e
        atomic_write_json(path, {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "saved_ns": time.time_ns(),
            "n_frames": c.n_frames,
            "tracking_sha256": tracking_sha256(c.original),
            "settings": dataclasses.asdict(c.settings),
            "frames": [corr.to_json(f) for f, corr in sorted(c.corrections.items())],
        })

    def load(self, tracking: Tracking, model: FaceModel | None = None, autosave: bool = False) -> TrackingCorrector:
        """A corrector over ``tracking`` with the saved (or autosaved) corrections; none saved
        gives a corrector with no corrections. A damaged file raises ProjectError."""
        path = self.autosave_path if autosave else self.path
        if not path.is_file():
            return TrackingCorrector(tracking, model=model)
        corrections, settings = self._read(path, tracking)
        return TrackingCorrector(tracking, corrections, settings, model=model)

    def recovery_available(self) -> bool:
        auto = _saved_ns(self.autosave_path)
        if auto is None:
            return False
        saved = _saved_ns(self.path)
        return saved is None or auto > saved

    def _read(self, path: Path, tracking: Tracking) -> tuple[dict[int, FrameCorrection], CorrectionSettings]:
        what = f"{path} is damaged"
        fix = "delete it to go back to the tracker's result, or restore it from a backup"
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProjectError(f"{what} ({e}); {fix}.") from e
        except OSError as e:
            raise ProjectError(f"cannot read {path}: {e.strerror}; check file permissions.") from e
        if not isinstance(d, dict) or d.get("kind") != KIND or not isinstance(d.get("schema_version"), int):
            raise ProjectError(f"{what} (not a DubStudio tracking-corrections file); {fix}.")
        if d["schema_version"] > SCHEMA_VERSION:
            raise ProjectError(
                f"{path} was saved by a newer DubStudio (corrections schema {d['schema_version']}, this "
                f"version reads up to {SCHEMA_VERSION}); update DubStudio to open these corrections."
            )
        try:
            if int(d["n_frames"]) != tracking.n_frames:
                raise ProjectError(
                    f"{path} corrects {d['n_frames']} frames but the tracking has {tracking.n_frames}; the shot "
                    f"was re-tracked differently. Delete the file to start from the new tracking."
                )
            if d.get("tracking_sha256") not in (None, tracking_sha256(tracking)):
                log.warning("%s was made over another tracking (shot re-tracked); corrections are kept", path)
            settings = CorrectionSettings(**dict(d.get("settings") or {}))
            corrections = {}
            for entry in d["frames"]:
                f, corr = FrameCorrection.from_json(entry)
                if not 0 <= f < tracking.n_frames:
                    raise ValueError(f"frame {f} is outside the shot")
                if not tracking.has_face[f]:
                    log.warning("%s: frame %d has no face any more; its correction is dropped", path, f)
                    continue
                corrections[f] = corr
        except ProjectError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise ProjectError(f"{what} (bad entry: {type(e).__name__}: {e}); {fix}.") from e
        return corrections, settings


def _saved_ns(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["saved_ns"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def corrected_tracking(project, tracking: Tracking | None = None) -> Tracking:
    """The tracking downstream stages use (curves, renderer, export): the tracker's result with
    the saved corrections applied (the tracker's own when there are none)."""
    if tracking is None:
        rec = project.stage_record("track")
        if not rec or "tracking" not in rec.get("outputs", {}):
            raise ProjectError(f"{project.root} has no tracking yet; run `dubstudio track` first.")
        tracking = Tracking.load(project.path(rec["outputs"]["tracking"]))
    store = CorrectionStore(project)
    if not store.exists():
        return tracking
    return store.load(tracking).tracking
