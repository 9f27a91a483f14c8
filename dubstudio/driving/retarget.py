"""Dubber-driven curves: a dubbing actor's tracked mouth controls, mapped onto the actor.

Both people are tracked with the same tracker, so their named controls are already in shared
units (inter-ocular distances, see face_model). People still differ in how far they move: one
opens the jaw twice as wide as another for the same line. Each control therefore gets a
per-pair linear map calibrated on each person's *own* range (as the papers adapt an audio
model per actor with a per-parameter linear layer):

- ``jaw_open`` keeps 0 fixed (0 = lips together for everyone) and scales the dubber's typical
  opening (95th percentile) onto the actor's;
- the other controls match the median and the 5-95 % spread.

Only the named mouth controls are retargeted; head pose, eyes and the upper face stay the
actor's. Time is mapped in seconds, so a 30 fps dubber drives a 25 fps shot without drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dubstudio.core.controls import CONTROL_NAMES, JAW

MIN_SPREAD = 1e-3
SCALE_LIMITS = (0.33, 3.0)  # a control that barely moves for one person must not explode


@dataclass(frozen=True)
class ControlRange:
    """A person's own range of each named control over a shot (frames with a face only)."""

    median: np.ndarray
    p5: np.ndarray
    p95: np.ndarray

    @classmethod
    def of(cls, controls: np.ndarray, has_face: np.ndarray) -> "ControlRange":
        c = np.asarray(controls, np.float64)[np.asarray(has_face, bool)]
        if len(c) == 0:
            raise ValueError("no tracked frames with a face to calibrate on")
        return cls(np.median(c, axis=0), np.percentile(c, 5, axis=0), np.percentile(c, 95, axis=0))

    @property
    def spread(self) -> np.ndarray:
        return np.maximum(self.p95 - self.p5, MIN_SPREAD)


@dataclass(frozen=True)
class LinearMap:
    """actor_value = scale * dubber_value + offset, per control."""

    scale: np.ndarray
    offset: np.ndarray

    def __call__(self, controls: np.ndarray) -> np.ndarray:
        return controls * self.scale + self.offset

    def as_dict(self) -> dict:
        return {n: {"scale": float(s), "offset": float(o)} for n, s, o in zip(CONTROL_NAMES, self.scale, self.offset)}


def calibrate(dubber: ControlRange, actor: ControlRange) -> LinearMap:
    scale = actor.spread / dubber.spread
    offset = actor.median - scale * dubber.median
    # Jaw: anchored at 0 (closed); scale the typical opening.
    scale[JAW] = max(actor.p95[JAW], MIN_SPREAD) / max(dubber.p95[JAW], MIN_SPREAD)
    offset[JAW] = 0.0
    scale = np.clip(scale, *SCALE_LIMITS)
    return LinearMap(scale, offset)


def resample(values: np.ndarray, valid: np.ndarray, src_fps: Fraction, n_dst: int, dst_fps: Fraction, offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Sample a (M, C) per-frame curve of a clip at ``src_fps`` at the frame times of a shot.

    Destination frame i (time i / dst_fps) reads source time ``i / dst_fps - offset_s``, linearly
    interpolated. Returns the (n_dst, C) values and a mask of destination frames that fall
    inside the source clip and between two source frames with a face.
    """
    values = np.asarray(values, np.float64)
    t_dst = np.arange(n_dst) / float(dst_fps) - offset_s
    pos = t_dst * float(src_fps)  # fractional source frame index
    m = len(values)
    inside = (pos >= 0) & (pos <= m - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, m - 1)
    hi = np.clip(lo + 1, 0, m - 1)
    frac = np.clip(pos - lo, 0, 1)[:, None]
    out = values[lo] * (1 - frac) + values[hi] * frac
    ok = inside & np.asarray(valid, bool)[lo] & np.asarray(valid, bool)[hi]
    return out, ok


def retarget(dubber, actor, offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, LinearMap]:
    """Dubber tracking -> (actor-frame curves (N, C), driven mask (N,), the map used).

    ``dubber`` and ``actor`` are ``Tracking`` objects. Frames outside the dubber clip, or where
    the dubber's face was lost, are not driven (the caller keeps the actor's curve there).
    """
    fmap = calibrate(ControlRange.of(dubber.controls, dubber.has_face), ControlRange.of(actor.controls, actor.has_face))
    mapped = fmap(np.asarray(dubber.controls, np.float64))
    curves, ok = resample(mapped, dubber.has_face, dubber.fps, actor.n_frames, actor.fps, offset_s)
    ok &= np.asarray(actor.has_face, bool)
    return curves, ok, fmap
