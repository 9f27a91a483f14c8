"""Measures of a mouth-opening curve that need no phoneme aligner or downloaded model.

The issue asks that a driven mouth "closes in silence and on bilabials, with no jitter". Silence is
measured elsewhere (mean opening over silent frames). Here:

- **In-speech closures**: short runs where the mouth falls back to its closed level *between* speech
  frames. In running speech these are mostly bilabial stops (/p b m/: the lips must meet) and a few
  other full closures; a driven mouth that never closes inside a sentence mumbles through them.
  ``closure_events`` finds them on one curve; ``closure_match`` scores a driven curve against the
  tracked one of the same audio (recall: the tracked closures the driven mouth also makes, within a
  frame; precision: the driven closures the tracked mouth also makes).
- **Jitter**: the median absolute residual of the curve about a Savitzky-Golay fit (5 frames,
  quadratic): shake faster than the syllable rate (4-6 Hz moves survive the fit; frame-to-frame
  flicker does not); compare a driven curve's with the tracked one's.

The closed level is taken from the *tracked* curve (its median in silence, or its 5th percentile
when the clip has no silence), so a driven mouth that only half-closes does not pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClosureSettings:
    level: float = 0.25  # closed = below rest + level x (speech p90 - rest)
    max_s: float = 0.32  # longer closed runs are pauses, not closures within a word
    tolerance: int = 1  # frames a driven closure may be off and still match


def closed_threshold(jaw: np.ndarray, silent: np.ndarray, level: float = ClosureSettings.level) -> float:
    """The opening below which ``jaw`` counts as closed: ``level`` of the way from its rest
    (median in silence, else its 5th percentile) to its 90th percentile in speech."""
    jaw, silent = np.asarray(jaw, np.float64), np.asarray(silent, bool)
    rest = float(np.median(jaw[silent])) if silent.sum() >= 3 else float(np.percentile(jaw, 5))
    speech = jaw[~silent] if (~silent).any() else jaw
    return rest + level * max(float(np.percentile(speech, 90)) - rest, 0.0)


def closure_events(jaw: np.ndarray, silent: np.ndarray, threshold: float, fps: float,
                   settings: ClosureSettings = ClosureSettings()) -> list[tuple[int, int]]:
    """[start, end) runs where ``jaw`` <= ``threshold`` for at most ``max_s`` seconds with a
    speech frame (not ``silent``) right before and right after: closures inside speech."""
    jaw, silent = np.asarray(jaw, np.float64), np.asarray(silent, bool)
    closed = jaw <= threshold
    max_len = max(1, int(round(settings.max_s * float(fps))))
    out, i, n = [], 0, len(jaw)
    while i < n:
        if not closed[i]:
            i += 1
            continue
        j = i
        while j < n and closed[j]:
            j += 1
        if i > 0 and j < n and j - i <= max_len and not silent[i - 1] and not silent[j]:
            out.append((i, j))
        i = j
    return out


def _overlaps(ev: tuple[int, int], others: list[tuple[int, int]], tol: int) -> bool:
    return any(s < ev[1] + tol and ev[0] - tol < e for s, e in others)


def closure_match(driven: np.ndarray, tracked: np.ndarray, silent: np.ndarray, fps: float,
                  settings: ClosureSettings = ClosureSettings()) -> dict:
    """Driven vs tracked in-speech closures of the same audio (both curves in the actor's units)."""
    thr = closed_threshold(tracked, silent, settings.level)
    ref = closure_events(tracked, silent, thr, fps, settings)
    got = closure_events(driven, silent, thr, fps, settings)
    speech_s = float((~np.asarray(silent, bool)).sum()) / float(fps)
    hit = sum(_overlaps(e, got, settings.tolerance) for e in ref)
    true = sum(_overlaps(e, ref, settings.tolerance) for e in got)
    return {
        "threshold": round(thr, 4),
        "tracked_closures": len(ref), "driven_closures": len(got),
        "tracked_per_speech_s": round(len(ref) / speech_s, 3) if speech_s else None,
        "driven_per_speech_s": round(len(got) / speech_s, 3) if speech_s else None,
        "recall": round(hit / len(ref), 3) if ref else None,
        "precision": round(true / len(got), 3) if got else None,
    }


def jitter(curve: np.ndarray, window: int = 5) -> float:
    """Median |curve - its Savitzky-Golay fit| (``window`` frames, quadratic): frame-to-frame shake."""
    from scipy.signal import savgol_filter

    c = np.asarray(curve, np.float64)
    if len(c) < window:
        return 0.0
    return float(np.median(np.abs(c - savgol_filter(c, window, 2, mode="interp"))))
