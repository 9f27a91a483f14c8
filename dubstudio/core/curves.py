"""Editable expression curves: tracked base, driven layer, keyframes -> the curves the renderer uses.

Per named control (``CONTROL_NAMES``) three layers combine, bottom to top:

1. **tracked** ``T`` (N,): the tracker's controls. Read-only here: edits never touch it, so the
   user can always get back to it (reset a frame or a range).
2. **driven** ``S`` (N,) with a per-frame weight ``w`` in [0, 1] (0 = off): a curve from dubbed
   audio or a dubbing actor's video. The *underlying* curve is ``U = T + w (S - T)``.
3. **keys** (frame -> ``Key``). The final curve is ``F = U + D`` where ``D`` is the key layer's
   delta, built from each key's *target* at frame f:

   - ``mode="replace"``: the target is the key's value, so the delta is ``value - U(f)``;
   - ``mode="offset"``:  the target is ``U(f) + value``, so the delta is ``value``.

   Between two adjacent keys a, b the delta blends ``D = (1 - s) d_a(f) + s d_b(f)`` where
   ``s`` runs 0 -> 1 as set by key a's interpolation (``linear``; ``hold`` = stays at a until b;
   ``smooth`` = monotone cubic through the keys' values at their frames, Fritsch-Carlson/PCHIP
   tangents with flat ends, so it never overshoots between monotone keys). Consequences:
   two replace keys interpolate their values (the underlying curve is ignored between them);
   two offset keys interpolate offsets (its motion shows through); a replace key next to an
   offset-0 ("neutral") key cross-fades from the value back to the live underlying curve, which
   is how visemes and range resets hand back to the tracked or driven motion.
   Outside the outermost keys the first/last key's delta fades out with a smoothstep over
   ``ease_frames`` frames (default 3: frames k±1, k±2 are partial, k±3 is the underlying curve).

Beside the layers the curves carry the **words** of the driven layer's line, where the mouth says
each one (``(frame, word)``, a fractional frame, in order): a dub with its script sets them, and
dragging a word re-times the mouth under it (``core.retime``), so they are saved and undone with
the curves they describe.

Values are stored as the user set them; ``CONTROL_RANGE`` clamps only in ``display``.
Mutate through ``dubstudio.core.edits`` (undoable); the primitives here are what edits call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from dubstudio.core.controls import CONTROL_NAMES, CONTROL_RANGE

INTERPOLATIONS = ("linear", "smooth", "hold")
MODES = ("replace", "offset")
DEFAULT_EASE_FRAMES = 3
_LINEAR, _SMOOTH, _HOLD = range(3)

ControlRef = str | int


@dataclass(frozen=True, slots=True)
class Key:
    """One keyframe. ``interp`` shapes the segment from this key to the next one."""

    frame: int
    value: float
    interp: str = "smooth"
    mode: str = "replace"

    def __post_init__(self) -> None:
        if isinstance(self.frame, bool) or int(self.frame) != self.frame:
            raise ValueError(f"key frame must be an integer, got {self.frame!r}")
        object.__setattr__(self, "frame", int(self.frame))
        object.__setattr__(self, "value", float(self.value))
        if not np.isfinite(self.value):
            raise ValueError(f"key value must be finite, got {self.value!r}")
        if self.interp not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interp!r}")
        if self.mode not in MODES:
            raise ValueError(f"key mode must be one of {MODES}, got {self.mode!r}")

    @property
    def neutral(self) -> bool:
        """An offset key of 0: pins the curve to the underlying (tracked/driven) motion."""
        return self.mode == "offset" and self.value == 0.0


def neutral_key(frame: int, interp: str = "smooth") -> Key:
    return Key(frame, 0.0, interp, "offset")


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class ControlCurves:
    """The per-frame named controls a user wants, layered over the tracked ones (see module doc).

    ``changed(control_name, start, stop)`` is emitted after any change that can alter
    ``evaluate(control)[start:stop]`` (views redraw just that span).
    """

    changed = Signal(str, int, int)
    words_changed = Signal()  # the line's words were set or moved

    def __init__(
        self,
        tracked: np.ndarray,
        names: Iterable[str] = CONTROL_NAMES,
        ease_frames: int = DEFAULT_EASE_FRAMES,
    ) -> None:
        self.names = tuple(names)
        base = np.array(tracked, dtype=np.float64, copy=True)
        if base.ndim != 2 or base.shape[1] != len(self.names):
            raise ValueError(f"tracked controls must be (N, {len(self.names)}), got {base.shape}")
        base.setflags(write=False)
        self._tracked = base
        n, c = base.shape
        self._index = {name: i for i, name in enumerate(self.names)}
        self._keys: list[dict[int, Key]] = [{} for _ in range(c)]
        self._driven = np.zeros((n, c))
        self._weight = np.zeros((n, c))
        self._sources: dict[int, str] = {}
        self._words: tuple[tuple[float, str], ...] = ()
        self._ease = self._check_ease(ease_frames)
        self._cache: list[np.ndarray | None] = [None] * c
        self._key_arrays: list[tuple[np.ndarray, ...] | None] = [None] * c
        self._batch_depth = 0
        self._pending: dict[int, tuple[int, int]] = {}

    @classmethod
    def from_tracking(cls, tracking, ease_frames: int = DEFAULT_EASE_FRAMES) -> ControlCurves:
        """From a ``dubstudio.tracking.result.Tracking`` (its controls are copied, never changed)."""
        return cls(tracking.controls, ease_frames=ease_frames)

    # -- shape and lookup --

    @property
    def n_frames(self) -> int:
        return self._tracked.shape[0]

    @property
    def n_controls(self) -> int:
        return self._tracked.shape[1]

    def index(self, control: ControlRef) -> int:
        if isinstance(control, str):
            try:
                return self._index[control]
            except KeyError:
                raise KeyError(f"unknown control {control!r}; known: {', '.join(self.names)}") from None
        i = int(control)
        if not 0 <= i < self.n_controls:
            raise IndexError(f"control index {i} out of range 0..{self.n_controls - 1}")
        return i

    def indices(self, controls: ControlRef | Iterable[ControlRef] | None) -> list[int]:
        """Indices of one control, several, or all (``None``), in the given order, unique."""
        if controls is None:
            return list(range(self.n_controls))
        if isinstance(controls, (str, int, np.integer)):
            return [self.index(controls)]
        out: list[int] = []
        for c in controls:
            i = self.index(c)
            if i not in out:
                out.append(i)
        return out

    def check_frame(self, frame: int) -> int:
        if not 0 <= frame < self.n_frames:
            raise IndexError(f"frame {frame} is outside the shot (0..{self.n_frames - 1})")
        return int(frame)

    @property
    def ease_frames(self) -> int:
        return self._ease

    @ease_frames.setter
    def ease_frames(self, value: int) -> None:
        self._ease = self._check_ease(value)
        with self.batch():
            for ci in range(self.n_controls):
                self._invalidate(ci, 0, self.n_frames)

    @staticmethod
    def _check_ease(value: int) -> int:
        if int(value) != value or value < 0:
            raise ValueError(f"ease_frames must be an integer >= 0, got {value!r}")
        return int(value)

    # -- read access --

    @property
    def tracked(self) -> np.ndarray:
        """(N, C) tracked controls, read-only."""
        return self._tracked

    def keys(self, control: ControlRef) -> tuple[Key, ...]:
        d = self._keys[self.index(control)]
        return tuple(d[f] for f in sorted(d))

    def key_at(self, control: ControlRef, frame: int) -> Key | None:
        return self._keys[self.index(control)].get(int(frame))

    def keys_in(self, control: ControlRef, start: int, stop: int) -> tuple[Key, ...]:
        return tuple(k for k in self.keys(control) if start <= k.frame < stop)

    def all_keys(self) -> dict[str, tuple[Key, ...]]:
        """Keys of every control that has any, by name."""
        return {self.names[i]: self.keys(i) for i in range(self.n_controls) if self._keys[i]}

    @property
    def words(self) -> tuple[tuple[float, str], ...]:
        """The driven line's words, ((frame, word), ...) in time order; () when none are known."""
        return self._words

    def driven(self, control: ControlRef) -> np.ndarray:
        """(N,) driven curve (read-only view; meaningful where ``driven_weight`` > 0)."""
        v = self._driven[:, self.index(control)]
        v.setflags(write=False)
        return v

    def driven_weight(self, control: ControlRef) -> np.ndarray:
        w = self._weight[:, self.index(control)]
        w.setflags(write=False)
        return w

    def driven_source(self, control: ControlRef) -> str | None:
        """Where the driven curve came from (e.g. ``"audio:speech_en.wav"``), if known."""
        return self._sources.get(self.index(control))

    def has_driven(self, control: ControlRef) -> bool:
        return bool(np.any(self._weight[:, self.index(control)] > 0))

    def underlying(self, control: ControlRef) -> np.ndarray:
        """Tracked blended with the driven layer, before keys (what a reset returns to)."""
        ci = self.index(control)
        t, s, w = self._tracked[:, ci], self._driven[:, ci], self._weight[:, ci]
        # Exact endpoints: weight 0 is bit-for-bit tracked, weight 1 bit-for-bit driven.
        return np.where(w <= 0, t, np.where(w >= 1, s, t + w * (s - t)))

    def evaluate(self, control: ControlRef) -> np.ndarray:
        """(N,) final curve (cached; read-only)."""
        ci = self.index(control)
        out = self._cache[ci]
        if out is None:
            out = self._evaluate(ci)
            out.setflags(write=False)
            self._cache[ci] = out
        return out

    def evaluate_all(self) -> np.ndarray:
        """(N, C) final curves: what the renderer consumes."""
        return np.stack([self.evaluate(i) for i in range(self.n_controls)], axis=1)

    def at(self, frame: int) -> np.ndarray:
        """(C,) final controls of one frame (the renderer's per-frame input)."""
        f = self.check_frame(frame)
        return np.array([self.evaluate(i)[f] for i in range(self.n_controls)])

    def display(self, control: ControlRef) -> np.ndarray:
        """``evaluate`` clamped to the control's soft range, for drawing only."""
        name = self.names[self.index(control)]
        lo, hi = CONTROL_RANGE.get(name, (-np.inf, np.inf))
        return np.clip(self.evaluate(control), lo, hi)

    def is_edited(self) -> bool:
        return any(self._keys) or bool(np.any(self._weight > 0))

    def copy(self) -> ControlCurves:
        """Independent copy (no signal connections), e.g. to autosave off the GUI thread."""
        c = ControlCurves(self._tracked, self.names, self._ease)
        c._keys = [dict(d) for d in self._keys]
        c._driven = self._driven.copy()
        c._weight = self._weight.copy()
        c._sources = dict(self._sources)
        c._words = self._words
        return c

    # -- primitives (called by edits; they emit ``changed``) --

    def put_key(self, control: ControlRef, key: Key) -> Key | None:
        """Set ``key`` (replacing one at the same frame); returns the replaced key."""
        ci = self.index(control)
        self.check_frame(key.frame)
        d = self._keys[ci]
        old = d.get(key.frame)
        d[key.frame] = key
        self._key_arrays[ci] = None
        self._invalidate(ci, *self._influence(ci, key.frame, key.frame))
        return old

    def pop_key(self, control: ControlRef, frame: int) -> Key | None:
        """Remove the key at ``frame``; returns it (``None`` if there was none)."""
        ci = self.index(control)
        d = self._keys[ci]
        if int(frame) not in d:
            return None
        span = self._influence(ci, int(frame), int(frame))  # while the key still counts
        old = d.pop(int(frame))
        self._key_arrays[ci] = None
        self._invalidate(ci, *span)
        return old

    def write_driven(
        self,
        control: ControlRef,
        start: int,
        values: np.ndarray | None,
        weights: np.ndarray | float | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Overwrite the driven values and/or weights of frames ``start:start+L``; returns the old
        (values, weights) of that span so an edit can restore it exactly."""
        ci = self.index(control)
        length = len(values) if values is not None else len(np.atleast_1d(weights))
        stop = start + length
        if start < 0 or stop > self.n_frames or length == 0:
            raise IndexError(f"driven span {start}:{stop} is outside the shot (0..{self.n_frames})")
        old = (self._driven[start:stop, ci].copy(), self._weight[start:stop, ci].copy())
        if values is not None:
            v = np.asarray(values, dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise ValueError("driven values must be finite")
            self._driven[start:stop, ci] = v
        if weights is not None:
            w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (length,))
            if not np.all((w >= 0) & (w <= 1)):
                raise ValueError("driven weights must lie in [0, 1]")
            self._weight[start:stop, ci] = w
        self._invalidate(ci, *self._influence(ci, start, stop - 1))
        return old

    def set_words(self, words) -> tuple[tuple[float, str], ...]:
        """Replace the line's words ((frame, word), ...; sorted here); returns the old ones."""
        new = tuple(sorted(((float(f), str(w)) for f, w in words), key=lambda fw: fw[0]))
        if not all(np.isfinite(f) for f, _ in new):
            raise ValueError("word frames must be finite")
        old, self._words = self._words, new
        if new != old:
            self.words_changed.emit()
        return old

    def set_driven_source(self, control: ControlRef, source: str | None) -> str | None:
        ci = self.index(control)
        old = self._sources.pop(ci, None)
        if source is not None:
            self._sources[ci] = str(source)
        return old

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect ``changed`` emissions and send one per control at the end (one edit, one redraw)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                pending, self._pending = self._pending, {}
                for ci, (lo, hi) in sorted(pending.items()):
                    self.changed.emit(self.names[ci], lo, hi)

    # -- internals --

    def _influence(self, ci: int, lo: int, hi: int) -> tuple[int, int]:
        """Frames [start, stop) whose final value can change when keys or the underlying curve
        change within frames lo..hi: smooth tangents reach two keys either side, eases reach
        ``ease_frames`` beyond the outermost keys."""
        frames = sorted(self._keys[ci])
        start, stop = lo, hi
        if frames:
            reach = max(self._ease - 1, 0)  # the last frame an ease still touches
            i0 = int(np.searchsorted(frames, lo, side="left"))
            i1 = int(np.searchsorted(frames, hi, side="right"))
            start = min(lo, frames[i0 - 2] if i0 >= 2 else frames[0] - reach)
            stop = max(hi, frames[i1 + 1] if i1 + 1 < len(frames) else frames[-1] + reach)
        return max(0, start), min(self.n_frames, stop + 1)

    def _invalidate(self, ci: int, start: int, stop: int) -> None:
        self._cache[ci] = None
        if stop <= start:
            return
        if self._batch_depth:
            lo, hi = self._pending.get(ci, (start, stop))
            self._pending[ci] = (min(lo, start), max(hi, stop))
        else:
            self.changed.emit(self.names[ci], start, stop)

    def _arrays(self, ci: int) -> tuple[np.ndarray, ...]:
        arr = self._key_arrays[ci]
        if arr is None:
            ks = [self._keys[ci][f] for f in sorted(self._keys[ci])]
            arr = (
                np.array([k.frame for k in ks], dtype=np.int64),
                np.array([k.value for k in ks], dtype=np.float64),
                np.array([k.mode == "replace" for k in ks], dtype=bool),
                np.array([INTERPOLATIONS.index(k.interp) for k in ks], dtype=np.int64),
            )
            self._key_arrays[ci] = arr
        return arr

    def _evaluate(self, ci: int) -> np.ndarray:
        u = self.underlying(ci)
        frames, values, replace, interp = self._arrays(ci)
        n_keys = len(frames)
        if n_keys == 0:
            return u

        def delta(k: np.ndarray | int, f: np.ndarray) -> np.ndarray:
            return np.where(replace[k], values[k] - u[f], values[k])

        d = np.zeros(self.n_frames)
        first, last = int(frames[0]), int(frames[-1])
        if n_keys == 1:
            d[first] = delta(0, np.array([first]))[0]
        else:
            f = np.arange(first, last + 1)
            a = np.clip(np.searchsorted(frames, f, side="right") - 1, 0, n_keys - 2)
            b = a + 1
            t = (f - frames[a]) / (frames[b] - frames[a])
            s = t.copy()
            hold = interp[a] == _HOLD
            s[hold] = (t[hold] >= 1.0).astype(np.float64)
            smooth = interp[a] == _SMOOTH
            if smooth.any():
                absolute = np.where(replace, values, u[frames] + values)
                alpha, beta = _monotone_slopes(frames, absolute)
                ts = t[smooth]
                h01 = ts * ts * (3.0 - 2.0 * ts)
                h10 = ts * (ts - 1.0) ** 2
                h11 = ts * ts * (ts - 1.0)
                s[smooth] = h01 + h10 * alpha[a[smooth]] + h11 * beta[a[smooth]]
            d[first : last + 1] = (1.0 - s) * delta(a, f) + s * delta(b, f)
        e = self._ease
        if e > 0:
            f = np.arange(max(0, first - e + 1), first)
            d[f] = smoothstep((f - (first - e)) / e) * delta(0, f)
            f = np.arange(last + 1, min(self.n_frames, last + e))
            d[f] = smoothstep((last + e - f) / e) * delta(n_keys - 1, f)
        return u + d


def _monotone_slopes(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment, the start/end tangents of a monotone cubic through (x, y), divided by the
    segment's secant (so the segment's 0->1 blend is ``h01 + h10*alpha + h11*beta``).

    Interior tangents are PCHIP's weighted harmonic mean (0 at local extrema), end tangents 0:
    the curve eases in/out of the outer keys and stays within each pair of key values."""
    h = np.diff(x).astype(np.float64)
    delta = np.diff(y) / h
    m = np.zeros(len(x))
    if len(x) > 2:
        d0, d1, h0, h1 = delta[:-1], delta[1:], h[:-1], h[1:]
        same = d0 * d1 > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            hm = 3.0 * (h0 + h1) / ((2.0 * h1 + h0) / d0 + (h1 + 2.0 * h0) / d1)
        m[1:-1] = np.where(same, hm, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(delta != 0, m[:-1] / delta, 0.0)
        beta = np.where(delta != 0, m[1:] / delta, 0.0)
    # Fritsch-Carlson: tangent/secant ratios in [0, 3] keep every segment monotone.
    return np.clip(alpha, 0.0, 3.0), np.clip(beta, 0.0, 3.0)
