"""Mask edits in the project: ``edits/mask.json`` + a content-addressed npz, and an autosave.

``mask.json`` (schema 1)::

    {"schema_version": 1, "kind": "dubstudio.mask", "saved_at": "...", "saved_ns": 1700...,
     "uv_size": 256, "grow_px": 0.0, "reference_resolution": 256, "n_frames": 500,
     "ranges": [{"start": 10, "stop": 40}],            # oldest first (later ranges win)
     "file": "mask-<hash16>.npz", "sha256": "..."}

The npz holds ``base_premul``, ``base_cover`` (S, S) and ``range_premul``, ``range_cover``
(K, S, S), float32 (bit-exact round trip). As in ``core.curve_store``: the npz is written first
(named by its hash) and the JSON that references it second, so a crash between the two keeps
the previous save; unreferenced npz files are deleted afterwards; ``autosave`` writes
``edits/mask_autosave.json`` and ``recover`` offers it when it is newer than ``mask.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import atomic_save_npz, atomic_write_json
from dubstudio.project.store import Project
from dubstudio.masks.layer import REFERENCE_RESOLUTION, MaskLayer, RangeLayer, UVLayer

SCHEMA_VERSION = 1
KIND = "dubstudio.mask"
EDITS_DIR = "edits"
MASK_FILE = f"{EDITS_DIR}/mask.json"
AUTOSAVE_FILE = f"{EDITS_DIR}/mask_autosave.json"

log = logging.getLogger(__name__)


def _sha(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _arrays(layer: MaskLayer) -> dict[str, np.ndarray]:
    s = layer.size
    stack = lambda attr: (np.stack([getattr(r.layer, attr) for r in layer.ranges]) if layer.ranges else np.zeros((0, s, s), np.float32))  # noqa: E731
    return {
        "base_premul": layer.base.premul.astype(np.float32),
        "base_cover": layer.base.cover.astype(np.float32),
        "range_premul": stack("premul").astype(np.float32),
        "range_cover": stack("cover").astype(np.float32),
    }


class MaskStore:
    """Saves, loads, autosaves and recovers one project's ``MaskLayer``."""

    def __init__(self, project: Project) -> None:
        self.project = project

    @property
    def mask_path(self) -> Path:
        return self.project.path(MASK_FILE)

    @property
    def autosave_path(self) -> Path:
        return self.project.path(AUTOSAVE_FILE)

    def exists(self) -> bool:
        return self.mask_path.is_file()

    # -- save --

    def save(self, layer: MaskLayer) -> Path:
        """Write ``mask.json`` (atomic) and drop the autosave it supersedes."""
        self._write(self.mask_path, layer)
        self.autosave_path.unlink(missing_ok=True)
        self._collect_garbage()
        return self.mask_path

    def autosave(self, layer: MaskLayer) -> Path:
        self._write(self.autosave_path, layer)
        self._collect_garbage()
        return self.autosave_path

    def discard_autosave(self) -> None:
        self.autosave_path.unlink(missing_ok=True)
        self._collect_garbage()

    def _write(self, path: Path, layer: MaskLayer) -> None:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"cannot create {folder}: {e.strerror}; check free space and permissions.") from e
        arrays = _arrays(layer)
        sha = _sha(arrays)
        name = f"mask-{sha[:16]}.npz"
        if not (folder / name).is_file():  # content-addressed: an existing file is this one
            atomic_save_npz(folder / name, **arrays)
        atomic_write_json(path, {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "saved_ns": time.time_ns(),
            "uv_size": layer.size,
            "grow_px": layer.grow_px,
            "reference_resolution": REFERENCE_RESOLUTION,
            "n_frames": layer.n_frames,
            "ranges": [{"start": r.start, "stop": r.stop} for r in layer.ranges],
            "file": name,
            "sha256": sha,
        })

    def _collect_garbage(self) -> None:
        folder = self.project.path(EDITS_DIR)
        used = set()
        for p in (self.mask_path, self.autosave_path):
            if p.is_file():
                try:
                    used.add(json.loads(p.read_text(encoding="utf-8")).get("file"))
                except (OSError, ValueError, AttributeError):
                    return  # a damaged file: never delete data it might reference
        for f in folder.glob("mask-*.npz"):
            if f.name not in used:
                f.unlink(missing_ok=True)

    # -- load --

    def load(self, n_frames: int | None = None) -> MaskLayer:
        """The saved mask edits, or an empty layer when none were saved. Raises ProjectError
        (with what to do) when the files are damaged or from a newer version."""
        if not self.exists():
            return MaskLayer(n_frames=n_frames)
        return self._read(self.mask_path, n_frames)

    def recovery_available(self) -> bool:
        auto = self._saved_ns(self.autosave_path)
        if auto is None:
            return False
        saved = self._saved_ns(self.mask_path) if self.exists() else None
        return saved is None or auto > saved

    def recover(self, n_frames: int | None = None) -> MaskLayer | None:
        """The autosaved layer if newer than ``mask.json``, else None (a damaged one is logged)."""
        if not self.recovery_available():
            return None
        try:
            return self._read(self.autosave_path, n_frames)
        except ProjectError as e:
            log.warning("mask autosave not recoverable: %s", e)
            return None

    @staticmethod
    def _saved_ns(path: Path) -> int | None:
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["saved_ns"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _read(self, path: Path, n_frames: int | None) -> MaskLayer:
        what = f"the mask edits {path} are damaged"
        fix = "delete it to start again from the automatic mask, or restore it from a backup"
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProjectError(f"{what} ({e}); {fix}.") from e
        except OSError as e:
            raise ProjectError(f"cannot read {path}: {e.strerror}; check file permissions.") from e
        if not isinstance(d, dict) or d.get("kind") != KIND or not isinstance(d.get("schema_version"), int):
            raise ProjectError(f"{what} (not a DubStudio mask file); {fix}.")
        if d["schema_version"] > SCHEMA_VERSION:
            raise ProjectError(
                f"{path} was saved by a newer DubStudio (mask schema {d['schema_version']}, this version "
                f"reads up to {SCHEMA_VERSION}); update DubStudio to open these edits."
            )
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
            with np.load(f, allow_pickle=False) as z:
                arrays = {k: np.array(z[k]) for k in ("base_premul", "base_cover", "range_premul", "range_cover")}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
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
