"""The effective mask of a frame: the automatic one (as compositing uses it) plus the user's edits.

    effective = grow(clip(auto_alpha + delta, 0, 1))

``auto_alpha`` is ``composite.alpha_from_regions`` of the frame's region masks (the soft alpha
the compositor uses without edits), ``delta`` the ``MaskLayer`` composited for the frame and
sampled bilinearly through the frame's per-pixel UV (``mapping.frame_uv``), ``grow`` a grey
dilation (> 0) or erosion (< 0) by ``layer.grow_px`` crop pixels at 256 (scaled with R). With an
empty layer the result is ``auto_alpha`` itself. With edited ``controls`` the delta is sampled
through both the tracked and the edited mesh and united (paint wins where either is painted,
erase where either is erased), as the compositor unites their regions.
"""

from __future__ import annotations

import cv2
import numpy as np

from dubstudio.masks.layer import REFERENCE_RESOLUTION, MaskLayer
from dubstudio.masks.mapping import FrameUV

__all__ = ["sample_delta", "combine", "effective_from_maps", "grow_pixels", "unite"]


def sample_delta(layer: MaskLayer, frame: int, uv: np.ndarray, delta: np.ndarray | None = None) -> np.ndarray:
    """(R, R) float32 delta of ``frame`` at the crop's per-pixel UV ``uv`` (R, R, 2) (-1 = none)."""
    d = layer.delta(frame) if delta is None else delta
    s = d.shape[0]
    on = uv[..., 0] >= 0
    mx = np.where(on, uv[..., 0] * s - 0.5, -10.0).astype(np.float32)
    my = np.where(on, uv[..., 1] * s - 0.5, -10.0).astype(np.float32)
    out = cv2.remap(d.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    out[~on] = 0.0
    if on.any() and not on.all() and (out < 0).any():
        # The automatic alpha feathers a few pixels past the mesh's edge (jaw line), where there
        # is no UV: an erase reaches out there from the nearest face pixel, or erasing the whole
        # face would leave its soft outline. Paint does not (it would spread without bound).
        _, labels = cv2.distanceTransformWithLabels((~on).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        src = np.flatnonzero(on.ravel())  # label k (1-based) is the k-th face pixel in raster order
        nearest = out.ravel()[src[np.clip(labels.ravel() - 1, 0, len(src) - 1)]].reshape(out.shape)
        out[~on] = np.minimum(nearest[~on], 0.0)
    return out


def unite(deltas: list[np.ndarray]) -> np.ndarray:
    """Paint where any is painted, erase where any is erased (the strongest of each)."""
    if len(deltas) == 1:
        return deltas[0]
    pos = np.maximum.reduce([np.maximum(d, 0) for d in deltas])
    neg = np.minimum.reduce([np.minimum(d, 0) for d in deltas])
    return (pos + neg).astype(np.float32)


def grow_pixels(grow_px: float, resolution: int) -> int:
    return int(round(float(grow_px) * resolution / REFERENCE_RESOLUTION))


def combine(auto: np.ndarray, delta: np.ndarray | None, grow_px: float = 0.0) -> np.ndarray:
    """clip(auto + delta, 0, 1), dilated (grow > 0) or eroded (< 0) by ``grow_px`` at 256."""
    m = auto.astype(np.float32) if delta is None else np.clip(auto + delta, 0.0, 1.0).astype(np.float32)
    k = grow_pixels(grow_px, auto.shape[0])
    if k:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(k) + 1, 2 * abs(k) + 1))
        m = (cv2.dilate if k > 0 else cv2.erode)(m, disk, borderType=cv2.BORDER_CONSTANT, borderValue=0.0)
    return m


def effective_from_maps(layer: MaskLayer, i: int, maps: list[FrameUV], auto: np.ndarray) -> np.ndarray:
    """The effective mask from a frame's automatic alpha and its mappings (tracked first, then
    the edited expression's if any): what ``frame_user_mask`` returns, for callers that cache
    the mappings and the automatic alpha (the editor)."""
    if layer.is_empty:
        return auto
    d = layer.delta(i)
    delta = unite([sample_delta(layer, i, m.uv, d) for m in maps])
    return combine(auto, delta, layer.grow_px)


