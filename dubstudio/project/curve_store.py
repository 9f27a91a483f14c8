"""Curve edits in the project: ``edits/curves.json`` (+ driven curves as npz) and an autosave.

Only the edits are stored (keys, the driven layer, settings); the tracked curves stay in the
tracking file, which is read and never written here. ``curves.json`` (schema 1)::

    {"schema_version": 1, "kind": "dubstudio.curves", "saved_at": "...", "saved_ns": 1700...,
     "n_frames": 500, "controls": ["jaw_open", ...], "ease_frames": 3, "tracked_sha256": "...",
     "keys": {"jaw_open": [{"frame": 12, "value": 0.7, "interp": "smooth", "mode": "replace"}]},
     "driven": {"file": "driven-<hash>.npz", "sha256": "...", "controls": ["jaw_open"],
                "sources": {"jaw_open": "audio:speech_en.wav"}} | null}

Driven npz files are content-addressed (named by their hash) and written before the JSON that
references them, so a crash between the two leaves the previous save intact; files no longer
referenced are deleted afterwards. ``autosave(curves)`` writes the same format to
``edits/autosave.json``; ``recover()`` offers it when it is newer than ``curves.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.core.curves import ControlCurves, Key
from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import atomic_save_npz, atomic_write_json
from dubstudio.project.store import Project

SCHEMA_VERSION = 1
KIND = "dubstudio.curves"
EDITS_DIR = "edits"
CURVES_FILE = f"{EDITS_DIR}/curves.json"
AUTOSAVE_FILE = f"{EDITS_DIR}/autosave.json"

log = logging.getLogger(__name__)


def tracked_controls(project: Project) -> np.ndarray:
    """(N, C) tracked controls (with the editor's saved tracking corrections), read-only access."""
    rec = project.stage_record("track")
    if not rec or "tracking" not in rec.get("outputs", {}):
        raise ProjectError(f"{project.root} has no tracking yet; run `dubstudio track` first.")
    path = project.path(rec["outputs"]["tracking"])
    from dubstudio.tracking.correction_store import CorrectionStore

    if CorrectionStore(project).exists():
        from dubstudio.training.data import tracking_of

        return np.array(tracking_of(project)[0].controls, dtype=np.float64)
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.array(z["controls"], dtype=np.float64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ProjectError(f"cannot read tracking {path}: {e}; track the shot again.") from e


def _array_sha(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class CurveStore:
    """Saves, loads, autosaves and recovers one project's ``ControlCurves`` edits."""

    def __init__(self, project: Project) -> None:
        self.project = project

    @property
    def curves_path(self) -> Path:
        return self.project.path(CURVES_FILE)

    @property
    def autosave_path(self) -> Path:
        return self.project.path(AUTOSAVE_FILE)

    def exists(self) -> bool:
        return self.curves_path.is_file()

    # -- save --

    def save(self, curves: ControlCurves) -> Path:
        """Write ``curves.json`` (atomic) and drop the autosave it supersedes."""
        self._write(self.curves_path, curves)
        self.autosave_path.unlink(missing_ok=True)
        self._collect_garbage()
        return self.curves_path

    def autosave(self, curves: ControlCurves) -> Path:
        """Crash-safe snapshot of unsaved edits (``edits/autosave.json``)."""
        self._write(self.autosave_path, curves)
        self._collect_garbage()
        return self.autosave_path

    def discard_autosave(self) -> None:
        self.autosave_path.unlink(missing_ok=True)
        self._collect_garbage()

    def _write(self, path: Path, curves: ControlCurves) -> None:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"cannot create {folder}: {e.strerror}; check free space and permissions.") from e
        driven = None
        cis = [ci for ci in range(curves.n_controls) if curves.has_driven(ci)]
        if cis:
            values = np.stack([curves.driven(ci) for ci in cis], axis=1)
            weights = np.stack([curves.driven_weight(ci) for ci in cis], axis=1)
            names = [curves.names[ci] for ci in cis]
            sha = _array_sha(values, weights, np.array(names))
            name = f"driven-{sha[:16]}.npz"
            if not (folder / name).is_file():  # content-addressed: an existing file is this one
                atomic_save_npz(folder / name, values=values, weights=weights, controls=np.array(names))
            sources = {curves.names[ci]: curves.driven_source(ci) for ci in cis if curves.driven_source(ci)}
            driven = {"file": name, "sha256": sha, "controls": names, "sources": sources}
        keys = {
            name: [{"frame": k.frame, "value": k.value, "interp": k.interp, "mode": k.mode} for k in ks]
            for name, ks in curves.all_keys().items()
        }
        atomic_write_json(path, {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "saved_ns": time.time_ns(),
            "n_frames": curves.n_frames,
            "controls": list(curves.names),
            "ease_frames": curves.ease_frames,
            "tracked_sha256": _array_sha(curves.tracked),
            "keys": keys,
            "driven": driven,
        })

    def _collect_garbage(self) -> None:
        """Delete driven npz files that neither curves.json nor the autosave references (only
        when both are readable, so a damaged file never costs data)."""
        folder = self.project.path(EDITS_DIR)
        used = set()
        for p in (self.curves_path, self.autosave_path):
            if p.is_file():
                try:
                    d = json.loads(p.read_text(encoding="utf-8"))
                    used.add((d.get("driven") or {}).get("file"))
                except (OSError, ValueError, AttributeError):
                    return
        for f in folder.glob("driven-*.npz"):
            if f.name not in used:
                f.unlink(missing_ok=True)

    # -- load --

    def load(self, tracked: Any = None) -> ControlCurves:
        """The saved edits over ``tracked`` ((N, C) array, a ``Tracking``, or None to read the
        project's tracking); plain tracked curves when nothing was saved yet."""
        base = self._tracked(tracked)
        if not self.exists():
            return ControlCurves(base)
        return self._read(self.curves_path, base)

    def recovery_available(self) -> bool:
        """An autosave newer than the last save (or with no save at all) exists."""
        auto = self._saved_ns(self.autosave_path)
        if auto is None:
            return False
        saved = self._saved_ns(self.curves_path) if self.exists() else None
        return saved is None or auto > saved

    def recover(self, tracked: Any = None) -> ControlCurves | None:
        """The autosaved curves if they are newer than ``curves.json``, else None. A damaged
        autosave is skipped (logged), never blocks opening the project."""
        if not self.recovery_available():
            return None
        try:
            return self._read(self.autosave_path, self._tracked(tracked))
        except ProjectError as e:
            log.warning("autosave not recoverable: %s", e)
            return None

    def _tracked(self, tracked: Any) -> np.ndarray:
        if tracked is None:
            return tracked_controls(self.project)
        return np.asarray(getattr(tracked, "controls", tracked), dtype=np.float64)

    @staticmethod
    def _saved_ns(path: Path) -> int | None:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return int(d["saved_ns"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _read(self, path: Path, base: np.ndarray) -> ControlCurves:
        what = f"{path} is damaged"
        fix = "delete it to start again from the tracked curves, or restore it from a backup"
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProjectError(f"{what} ({e}); {fix}.") from e
        except OSError as e:
            raise ProjectError(f"cannot read {path}: {e.strerror}; check file permissions.") from e
        if not isinstance(d, dict) or d.get("kind") != KIND or not isinstance(d.get("schema_version"), int):
            raise ProjectError(f"{what} (not a DubStudio curves file); {fix}.")
        if d["schema_version"] > SCHEMA_VERSION:
            raise ProjectError(
                f"{path} was saved by a newer DubStudio (curves schema {d['schema_version']}, this "
                f"version reads up to {SCHEMA_VERSION}); update DubStudio to open these edits."
            )
        try:
            n_frames = int(d["n_frames"])
            if base.ndim != 2 or base.shape[0] != n_frames:
                raise ProjectError(
                    f"{path} holds edits for {n_frames} frames but the tracking has {base.shape[0]}; "
                    f"the shot was re-tracked differently. Delete the file to start again from the "
                    f"new tracking."
                )
            # Keys and driven curves are stored by control name, so they land on the right
            # column even if the set of controls grows; an unknown name is a damaged file.
            curves = ControlCurves(base, ease_frames=int(d["ease_frames"]))
            if d.get("tracked_sha256") not in (None, _array_sha(curves.tracked)):
                log.warning("%s was saved over other tracked curves (shot re-tracked); keys are kept", path)
            for name, ks in dict(d["keys"]).items():
                for k in ks:
                    curves.put_key(name, Key(int(k["frame"]), float(k["value"]), str(k["interp"]), str(k["mode"])))
            if d.get("driven"):
                self._read_driven(path.parent, d["driven"], curves)
        except ProjectError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise ProjectError(f"{what} (bad entry: {type(e).__name__}: {e}); {fix}.") from e
        return curves

    @staticmethod
    def _read_driven(folder: Path, ref: dict, curves: ControlCurves) -> None:
        if not isinstance(ref["file"], str) or Path(ref["file"]).name != ref["file"]:
            raise ValueError(f"driven file must be a plain file name, got {ref['file']!r}")
        f = folder / ref["file"]
        try:
            with np.load(f, allow_pickle=False) as z:
                values, weights, names = z["values"], z["weights"], z["controls"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ProjectError(
                f"the driven curves {f} are missing or damaged ({e}); run the audio/dubber driving "
                f"again, or delete {f.parent / 'curves.json'} to start from the tracked curves."
            ) from e
        if _array_sha(values, weights, names) != ref["sha256"]:
            raise ProjectError(
                f"the driven curves {f} do not match the saved edits (changed outside DubStudio); "
                f"run the driving again or restore the file from a backup."
            )
        sources = dict(ref.get("sources") or {})
        for j, name in enumerate(str(n) for n in names):
            curves.write_driven(name, 0, values[:, j], weights[:, j])
            if name in sources:
                curves.set_driven_source(name, sources[name])
