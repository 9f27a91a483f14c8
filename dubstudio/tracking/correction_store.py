"""Tracking corrections in the project: ``edits/tracking_corrections.json`` (+ an autosave).

Only the user's inputs are stored (moved landmarks, nudges, settings; see
``dubstudio.tracking.correction`` for the format); the tracker's file is read and never written.
Downstream stages (curves, renderer, export) read the corrected tracking through
``shot.tracking.tracking_of``. Saving, the autosave and recovery are ``EditFileStore``'s.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any


from dubstudio.core.errors import ProjectError
from dubstudio.project.edit_store import EditFileStore, array_sha256
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
    return array_sha256(t.scale, t.rotation, t.translation, t.controls, t.residual, t.has_face)


class CorrectionStore(EditFileStore):
    """Saves, loads, autosaves and recovers one project's tracking corrections."""

    KIND = KIND
    SCHEMA_VERSION = SCHEMA_VERSION
    FILE = CORRECTIONS_FILE
    AUTOSAVE_FILE = AUTOSAVE_FILE
    NOUN = "tracking-corrections"
    SCHEMA_NOUN = "corrections"
    THESE = "these corrections"
    FIX = "delete it to go back to the tracker's result, or restore it from a backup"

    def _write(self, path: Path, c: TrackingCorrector, autosave: bool) -> None:
        if not c.corrections and not autosave:
            path.unlink(missing_ok=True)  # nothing corrected: no file (a reset shot stays clean)
            return
        super()._write(path, c, autosave)

    def _body(self, c: TrackingCorrector, folder: Path) -> dict[str, Any]:
        return {
            "n_frames": c.n_frames,
            "tracking_sha256": tracking_sha256(c.original),
            "settings": dataclasses.asdict(c.settings),
            "frames": [corr.to_json(f) for f, corr in sorted(c.corrections.items())],
        }

    def load(self, tracking: Tracking, model: FaceModel | None = None, autosave: bool = False) -> TrackingCorrector:
        """A corrector over ``tracking`` with the saved (or autosaved) corrections; none saved
        gives a corrector with no corrections. A damaged file raises ProjectError."""
        path = self.autosave_path if autosave else self.path
        if not path.is_file():
            return TrackingCorrector(tracking, model=model)
        corrections, settings = self._read(path, tracking)
        return TrackingCorrector(tracking, corrections, settings, model=model)

    def _read(self, path: Path, tracking: Tracking) -> tuple[dict[int, FrameCorrection], CorrectionSettings]:
        d = self._read_document(path)
        what, fix = self.damaged(path), self.FIX
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
