"""Image metrics for self-reenactment: PSNR and SSIM on the face crop, PSNR and LPIPS inside a mask.

All images are uint8 (or 0..255 float) RGB, (H, W, 3). PSNR uses ``data_range`` 255 and returns
``inf`` for identical images; masked PSNR averages the squared error over the mask's pixels only
(all three channels), so a tiny mouth is not drowned in a large crop. SSIM is scikit-image's
``structural_similarity`` (7x7 uniform window, ``channel_axis=-1``, ``data_range=255``).

LPIPS comes from :mod:`dubstudio.eval.lpips` (ST-LPIPS weights, AlexNet by default), imported
lazily: :class:`LpipsScorer` reports ``available=False`` with a ``reason`` when the module or its
weights are missing, and its scores are then ``None``.
"""

from __future__ import annotations

import importlib

import math

import numpy as np

__all__ = ["psnr", "masked_psnr", "ssim", "LpipsScorer", "summarise"]


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    d = a.astype(np.float64) - b.astype(np.float64)
    return d * d


def _psnr_from_mse(mse: float, data_range: float) -> float:
    return math.inf if mse <= 0 else float(10.0 * math.log10(data_range**2 / mse))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio over all pixels and channels (dB)."""
    return _psnr_from_mse(float(_mse(a, b).mean()), data_range)


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR with the mean squared error taken over the pixels where ``mask`` (H, W) is true
    (or weighted by a soft mask in [0, 1]); NaN for an empty mask."""
    se = _mse(a, b)
    w = np.asarray(mask, np.float64)
    if w.shape != se.shape[:2]:
        raise ValueError(f"mask {w.shape} does not match images {se.shape}")
    if se.ndim == 3:
        se = se.mean(axis=2)
    total = w.sum()
    if total <= 0:
        return math.nan
    return _psnr_from_mse(float((se * w).sum() / total), data_range)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Structural similarity (scikit-image, 7x7 window, per channel then averaged)."""
    from skimage.metrics import structural_similarity

    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return float(structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, data_range=data_range))


class LpipsScorer:
    """LPIPS inside a mask, or unavailable with a reason (never raises on a missing backend).

    ``score(a, b, mask)`` -> float or None. The network is loaded on first use.
    """

    def __init__(self, net: str = "alex", device: str = "cpu") -> None:
        self.net, self.device = net, device
        self._model = None
        self.reason: str | None = None
        try:
            # lazy: optional, may be missing. import_module (not `from dubstudio.eval import lpips`)
            # so the answer does not depend on whether the submodule was imported before.
            _lpips = importlib.import_module("dubstudio.eval.lpips")
        except ImportError as e:
            self.reason = f"dubstudio.eval.lpips is not available ({e})"
            return
        try:
            ok = bool(_lpips.weights_available())
        except Exception as e:  # noqa: BLE001 - any failure here just means "no LPIPS"
            ok, self.reason = False, f"cannot check LPIPS weights: {e}"
        if not ok and self.reason is None:
            self.reason = f"LPIPS weights for {net!r} are not installed"

    @property
    def available(self) -> bool:
        return self.reason is None

    def _load(self):
        if self._model is None:
            from dubstudio.eval.lpips import LPIPS

            try:
                self._model = LPIPS(self.net, self.device)
            except Exception as e:  # noqa: BLE001
                self.reason = f"cannot load LPIPS({self.net!r}): {e}"
                raise
        return self._model

    def score_batch(self, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, isolate: bool = True, crop_to_mask: bool = True) -> list[float | None]:
        """(B, H, W, 3) uint8 pairs, optional (B, H, W) masks -> B distances (None if unavailable).

        With a mask and ``crop_to_mask`` the images are first cut to the batch's mask bounding box
        plus a margin of H/16 (at least 64 px square, inside the image): ~10x cheaper for a mouth
        in a 256 crop. Pixels outside the mask are grey either way (``isolate``), so this only
        trims uniform grey; the value is defined on that box.
        """
        n = len(a)
        if not self.available:
            return [None] * n
        import torch

        try:
            model = self._load()
        except Exception:  # noqa: BLE001 - reason recorded
            return [None] * n
        m = None if mask is None else np.asarray(mask, np.float32)
        if m is not None and crop_to_mask and isolate:
            rows, cols = _mask_box(m.max(axis=0) > 0, a.shape[1], a.shape[2])
            a, b, m = a[:, rows, cols], b[:, rows, cols], m[:, rows, cols]
        to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(self.device).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
        with torch.no_grad():
            mt = None if m is None else torch.from_numpy(np.ascontiguousarray(m)).to(self.device)
            d = model(to_t(a), to_t(b), mask=mt, isolate=isolate)
        return [None if not math.isfinite(v) else float(v) for v in d.cpu().tolist()]

    def score(self, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float | None:
        return self.score_batch(a[None], b[None], None if mask is None else np.asarray(mask)[None])[0]


def _mask_box(m: np.ndarray, h: int, w: int, min_size: int = 64) -> tuple[slice, slice]:
    """Bounding box of ``m`` grown by h/16 and to at least ``min_size`` (clipped to the image)."""
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return slice(0, h), slice(0, w)
    margin = max(1, h // 16)
    y0, y1, x0, x1 = ys.min() - margin, ys.max() + 1 + margin, xs.min() - margin, xs.max() + 1 + margin

    def grow(lo, hi, size):
        need = max(0, min(min_size, size) - (hi - lo))
        lo, hi = lo - need // 2, hi + need - need // 2
        shift = max(0, -lo) - max(0, hi - size)
        return max(0, lo + shift), min(size, hi + shift)

    y0, y1 = grow(y0, y1, h)
    x0, x1 = grow(x0, x1, w)
    return slice(int(y0), int(y1)), slice(int(x0), int(x1))


def summarise(values) -> dict:
    """{'mean', 'median', 'n'} over the finite values (None and NaN skipped; inf kept in the median)."""
    v = np.array([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], np.float64)
    if v.size == 0:
        return {"mean": None, "median": None, "n": 0}
    finite = v[np.isfinite(v)]
    mean = float(finite.mean()) if finite.size == v.size else math.inf
    return {"mean": mean, "median": float(np.median(v)), "n": int(v.size)}
