"""Curve edits in the project: ``edits/curves.json`` (+ driven curves as npz) and an autosave.

Only the edits are stored (keys, the driven layer, settings); the tracked curves stay in the
tracking file, which is read and never written here. ``curves.json`` (schema 1)::

    {"schema_version": 1, "kind": "dubstudio.curves", "saved_at": "...", "saved_ns": 1700...,
     "n_frames": 500, "controls": ["jaw_open", ...], "ease_frames": 3, "tracked_sha256": "...",
     "keys": {"jaw_open": [{"frame": 12, "value": 0.7, "interp": "smooth", "mode": "replace"}]},
     "driven": {"file": "driven-<hash>.npz", "sha256": "...", "controls": ["jaw_open"],
                "sources": {"jaw_open": "audio:speech_en.wav"}} | null,
     "words": [[31.5, "hello"], [38.0, "world"]]}

``words`` (optional: older files have none) are the driven line's words, where the mouth says
each (a fractional frame), as a dub with its script set them and the editor re-timed them.

Saving, the autosave, recovery and the content-addressed driven npz are ``EditFileStore``'s.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.core.curves import ControlCurves, Key
from dubstudio.core.errors import ProjectError
from dubstudio.project.edit_store import EditFileStore, array_sha256
from dubstudio.shot.tracking import tracking_of
from dubstudio.tracking.correction_store import CorrectionStore

SCHEMA_VERSION = 1
KIND = "dubstudio.curves"
EDITS_DIR = "edits"
CURVES_FILE = f"{EDITS_DIR}/curves.json"
AUTOSAVE_FILE = f"{EDITS_DIR}/autosave.json"

log = logging.getLogger(__name__)


def tracked_controls(project) -> np.ndarray:
    """(N, C) tracked controls (with the editor's saved tracking corrections), read-only access;
    without corrections only the controls are read from the tracking file (cheap)."""
    rec = project.stage_record("track")
    if not rec or "tracking" not in rec.get("outputs", {}):
        raise ProjectError(f"{project.root} has no tracking yet; run `dubstudio track` first.")
    if CorrectionStore(project).exists():
        return np.array(tracking_of(project)[0].controls, dtype=np.float64)
    path = project.path(rec["outputs"]["tracking"])
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.array(z["controls"], dtype=np.float64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ProjectError(f"cannot read tracking {path}: {e}; track the shot again.") from e


class CurveStore(EditFileStore):
    """Saves, loads, autosaves and recovers one project's ``ControlCurves`` edits."""

    KIND = KIND
    SCHEMA_VERSION = SCHEMA_VERSION
    FILE = CURVES_FILE
    AUTOSAVE_FILE = AUTOSAVE_FILE
    PAYLOAD_PREFIX = "driven"
    NOUN = SCHEMA_NOUN = "curves"
    FIX = "delete it to start again from the tracked curves, or restore it from a backup"

    @property
    def curves_path(self) -> Path:
        return self.path

    def save(self, curves: ControlCurves) -> Path:
        """Write ``curves.json`` (atomic) and drop the autosave it supersedes."""
        super().save(curves)
        return self.path

    def _body(self, curves: ControlCurves, folder: Path) -> dict[str, Any]:
        driven = None
        cis = [ci for ci in range(curves.n_controls) if curves.has_driven(ci)]
        if cis:
            values = np.stack([curves.driven(ci) for ci in cis], axis=1)
            weights = np.stack([curves.driven_weight(ci) for ci in cis], axis=1)
            names = [curves.names[ci] for ci in cis]
            sha = array_sha256(values, weights, np.array(names))
            name = self._write_payload(folder, sha, {"values": values, "weights": weights, "controls": np.array(names)})
            sources = {curves.names[ci]: curves.driven_source(ci) for ci in cis if curves.driven_source(ci)}
            driven = {"file": name, "sha256": sha, "controls": names, "sources": sources}
        keys = {
            name: [{"frame": k.frame, "value": k.value, "interp": k.interp, "mode": k.mode} for k in ks]
            for name, ks in curves.all_keys().items()
        }
        return {
            "n_frames": curves.n_frames,
            "controls": list(curves.names),
            "ease_frames": curves.ease_frames,
            "tracked_sha256": array_sha256(curves.tracked),
            "keys": keys,
            "driven": driven,
            "words": [[round(f, 3), w] for f, w in curves.words],
        }

    def _payload_name(self, doc: dict[str, Any]) -> str | None:
        return (doc.get("driven") or {}).get("file")

    # -- load --

    def predates_words(self) -> bool:
        """The saved file was written before the curves kept the line's words (no ``words`` entry)."""
        return self.exists() and "words" not in self._read_document(self.curves_path)

    def load(self, tracked: Any = None) -> ControlCurves:
        """The saved edits over ``tracked`` ((N, C) array, a ``Tracking``, or None to read the
        project's tracking); plain tracked curves when nothing was saved yet."""
        base = self._tracked(tracked)
        if not self.exists():
            return ControlCurves(base)
        return self._read(self.path, base)

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

    def _read(self, path: Path, base: np.ndarray) -> ControlCurves:
        d = self._read_document(path)
        what, fix = self.damaged(path), self.FIX
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
            if d.get("tracked_sha256") not in (None, array_sha256(curves.tracked)):
                log.warning("%s was saved over other tracked curves (shot re-tracked); keys are kept", path)
            for name, ks in dict(d["keys"]).items():
                for k in ks:
                    curves.put_key(name, Key(int(k["frame"]), float(k["value"]), str(k["interp"]), str(k["mode"])))
            if d.get("driven"):
                self._read_driven(path.parent, d["driven"], curves)
            curves.set_words((float(f), str(w)) for f, w in d.get("words") or [])
        except ProjectError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise ProjectError(f"{what} (bad entry: {type(e).__name__}: {e}); {fix}.") from e
        return curves

    def _read_driven(self, folder: Path, ref: dict, curves: ControlCurves) -> None:
        if not isinstance(ref["file"], str) or Path(ref["file"]).name != ref["file"]:
            raise ValueError(f"driven file must be a plain file name, got {ref['file']!r}")
        f = folder / ref["file"]
        try:
            z = self._load_payload(f, ("values", "weights", "controls"))
        except (OSError, KeyError, ValueError) as e:
            raise ProjectError(
                f"the driven curves {f} are missing or damaged ({e}); run the audio/dubber driving "
                f"again, or delete {f.parent / 'curves.json'} to start from the tracked curves."
            ) from e
        values, weights, names = z["values"], z["weights"], z["controls"]
        if array_sha256(values, weights, names) != ref["sha256"]:
            raise ProjectError(
                f"the driven curves {f} do not match the saved edits (changed outside DubStudio); "
                f"run the driving again or restore the file from a backup."
            )
        sources = dict(ref.get("sources") or {})
        for j, name in enumerate(str(n) for n in names):
            curves.write_driven(name, 0, values[:, j], weights[:, j])
            if name in sources:
                curves.set_driven_source(name, sources[name])
