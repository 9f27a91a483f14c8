"""A shot's own audio/picture offset, measured without any trained model.

The model trained on a shot alone (`--audio-model shot`, or no generic model at all) would otherwise
learn that offset and carry it into every dub: talk_c's sound trails its picture by about 6
frames, near the edge of the small model's receptive field: its per-shot model fitted poorly and
drove other lines anywhere from 5 frames early to 8 late (docs/decisions.md, thirteenth session).

The estimate is a ridge regression of the tracked jaw on 16 log-mel bands (+-1 frame), fitted at
each candidate lag on one half of the shot and scored on the other (both ways round). On the
media clips it peaks clearly where the envelope-only estimate is ambiguous: several bands of
the spectrum follow the mouth, not only 1-3 kHz.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dubstudio.driving.a2e_data import ClipData
from dubstudio.core.controls import JAW

BANDS = 16
CONTEXT = 1  # frames either side of the lag
RIDGE = 1.0  # per-sample ridge strength on standardised features
# the mouth leads its sound a little: in-sync media clips peak at 0 to +2 frames at 25 fps
NATURAL_LEAD_S = 0.04
MIN_R = 0.3  # held-out r at the peak (each half's model on the other half, averaged)
MIN_FOLD_R = 0.2  # each half alone must see it
MIN_GAIN = 0.3  # over the natural lead's r (0.1 let through shifts on 6-8 s stretches of in-sync clips)
PLATEAU = 0.03  # lags within this of the best r count towards the peak's centre
FOLD_TOL = 0.05  # r: each half's r at the peak's centre against its own best
MIN_SECONDS = 8.0  # of tracked face: each half fits 48 weights (6 s stretches of in-sync clips gave false 2-5 frames)


def _bands(d: ClipData) -> np.ndarray:
    m = d.windows.mean(axis=2)  # (N, 80): each frame's mean log-mel
    m = m.reshape(len(m), BANDS, -1).mean(axis=2)
    return (m - m.mean(0)) / (m.std(0) + 1e-6)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """y[t] = x[t + k], edges repeated."""
    if k == 0:
        return x
    idx = np.clip(np.arange(len(x)) + k, 0, len(x) - 1)
    return x[idx]


def _held_out_r(feats: np.ndarray, jaw: np.ndarray, valid: np.ndarray, lag: int) -> tuple[float, float]:
    x = np.concatenate([_shift(feats, lag + j) for j in range(-CONTEXT, CONTEXT + 1)], axis=1)
    n = len(jaw)
    first = np.arange(n) < n // 2
    out = []
    for train in (first, ~first):
        tr, te = train & valid, ~train & valid
        if tr.sum() < x.shape[1] or te.sum() < 10:
            return float("nan"), float("nan")
        mu, ym = x[tr].mean(0), jaw[tr].mean()
        xt = x[tr] - mu
        w = np.linalg.solve(xt.T @ xt + RIDGE * tr.sum() * np.eye(x.shape[1]), xt.T @ (jaw[tr] - ym))
        pred = (x[te] - mu) @ w
        out.append(float(np.corrcoef(pred, jaw[te])[0, 1]) if pred.std() > 1e-12 and jaw[te].std() > 1e-12 else float("nan"))
    return out[0], out[1]


def shot_av_offset(d: ClipData, max_s: float = 0.4) -> dict:
    """How many frames a shot's audio runs late (> 0) or early (< 0) against its picture, beyond
    the mouth's natural lead. ``frames`` is 0 unless the evidence is clear: at least MIN_SECONDS
    of face; held-out r at the peak >= MIN_R, each half >= MIN_FOLD_R and near its own best;
    better than at the natural lead by MIN_GAIN; at least 2 frames from it and not at the
    search's edge. Pass ``seconds`` as ``ClipSource.audio_offset_s`` to train on realigned pairs."""
    fps = Fraction(d.fps)
    max_lag = int(max_s * fps)
    natural = int(round(NATURAL_LEAD_S * fps))
    out = {"frames": 0, "seconds": 0.0, "method": "mel-band ridge, halves cross-validated"}
    jaw = d.controls[:, JAW].astype(np.float64)
    if max_lag < 2 or d.valid.sum() < MIN_SECONDS * fps or jaw[d.valid].std() < 1e-6:
        return out | {"reason": "too little tracked speech to measure"}
    feats = _bands(d)
    lags = np.arange(-max_lag, max_lag + 1)
    folds = np.array([_held_out_r(feats, jaw, d.valid, int(k)) for k in lags])
    r = folds.mean(axis=1)
    if not np.isfinite(r).any():
        return out | {"reason": "the audio does not vary"}
    i = int(np.nanargmax(r))
    near = np.flatnonzero(np.abs(lags - lags[i]) <= 3)
    top = near[r[near] >= r[i] - PLATEAU]
    centre = float(np.average(lags[top], weights=r[top] - (r[i] - PLATEAU) + 1e-6))
    j = int(np.flatnonzero(lags == natural)[0]) if natural in lags else max_lag
    out |= {"lag_best": int(lags[i]), "lag_centre": round(centre, 2), "r_best": round(float(r[i]), 3),
            "r_halves": [round(float(v), 3) for v in folds[i]], "r_natural": round(float(r[j]), 3),
            "natural_lead_frames": natural}
    frames = int(round(centre)) - natural
    inside = 0 < i < len(lags) - 1  # a best r at the search's edge is not a peak
    # each half's model, scored on the other half, must see the peak too: its r at the peak's
    # centre near its own best (a broad peak's argmax wanders, so not the argmax itself)
    fold_peaks = [int(lags[np.nanargmax(f)]) if np.isfinite(f).any() else None for f in folds.T]
    out["lag_halves"] = fold_peaks
    c = int(np.flatnonzero(lags == int(round(centre)))[0])
    agree = all(np.isfinite(f).any() and f[c] >= np.nanmax(f) - FOLD_TOL for f in folds.T)
    clear = (inside and agree and r[i] >= MIN_R and np.nanmin(folds[i]) >= MIN_FOLD_R and r[i] - r[j] >= MIN_GAIN
             and abs(frames) >= 2)
    if clear:
        out |= {"frames": frames, "seconds": float(frames / fps)}
    return out
