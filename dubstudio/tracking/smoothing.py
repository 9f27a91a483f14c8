"""Zero-phase temporal smoothing: tracking is offline, so filters look both ways and add no lag.

Mouth controls get a short Savitzky-Golay window (keeps the peaks of fast syllables);
head pose and crops get longer ones. Every filter runs per contiguous run of frames with a
face, so a no-face gap never bleeds into its neighbours.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter
from scipy.spatial.transform import Rotation


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs where mask is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def savgol(x: np.ndarray, mask: np.ndarray, window: int, order: int = 2) -> np.ndarray:
    out = np.array(x, dtype=np.float64, copy=True)
    for a, b in segments(mask):
        n = b - a
        w = min(window, n if n % 2 else n - 1)
        if w > order + 1:
            out[a:b] = savgol_filter(out[a:b], w, order, axis=0, mode="interp")
    return out


def gaussian(x: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    out = np.array(x, dtype=np.float64, copy=True)
    if sigma <= 0:
        return out
    for a, b in segments(mask):
        out[a:b] = gaussian_filter1d(out[a:b], sigma, axis=0, mode="nearest")
    return out


def smooth_rotations(rot: np.ndarray, mask: np.ndarray, window: int) -> np.ndarray:
    """Smooth (N, 3, 3) rotations as rotation vectors relative to the shot's mean rotation."""
    out = np.array(rot, copy=True)
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return out
    r = Rotation.from_matrix(rot[idx])
    mean = r.mean()
    rel = np.zeros((len(rot), 3))
    rel[idx] = (mean.inv() * r).as_rotvec()
    rel = savgol(rel, mask, window)
    out[idx] = (mean * Rotation.from_rotvec(rel[idx])).as_matrix()
    return out


def fill_gaps(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a face (held at the ends)."""
    x = np.array(x, dtype=np.float64, copy=True)
    good = np.flatnonzero(mask)
    if len(good) == 0 or len(good) == len(mask):
        return x
    flat = x.reshape(len(x), -1)
    t = np.arange(len(x))
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(t, good, flat[good, j])
    return flat.reshape(x.shape)
