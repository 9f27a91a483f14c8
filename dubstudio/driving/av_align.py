"""Audio/picture alignment of training clips for the person-generic audio-to-expression model.

Clips recorded with a separate sound recorder are often a few frames out of sync, and a model
trained on them learns that lag (talk_c's sound trails its picture by ~6 frames: a model trained
on it moves the mouth early). Before training, each clip's lag between its tracked jaw and its
1-3 kHz speech envelope is measured, without any model; the clips whose lag is stable (the same in
both halves) set the *consensus* lag of the set (the natural lead of the mouth over the sound
plus whatever the recordings share), and a clip that clearly sits elsewhere is shifted onto it.
Only the audio is moved, by whole frames, and only when the evidence is clear; the rest stay as
recorded. The consensus is relative: with fewer than ``MIN_STABLE`` stable clips nothing is moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.driving.a2e_data import ClipSource, as_audio
from dubstudio.driving.audio_features import speech_envelope

BAND = (1000.0, 3000.0)  # the second-formant band follows the mouth's opening (see audio_features)
MAX_LAG_S = 0.4
HALF_AGREE_FRAMES = 1  # a lag is stable when both halves of the clip agree this closely
MIN_STABLE = 3
MIN_SHIFT_FRAMES = 2
MIN_GAIN = 0.1  # r at the clip's own lag must beat r at the consensus lag by this much
MIN_R = 0.25


@dataclass(frozen=True)
class ClipLag:
    name: str
    fps: float
    lag: int  # best lag over the clip, frames; < 0: the jaw leads the sound
    r: float
    halves: tuple[int, int]
    r_by_lag: dict[int, float]

    @property
    def stable(self) -> bool:
        return bool(abs(self.halves[0] - self.halves[1]) <= HALF_AGREE_FRAMES and abs(self.lag - np.mean(self.halves)) <= HALF_AGREE_FRAMES)


def _corr_by_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> dict[int, float]:
    """Pearson r of x against y for every lag in +-max_lag (k > 0: x is k frames late)."""
    out = {}
    for k in range(-max_lag, max_lag + 1):
        a = x[k:] if k >= 0 else x[: len(x) + k]
        b = y[: len(y) - k] if k >= 0 else y[-k:]
        if len(a) >= 3 and a.std() > 1e-12 and b.std() > 1e-12:
            out[k] = float(np.corrcoef(a, b)[0, 1])
    return out


def clip_lag(src: ClipSource) -> ClipLag | None:
    """The jaw-vs-envelope lag of one tracked clip, or None where it cannot be measured."""
    from dubstudio.tracking.face_model import JAW
    from dubstudio.tracking.result import Tracking

    t = Tracking.load(src.tracking) if isinstance(src.tracking, (str, Path)) else src.tracking
    n = t.n_frames
    lo, hi = max(0, src.start), n if src.stop is None else min(n, src.stop)
    max_lag = int(MAX_LAG_S * float(t.fps))
    jaw = np.asarray(t.controls, np.float64)[:, JAW]
    valid = np.asarray(t.has_face, bool) & np.isfinite(jaw)
    if hi - lo < 8 * max_lag or valid[lo:hi].sum() < 4 * max_lag or max_lag < 2:
        return None
    env = speech_envelope(as_audio(src.audio), n, t.fps, band=BAND).astype(np.float64)
    idx = np.arange(lo, hi)
    x = np.interp(idx, np.flatnonzero(valid), jaw[valid])  # bridge no-face gaps
    e = env[lo:hi]
    full = _corr_by_lag(x, e, max_lag)
    if not full:
        return None
    h = len(x) // 2
    halves = []
    for sl in (slice(0, h), slice(h, None)):
        c = _corr_by_lag(x[sl], e[sl], max_lag)
        if not c:
            return None
        halves.append(max(c, key=c.get))
    lag = max(full, key=full.get)
    return ClipLag(src.name, float(t.fps), lag, full[lag], (halves[0], halves[1]), full)


def align_clips(clips: Sequence[Any]) -> tuple[list[ClipSource], dict]:
    """The clips with ``audio_offset_s`` set where a clip is clearly off the set's consensus lag,
    and a report (per clip: lag, halves, r, shift). Clips that already carry an offset are kept."""
    from dubstudio.driving.a2e_data import _source

    srcs = [_source(c) for c in clips]
    lags = [clip_lag(s) if s.audio_offset_s == 0 else None for s in srcs]
    stable = [lg.lag / lg.fps for lg in lags if lg is not None and lg.stable and lg.r >= MIN_R]
    report: dict[str, Any] = {"stable_clips": len(stable), "clips": []}
    if len(stable) < MIN_STABLE:
        report["consensus_s"] = None
        report["note"] = f"fewer than {MIN_STABLE} clips with a stable audio/picture lag: no clip moved"
        for s, lg in zip(srcs, lags, strict=True):
            report["clips"].append({"name": s.name, **(_lag_info(lg) if lg else {}), "audio_late_frames": 0})
        return srcs, report
    ref_s = float(np.median(stable))
    report["consensus_s"] = round(ref_s, 4)
    out = []
    for s, lg in zip(srcs, lags, strict=True):
        shift = 0
        if lg is not None and lg.stable and lg.r >= MIN_R:
            ref = int(round(ref_s * lg.fps))
            r_ref = lg.r_by_lag.get(ref, -1.0)
            if abs(lg.lag - ref) >= MIN_SHIFT_FRAMES and lg.r - r_ref >= MIN_GAIN:
                shift = lg.lag - ref
        # lag < consensus: the jaw leads more than usual, i.e. the audio is late by (ref - lag) frames
        out.append(replace(s, audio_offset_s=-shift / lg.fps) if shift else s)
        report["clips"].append({"name": s.name, **(_lag_info(lg) if lg else {}), "audio_late_frames": int(-shift)})
    return out, report


def _lag_info(lg: ClipLag) -> dict:
    return {"lag_frames": lg.lag, "halves": list(lg.halves), "r": round(lg.r, 3), "stable": bool(lg.stable)}
