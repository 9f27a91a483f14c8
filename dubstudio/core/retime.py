"""Re-time a word of the dubbed line: drag it, and the mouth under it follows.

The aligner places each word of the dub's script where the recording says it (``driving.
script_align``); where it misplaces one, or where an editor wants a word's mouth earlier or later,
they drag the word on the timeline. A word is known by its start only, so moving word i's start
from ``f`` to ``g`` moves the boundary between word i-1 and word i: the curves between the
previous word's start ``a`` and the next word's start ``b`` are warped in time, piecewise linearly
through ``a -> a``, ``f -> g``, ``b -> b`` (the line's first and last words are anchored at the
shot's ends instead). The driven layer is resampled through the warp and keys inside the span move
with it, so everything the editor sees under the word moves with the word and nothing outside
``a..b`` changes. The tracked base stays where it was: it is the actor's own performance.

``RetimeWord`` is one undoable edit (``core.edits``' shape) that also records the moved words on
the curves; ``RetimeLine`` moves several at once (all of them back where the aligner put them);
``remap_frames`` carries other times of the line (its script's lip contacts) through the same
warps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dubstudio.core.curves import ControlCurves
from dubstudio.core.edits import Edit, SetKeys

Words = Sequence[tuple[float, str]]
MIN_GAP = 1.0  # frames kept between a moved word's start and its neighbours'


def in_frames(words_s, fps: float) -> tuple[tuple[float, str], ...]:
    """Words timed in shot seconds ((seconds, word), ..., as the dub records them) as (frame,
    word) in time order."""
    return tuple(sorted(((float(t) * fps, str(w)) for t, w in words_s or []), key=lambda fw: fw[0]))


def anchors(words: Words, n_frames: int) -> np.ndarray:
    """The warp's fixed points: the shot's first frame, each word's start, its last frame. A line
    can run past the shot (a stem placed by timecode): its words outside count as the shot's ends."""
    last = float(n_frames - 1)
    return np.concatenate([[0.0], np.clip([float(f) for f, _ in words], 0.0, last), [last]])


def inside(words: Words, index: int, n_frames: int) -> bool:
    """Whether word ``index`` starts inside the shot (only those can move)."""
    return 0.0 <= words[index][0] <= n_frames - 1


def word_limits(words: Words, index: int, n_frames: int) -> tuple[float, float]:
    """The frames word ``index``'s start may move between (its neighbours' starts, less MIN_GAP)."""
    x = anchors(words, n_frames)
    return x[index] + MIN_GAP, x[index + 2] - MIN_GAP


def remap_frames(frames, before: Words, after: Words, n_frames: int) -> np.ndarray:
    """``frames`` of the line placed by the words ``before`` carried to where the words ``after``
    put them (both lists the same words in the same order): piecewise linear between the words'
    starts, as ``RetimeWord`` warps the curves."""
    x0, x1 = anchors(before, n_frames), anchors(after, n_frames)
    if len(x0) != len(x1):
        raise ValueError(f"{len(before)} words before but {len(after)} after: not the same line")
    f = np.asarray(frames, np.float64)
    return np.where((f >= 0) & (f <= n_frames - 1), np.interp(f, x0, x1), f)  # outside the shot nothing moved


class RetimeLine(Edit):
    """Move the line's words from ``words`` (as the editor shows them) to ``to`` (the same words in
    the same order, other starts): the driven layer and the keys between the first and the last
    moved word's neighbours follow, through the warp that takes each start to its new place
    (module doc), and the curves' words become ``to``."""

    def __init__(self, words: Words, to: Words, text: str = "Re-time the line's words") -> None:
        self.words = tuple((float(f), str(w)) for f, w in words)
        self.to = tuple((float(f), str(w)) for f, w in to)
        if [w for _, w in self.words] != [w for _, w in self.to]:
            raise ValueError("the words to move to are not the line's words in the same order")
        self.text = text
        self._keys = SetKeys([])
        self._driven: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self._old_words: tuple[tuple[float, str], ...] = ()

    def apply(self, curves: ControlCurves) -> None:
        n = curves.n_frames
        x_old, x_new = anchors(self.words, n), anchors(self.to, n)
        if np.any(np.diff(x_new) < 0):
            raise ValueError("the words would pass each other: each must stay between its neighbours")
        moved = np.flatnonzero(x_old != x_new)
        if len(moved):
            a, b = x_old[moved[0] - 1], x_old[moved[-1] + 1]  # the span that changes (the same before and after)
            with curves.batch():
                self._warp(curves, x_old, x_new, a, b)
        self._old_words = curves.set_words(self.to)

    def _warp(self, curves: ControlCurves, x_old: np.ndarray, x_new: np.ndarray, a: float, b: float) -> None:
        n = curves.n_frames
        lo, hi = int(np.ceil(a)), min(int(np.floor(b)) + 1, n)
        source = np.interp(np.arange(lo, hi), x_new, x_old)  # each frame shows the frame the warp brings there
        self._driven = []
        all_f = np.arange(n)
        for ci in range(curves.n_controls):
            if not np.any(curves.driven_weight(ci)[lo:hi] > 0):
                continue
            v = np.interp(source, all_f, curves.driven(ci))
            w = np.interp(source, all_f, curves.driven_weight(ci))
            ov, ow = curves.write_driven(ci, lo, v, np.clip(w, 0.0, 1.0))
            self._driven.append((ci, lo, ov, ow))
        changes = []
        for ci in range(curves.n_controls):
            within = [k for k in curves.keys(ci) if a < k.frame < b]
            targets = np.rint(np.interp([k.frame for k in within], x_old, x_new)).astype(int)
            moving = [(k, int(t)) for k, t in zip(within, targets) if t != k.frame]
            changes += [(ci, k.frame, None) for k, _ in moving]
            # where the warp squeezes keys onto one frame the last put is kept (undo restores the rest)
            changes += [(ci, t, replace(k, frame=t)) for k, t in moving]
        self._keys = SetKeys(changes, self.text)
        self._keys.apply(curves)

    def revert(self, curves: ControlCurves) -> None:
        with curves.batch():
            self._keys.revert(curves)
            for ci, lo, ov, ow in reversed(self._driven):
                curves.write_driven(ci, lo, ov, ow)
        curves.set_words(self._old_words)


class RetimeWord(RetimeLine):
    """Move the start of word ``index`` of ``words`` to frame ``to_frame``, between its
    neighbours' starts (``word_limits``): the curves between them follow."""

    def __init__(self, words: Words, index: int, to_frame: float) -> None:
        words = tuple((float(f), str(w)) for f, w in words)
        if not 0 <= index < len(words):
            raise IndexError(f"word {index} is not in the line's {len(words)} words")
        self.index, self.to_frame = int(index), float(to_frame)
        to = list(words)
        to[index] = (self.to_frame, words[index][1])
        super().__init__(words, to, f"Re-time “{words[index][1]}”")

    def apply(self, curves: ControlCurves) -> None:
        n, word = curves.n_frames, self.words[self.index]
        if not inside(self.words, self.index, n):
            raise ValueError(f"“{word[1]}” is spoken outside the shot (frame {word[0]:.0f})")
        lo_ok, hi_ok = word_limits(self.words, self.index, n)
        if not lo_ok <= self.to_frame <= hi_ok:
            raise ValueError(f"“{word[1]}” can move between frames {lo_ok:.0f} and {hi_ok:.0f} "
                             f"(its neighbours' starts); {self.to_frame:.0f} is outside")
        super().apply(curves)
