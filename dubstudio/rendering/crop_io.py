"""Moving pixels between the full frame and the square face crop (and back, for compositing)."""

from __future__ import annotations

import cv2
import numpy as np


def crop_matrix(box: np.ndarray, resolution: int) -> np.ndarray:
    """2x3 affine taking full-frame pixel coordinates to crop pixel coordinates."""
    cx, cy, side = (float(v) for v in box)
    s = resolution / side
    return np.array([[s, 0, resolution / 2 - s * cx], [0, s, resolution / 2 - s * cy]], np.float64)


AREA_RATIO = 1.5  # a box this many times the crop's size or more is shrunk with an area filter


def crop_source(frame: np.ndarray, box: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
    """What to sample a crop of ``box`` from, and the 2x3 affine from crop pixels into it: the
    frame's pixels under the box, so a later warp resamples them once (each bilinear pass softens
    detail); where the box is much larger than the crop, the area-filtered crop itself (affine None)."""
    if float(box[2]) > resolution * AREA_RATIO:
        return extract_crop(frame, box, resolution), None
    x0, y0, x1, y1, inv = crop_region(frame.shape, box, resolution)
    return np.ascontiguousarray(frame[y0:y1, x0:x1]), inv


def extract_crop(frame: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
    """The square crop ``box`` = (cx, cy, side) resampled to ``resolution``; outside the frame is
    filled by edge replication (so the crop never shows a hard black border)."""
    m = crop_matrix(box, resolution)
    interp = cv2.INTER_AREA if box[2] > resolution * AREA_RATIO else cv2.INTER_LINEAR
    if interp == cv2.INTER_AREA:
        # warpAffine has no area filter: pre-shrink the frame, then warp.
        f = resolution / float(box[2]) * 1.5
        small = cv2.resize(frame, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m = m.copy()
        m[:, :2] /= f
        frame = small
    return cv2.warpAffine(frame, m, (resolution, resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_region(frame_shape: tuple[int, ...], box: np.ndarray, resolution: int) -> tuple[int, int, int, int, np.ndarray]:
    """The frame rectangle ``(x0, y0, x1, y1)`` a crop of ``box`` covers (clipped to the frame) and
    the 2x3 affine from crop pixels to that rectangle's own pixel coordinates."""
    h, w = frame_shape[:2]
    cx, cy, side = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(cx - side / 2))), max(0, int(np.floor(cy - side / 2)))
    x1, y1 = min(w, int(np.ceil(cx + side / 2)) + 1), min(h, int(np.ceil(cy + side / 2)) + 1)
    inv = cv2.invertAffineTransform(crop_matrix(box, resolution))
    inv[:, 2] -= (x0, y0)  # into the region's own coordinates
    return x0, y0, x1, y1, inv


def paste_crop(frame: np.ndarray, crop: np.ndarray, box: np.ndarray, alpha: np.ndarray, detail: np.ndarray | None = None) -> np.ndarray:
    """Composite ``crop`` back into (a copy of) ``frame`` with a per-crop-pixel ``alpha`` in [0, 1].

    Only the crop's bounding rectangle in the frame is touched, so a 1080p frame costs no more
    than its face. ``detail``, float (y1 - y0, x1 - x0, 3) in that rectangle's pixels (see
    ``crop_region``), is added under the alpha on top of the upsampled crop: the fine detail a
    crop of ``resolution`` pixels cannot hold (``composite.detail_layer``).
    """
    r = crop.shape[0]
    x0, y0, x1, y1, inv = crop_region(frame.shape, box, r)
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    size = (x1 - x0, y1 - y0)
    src = cv2.warpAffine(crop, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    if detail is not None:
        if detail.shape[:2] != (size[1], size[0]):
            raise ValueError(f"detail is {detail.shape[:2]}, expected {(size[1], size[0])} (the crop's frame rectangle)")
        src += detail
    a = _warp_alpha(alpha, inv, size)
    region = out[y0:y1, x0:x1].astype(np.float32)
    region += (src - region) * a[..., None]
    out[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
    return out


def _warp_alpha(alpha: np.ndarray, inv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(alpha.astype(np.float32), inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paste_weight(frame_shape: tuple[int, ...], box: np.ndarray, alpha: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """``(y0, x0, weight)``: the share of each pixel of the crop's frame rectangle that
    :func:`paste_crop` takes from the crop (its ``alpha`` in frame pixels); None when the crop
    lies outside the frame."""
    x0, y0, x1, y1, inv = crop_region(frame_shape, box, alpha.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return y0, x0, _warp_alpha(alpha, inv, (x1 - x0, y1 - y0))


def feather(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """A soft alpha from a binary mask: Gaussian falloff of ``radius_px`` inside the edge."""
    m = (mask > 0).astype(np.float32)
    if radius_px <= 0:
        return m
    # Erode first so the feather stays inside the mask, then blur.
    k = max(1, int(round(radius_px)))
    m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return cv2.GaussianBlur(m, (0, 0), sigmaX=radius_px / 2)
