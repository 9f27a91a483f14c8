"""The copy baseline of the self-reenactment protocol (issue 3).

For each test frame, the *training* frame nearest by expression (Euclidean distance of the named
controls, optionally plus ``residual_weight`` x the residual coefficients) lends its crop pixels
inside the test frame's mouth mask; everything else is the test frame's real crop. Crops are
pose-aligned by the tracker's box, so the plain variant copies pixel for pixel. The ``warp``
variant first moves the training crop onto the test frame's mesh: each test-crop pixel on the
mesh looks up the same surface point (triangle + barycentrics) in the training frame's crop.

A renderer that does not beat this inside the mouth has learned nothing a lookup table could not.

``CopyBaseline`` is also a :class:`~dubstudio.rendering.render_job.CropRenderer`, so the baseline
can be rendered to video like any renderer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from dubstudio.rendering.crop_io import crop_source, extract_crop

__all__ = ["nearest_frames", "paste_mouth", "warp_crop", "mouth_masks", "CopyBaseline"]


def nearest_frames(tracking, train: Sequence[int], test: Sequence[int], residual_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(nearest training frame per test frame, distance). Training frames without a face are skipped."""
    train = np.array([i for i in train if tracking.has_face[i]], np.int64)
    if train.size == 0:
        from dubstudio.core.errors import NoFaceError

        raise NoFaceError("no training frame has a face; pick training frames where the face is tracked.")
    test = np.asarray(list(test), np.int64)

    def feats(idx):
        f = tracking.controls[idx].astype(np.float64)
        if residual_weight > 0:
            f = np.concatenate([f, residual_weight * tracking.residual[idx].astype(np.float64)], axis=1)
        return f

    a, b = feats(test), feats(train)
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    k = d2.argmin(axis=1)
    return train[k], np.sqrt(d2[np.arange(len(test)), k])


def paste_mouth(real_crop: np.ndarray, source_crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``real_crop`` with ``source_crop``'s pixels where ``mask`` is true (hard edge)."""
    out = real_crop.copy()
    m = np.asarray(mask, bool)
    out[m] = source_crop[m]
    return out


def _raster(tracking, indices, resolution: int, model):
    import torch

    from dubstudio.rendering.rasterizer import crop_vertices, mesh_tables, rasterize, region_masks
    from dubstudio.tracking.crops import triangle_groups

    verts = np.stack([crop_vertices(tracking, int(i), resolution, None, model) for i in indices])
    frags = rasterize(torch.as_tensor(verts, dtype=torch.float32), torch.as_tensor(mesh_tables()[0]), resolution)
    lower, mouth = triangle_groups(model.identity)
    return frags, region_masks(frags, lower, mouth).numpy()


def mouth_masks(tracking, indices: Sequence[int], resolution: int, model=None) -> np.ndarray:
    """(n, R, R) bool mouth region (lips + interior, z-buffered) of the tracked expression."""
    from dubstudio.tracking.crops import MASK_MOUTH

    model = model or tracking.model()
    return _raster(tracking, indices, resolution, model)[1] == MASK_MOUTH


def warp_crop(tracking, src: int, dst: int, src_crop: np.ndarray, model=None) -> np.ndarray:
    """``src_crop`` (frame ``src``) resampled onto frame ``dst``'s mesh in crop space; pixels off
    the mesh keep their position (identity map)."""
    from dubstudio.rendering.mouth_detail import warp_to
    from dubstudio.rendering.rasterizer import crop_vertices

    model = model or tracking.model()
    frags, _ = _raster(tracking, [dst], src_crop.shape[0], model)
    warped, _ = warp_to(frags, 0, crop_vertices(tracking, int(src), src_crop.shape[0], None, model), src_crop)
    return warped.astype(src_crop.dtype)


def warp_region(tracking, src: int, dst: int, region: np.ndarray, affine: np.ndarray | None, resolution: int,
                model=None) -> np.ndarray:
    """``warp_crop`` from frame ``src``'s pixels under its crop box (``CopyBaseline.region``,
    ``crop_io.crop_source``): one resampling, frame to target."""
    from dubstudio.rendering.mouth_detail import warp_to
    from dubstudio.rendering.rasterizer import crop_vertices

    model = model or tracking.model()
    frags, _ = _raster(tracking, [dst], resolution, model)
    warped, _ = warp_to(frags, 0, crop_vertices(tracking, int(src), resolution, None, model), region, affine=affine)
    return np.clip(warped + 0.5, 0, 255).astype(region.dtype) if region.dtype == np.uint8 else warped


class CopyBaseline:
    """The copy baseline as a crop renderer over one tracked shot.

    ``render_crops(indices)``: each frame's real crop with the mouth of its nearest training frame
    (``controls`` other than None are matched instead of the tracked ones; the mouth mask is always
    the frame's tracked one). ``reader`` is any object with ``frame(i) -> RGB`` (a VideoReader).
    """

    def __init__(self, tracking, reader, train: Sequence[int], resolution: int = 256, residual_weight: float = 0.0, warp: bool = False) -> None:
        self.tracking = tracking
        self.reader = reader
        self.train = [int(i) for i in train]
        self._train_set = set(self.train)
        self.resolution = int(resolution)
        self.residual_weight = float(residual_weight)
        self.warp = bool(warp)
        self.model = tracking.model()
        self._crop_cache: dict[int, np.ndarray] = {}
        # the warped copy resamples a training frame once, from the frame onto the target mesh (as
        # the mouth detail does), not crop first and warp after: each bilinear pass softens
        self._region_cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    @classmethod
    def open(cls, tracking, video: str | Path, train: Sequence[int], **kw) -> CopyBaseline:
        from dubstudio.io.video import VideoReader

        return cls(tracking, VideoReader(video), train, **kw)

    def fingerprint(self) -> str:
        """What this renderer draws (with the shot's tracking and video, which the export keys
        itself): a stopped export resumes only with the same one."""
        import hashlib

        return hashlib.sha256(repr(("copy-baseline", self.train, self.resolution, self.residual_weight, self.warp, "direct")).encode()).hexdigest()

    def crop(self, i: int) -> np.ndarray:
        """Real crop of frame ``i`` (training crops are kept: there are few of them)."""
        c = self._crop_cache.get(i)
        if c is None:
            c = extract_crop(self.reader.frame(int(i)), self.tracking.crop[i], self.resolution)
            if i in self._train_set:
                self._crop_cache[i] = c
        return c

    def preload(self, indices: Sequence[int]) -> None:
        """Decode the crops of ``indices`` in one sequential pass (cheaper than seeking per frame)."""
        need = sorted({int(i) for i in indices} - set(self._crop_cache))
        if not need:
            return
        it = getattr(self.reader, "iter_frames", None)
        if it is None:
            for i in need:
                self._crop_cache[i] = extract_crop(self.reader.frame(i), self.tracking.crop[i], self.resolution)
            return
        wanted = set(need)
        for i, rgb in it(need[0], need[-1] + 1):
            if i in wanted:
                self._crop_cache[i] = extract_crop(rgb, self.tracking.crop[i], self.resolution)
                if self.warp and i in self._train_set:
                    self._region_cache[i] = crop_source(rgb, self.tracking.crop[i], self.resolution)

    def region(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame ``i``'s pixels under its crop box and the affine from crop pixels into them
        (``crop_io.crop_source``)."""
        r = self._region_cache.get(i)
        if r is None:
            r = crop_source(self.reader.frame(int(i)), self.tracking.crop[i], self.resolution)
            if i in self._train_set:
                self._region_cache[i] = r
        return r

    def sources(self, indices: Sequence[int], controls: np.ndarray | None = None) -> np.ndarray:
        """Nearest training frame for each of ``indices``."""
        if controls is None:
            return nearest_frames(self.tracking, self.train, indices, self.residual_weight)[0]
        train = np.array([i for i in self.train if self.tracking.has_face[i]], np.int64)
        d2 = ((np.asarray(controls)[:, None, :] - self.tracking.controls[train][None]) ** 2).sum(axis=2)
        return train[d2.argmin(axis=1)]

    def compose(self, i: int, src: int, real_crop: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        if self.warp:
            s = warp_region(self.tracking, int(src), int(i), *self.region(int(src)), self.resolution, self.model)
        else:
            s = self.crop(int(src))
        return paste_mouth(real_crop, s, mouth)

    def render_crops(self, indices: Sequence[int], controls: np.ndarray | None = None, real_crops: np.ndarray | None = None) -> np.ndarray:
        indices = [int(i) for i in indices]
        src = self.sources(indices, controls)
        masks = mouth_masks(self.tracking, indices, self.resolution, self.model)
        out = []
        for k, i in enumerate(indices):
            real = real_crops[k] if real_crops is not None else self.crop(i)
            out.append(self.compose(i, src[k], real, masks[k]))
        return np.stack(out)

    def close(self) -> None:
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()
