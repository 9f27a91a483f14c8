"""Background-preserving post-process (paper section 3.7).

Generated crops can drag background pixels along with the face ("stuck" pixels past the jaw or
cheek). Both the original and the composited frame are segmented into person / background with
mediapipe's selfie segmenter (``mp.solutions.selfie_segmentation``, CPU, bundled with mediapipe
0.10.21, no download), and the original pixels come back wherever *both* say background:

    w = smoothstep(lo, hi, min(1 - p_original, 1 - p_composited)),   out = comp + (orig - comp) * w

Only the window around the face box is segmented (``context`` crop-box sides, clipped to the
frame): the composite changes nothing outside the box, and a head-and-shoulders window is what the
selfie model is made for (a small face in a 1080p frame gets far more of its 256x256 input).
Pixels the composite did not change stay bit-identical, so frames without a face pass through.

Cost: one segmentation is ~5-15 ms on one CPU core (the model runs at 256x256 whatever the window
size), far below a neural render, so the original frames' masks are computed as needed, not
cached on disk. Two segmenter instances (original / composited) keep any internal state apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BackgroundSettings", "BackgroundKeeper", "background_weight", "keep_background", "segmentation_window"]


@dataclass(frozen=True)
class BackgroundSettings:
    model_selection: int = 0  # 0: general (256x256), 1: landscape (144x256)
    context: float = 2.0  # window side in crop-box sides around the box centre; 0 = whole frame
    lo: float = 0.25  # smoothstep on the joint background probability
    hi: float = 0.75


def segmentation_window(box: np.ndarray | None, height: int, width: int, context: float) -> tuple[slice, slice]:
    """(rows, cols) of the frame to segment: a square of ``context`` box sides, clipped."""
    if box is None or context <= 0 or not np.all(np.isfinite(box)):
        return slice(0, height), slice(0, width)
    cx, cy, side = (float(v) for v in box)
    half = max(context, 1.0) * side / 2 + 2  # never smaller than the pasted rectangle
    x0, x1 = max(0, int(np.floor(cx - half))), min(width, int(np.ceil(cx + half)))
    y0, y1 = max(0, int(np.floor(cy - half))), min(height, int(np.ceil(cy + half)))
    if x1 <= x0 or y1 <= y0:
        return slice(0, height), slice(0, width)
    return slice(y0, y1), slice(x0, x1)


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def background_weight(p_original: np.ndarray, p_composited: np.ndarray, lo: float = 0.25, hi: float = 0.75) -> np.ndarray:
    """The share (H, W) float32 of each pixel that :func:`keep_background` takes from the original."""
    bg = np.minimum(1.0 - p_original, 1.0 - p_composited).astype(np.float32)
    return _smoothstep(bg, lo, hi).astype(np.float32)


def keep_background(original: np.ndarray, composited: np.ndarray, p_original: np.ndarray, p_composited: np.ndarray, lo: float = 0.25, hi: float = 0.75) -> np.ndarray:
    """Blend ``original`` back where both person probabilities (H, W) say background (uint8 out).

    Where ``original == composited`` the result is exactly that value."""
    return _blend_back(original, composited, background_weight(p_original, p_composited, lo, hi))


def _blend_back(original: np.ndarray, composited: np.ndarray, w: np.ndarray) -> np.ndarray:
    c = composited.astype(np.float32)
    return np.clip(c + (original.astype(np.float32) - c) * w[..., None] + 0.5, 0, 255).astype(np.uint8)


class BackgroundKeeper:
    """Applies the post-process frame by frame. ``segmenter`` (for tests) maps an RGB uint8 image
    to an (H, W) float person probability; by default mediapipe's selfie segmenter is used.

    Use as a context manager (or call ``close``) to release the mediapipe graphs."""

    def __init__(self, settings: BackgroundSettings | None = None, segmenter=None) -> None:
        self.settings = settings or BackgroundSettings()
        self._external = segmenter
        self._graphs: dict[str, object] = {}

    def _segment(self, which: str, rgb: np.ndarray) -> np.ndarray:
        if self._external is not None:
            return np.asarray(self._external(rgb), np.float32)
        g = self._graphs.get(which)
        if g is None:
            import mediapipe as mp

            g = self._graphs[which] = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self.settings.model_selection)
        res = g.process(np.ascontiguousarray(rgb))
        m = res.segmentation_mask
        if m is None:  # no person at all
            return np.zeros(rgb.shape[:2], np.float32)
        return np.asarray(m, np.float32)

    def segment_original(self, rgb: np.ndarray) -> np.ndarray:
        return self._segment("original", rgb)

    def segment_composited(self, rgb: np.ndarray) -> np.ndarray:
        return self._segment("composited", rgb)

    def apply(self, original: np.ndarray, composited: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """The post-processed frame (``composited`` itself when nothing was changed)."""
        return self.apply_weighted(original, composited, box)[0]

    def apply_weighted(self, original: np.ndarray, composited: np.ndarray, box: np.ndarray | None = None):
        """``(frame, kept)``: the post-processed frame and ``(rows, cols, weight)``, the share of
        each pixel of the segmented window that came back from the original (None when nothing
        was changed)."""
        if composited is original:
            return composited, None
        h, w = original.shape[:2]
        rows, cols = segmentation_window(box, h, w, self.settings.context)
        o, c = original[rows, cols], composited[rows, cols]
        if np.array_equal(o, c):
            return composited, None
        wt = background_weight(self.segment_original(o), self.segment_composited(c), self.settings.lo, self.settings.hi)
        out = composited.copy()
        out[rows, cols] = _blend_back(o, c, wt)
        return out, (rows, cols, wt)

    def close(self) -> None:
        for g in self._graphs.values():
            try:
                g.close()
            except Exception:  # noqa: BLE001 - closing twice is harmless
                pass
        self._graphs.clear()

    def __enter__(self) -> BackgroundKeeper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
