"""Mask edits in the project: ``edits/mask.json`` + a content-addressed npz, and an autosave.

``mask.json`` (schema 1)::

    {"schema_version": 1, "kind": "dubstudio.mask", "saved_at": "...", "saved_ns": 1700...,
     "uv_size": 256, "grow_px": 0.0, "reference_resolution": 256, "n_frames": 500,
     "ranges": [{"start": 10, "stop": 40}],            # oldest first (later ranges win)
     "file": "mask-<hash16>.npz", "sha256": "..."}

The npz holds ``base_premul``, ``base_cover`` (S, S) and ``range_premul``, ``range_cover``
(K, S, S), float32 (bit-exact round trip). Saving, the autosave
(``edits/mask_autosave.json``), recovery and the content-addressed npz are ``EditFileStore``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.core.errors import ProjectError
from dubstudio.project.edit_store import EditFileStore, array_sha256
from dubstudio.masks.layer import REFERENCE_RESOLUTION, MaskLayer, RangeLayer, UVLayer

SCHEMA_VERSION = 1
KIND = "dubstudio.mask"
EDITS_DIR = "edits"
MASK_FILE = f"{EDITS_DIR}/mask.json"
AUTOSAVE_FILE = f"{EDITS_DIR}/mask_autosave.json"

log = logging.getLogger(__name__)


def _sha(arrays: dict[str, np.ndarray]) -> str:
    names = sorted(arrays)
    return array_sha256(*(arrays[n] for n in names), names=names)


def _arrays(layer: MaskLayer) -> dict[str, np.ndarray]:
    s = layer.size
    stack = lambda attr: (np.stack([getattr(r.layer, attr) for r in layer.ranges]) if layer.ranges else np.zeros((0, s, s), np.float32))  # noqa: E731
    return {
        "base_premul": layer.base.premul.astype(np.float32),
        "base_cover": layer.base.cover.astype(np.float32),
        "range_premul": stack("premul").astype(np.float32),
        "range_cover": stack("cover").astype(np.float32),
    }


class MaskStore(EditFileStore):
    """Saves, loads, autosaves and recovers one project's ``MaskLayer``."""

    KIND = KIND
    SCHEMA_VERSION = SCHEMA_VERSION
    FILE = MASK_FILE
    AUTOSAVE_FILE = AUTOSAVE_FILE
    PAYLOAD_PREFIX = "mask"
    NOUN = SCHEMA_NOUN = "mask"
    FIX = "delete it to start again from the automatic mask, or restore it from a backup"

    @property
    def mask_path(self) -> Path:
        return self.path

    def damaged(self, path: Path) -> str:
        return f"the mask edits {path} are damaged"

    def save(self, layer: MaskLayer) -> Path:
        """Write ``mask.json`` (atomic) and drop the autosave it supersedes."""
        super().save(layer)
        return self.path

    def _body(self, layer: MaskLayer, folder: Path) -> dict[str, Any]:
        arrays = _arrays(layer)
        sha = _sha(arrays)
        return {
            "uv_size": layer.size,
            "grow_px": layer.grow_px,
            "reference_resolution": REFERENCE_RESOLUTION,
            "n_frames": layer.n_frames,
            "ranges": [{"start": r.start, "stop": r.stop} for r in layer.ranges],
            "file": self._write_payload(folder, sha, arrays),
            "sha256": sha,
        }

    def _payload_name(self, doc: dict[str, Any]) -> str | None:
        return doc.get("file")

    # -- load --

    def load(self, n_frames: int | None = None) -> MaskLayer:
        """The saved mask edits, or an empty layer when none were saved. Raises ProjectError
        (with what to do) when the files are damaged or from a newer version."""
        if not self.exists():
            return MaskLayer(n_frames=n_frames)
        return self._read(self.path, n_frames)

    def recover(self, n_frames: int | None = None) -> MaskLayer | None:
        """The autosaved layer if newer than ``mask.json``, else None (a damaged one is logged)."""
        if not self.recovery_available():
            return None
        try:
            return self._read(self.autosave_path, n_frames)
        except ProjectError as e:
            log.warning("mask autosave not recoverable: %s", e)
            return None

    def _read(self, path: Path, n_frames: int | None) -> MaskLayer:
        d = self._read_document(path)
        what, fix = self.damaged(path), self.FIX
        try:
            size = int(d["uv_size"])
            ranges = [(int(r["start"]), int(r["stop"])) for r in d["ranges"]]
            name = d["file"]
            if not isinstance(name, str) or Path(name).name != name:
                raise ValueError(f"mask data must be a plain file name, got {name!r}")
            saved_n = d.get("n_frames")
            if n_frames is not None and saved_n is not None and int(saved_n) != int(n_frames):
                log.warning("%s was saved for %s frames, the shot has %s; ranges past the end are dropped", path, saved_n, n_frames)
            layer = MaskLayer(size, n_frames=n_frames)
            layer._grow_px = float(d["grow_px"])
            if not np.isfinite(layer._grow_px):
                raise ValueError("grow_px is not finite")
            sha = str(d["sha256"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProjectError(f"{what} (bad entry: {type(e).__name__}: {e}); {fix}.") from e
        f = path.parent / name
        try:
            arrays = self._load_payload(f, ("base_premul", "base_cover", "range_premul", "range_cover"))
        except (OSError, KeyError, ValueError) as e:
            raise ProjectError(f"the mask data {f} is missing or damaged ({e}); {fix.replace('it', path.name, 1)}.") from e
        if _sha(arrays) != sha:
            raise ProjectError(f"the mask data {f} does not match {path.name} (changed outside DubStudio); {fix.replace('it', path.name, 1)}.")
        k = len(ranges)
        shapes = {"base_premul": (size, size), "base_cover": (size, size), "range_premul": (k, size, size), "range_cover": (k, size, size)}
        for key, shape in shapes.items():
            a = arrays[key]
            if a.shape != shape or a.dtype != np.float32 or not np.isfinite(a).all():
                raise ProjectError(f"{what} ({key} is {a.dtype}{a.shape}, expected float32{shape}); {fix}.")
        layer.base = UVLayer(arrays["base_premul"], arrays["base_cover"])
        for j, (start, stop) in enumerate(ranges):
            if start < 0 or stop <= start:
                raise ProjectError(f"{what} (bad range [{start}, {stop})); {fix}.")
            if n_frames is not None and start >= n_frames:
                continue
            stop = stop if n_frames is None else min(stop, int(n_frames))
            layer.ranges.append(RangeLayer(start, stop, UVLayer(arrays["range_premul"][j].copy(), arrays["range_cover"][j].copy())))
        return layer
