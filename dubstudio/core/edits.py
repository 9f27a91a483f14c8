"""Undoable curve edits: small plain objects that keep what they overwrote (ARCHITECTURE rule 5).

Like napari's paint atoms, an edit records its own inverse when applied (the keys it replaced,
the driven span it overwrote), so ``revert`` restores the curves bit for bit and ``apply``
after ``revert`` (redo) reproduces the edit. One user gesture is one edit: a viseme is one
``SetKeys``, a whole key drag is one ``MoveKey`` (drag updates ``merge`` into it, as
``QUndoCommand.mergeWith`` does). ``EditHistory`` is the core's undo stack (``core.undo``) bound
to one ``ControlCurves``; the editor pushes the same objects on the same kind of stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from dubstudio.core.undo import UndoStack

from dubstudio.core.curves import ControlCurves, ControlRef, Key, neutral_key
from dubstudio.core.controls import CONTROL_NAMES


def _label(control: ControlRef) -> str:
    if isinstance(control, str):
        return control
    i = int(control)
    return CONTROL_NAMES[i] if 0 <= i < len(CONTROL_NAMES) else f"control {i}"


def _labels(controls: ControlRef | Iterable[ControlRef] | None) -> str:
    if controls is None:
        return "all controls"
    if isinstance(controls, (str, int, np.integer)):
        return _label(controls)
    return ", ".join(_label(c) for c in controls)


KEY_DRAG_MERGE_ID = 0x4B45  # "KE"


class Edit:
    """Base class. ``apply`` records the inverse; ``revert`` uses it. ``text`` names the edit in
    an Undo menu."""

    text: str = "Edit"
    # an undo stack merges consecutive edits of one family (``core.undo``); -1: never merged
    merge_id: int = -1

    def apply(self, curves: ControlCurves) -> None:
        raise NotImplementedError

    def revert(self, curves: ControlCurves) -> None:
        raise NotImplementedError

    def merge(self, other: Edit) -> bool:
        """Absorb ``other`` (already applied right after this one) and return True, or return
        False to keep them as two undo steps."""
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.text}>"


class SetKeys(Edit):
    """A batch of key puts (``Key``) and deletions (``None``) as one undo step (e.g. a viseme)."""

    def __init__(self, changes: Iterable[tuple[ControlRef, int, Key | None]], text: str = "Set keys") -> None:
        self.changes = [(c, int(f), k) for c, f, k in changes]
        for c, f, k in self.changes:
            if k is not None and k.frame != f:
                raise ValueError(f"key for frame {f} has frame {k.frame}")
        self.text = text
        self._old: list[tuple[int, int, Key | None]] = []

    def apply(self, curves: ControlCurves) -> None:
        done: list[tuple[int, int, Key | None]] = []
        with curves.batch():
            try:
                for c, f, k in self.changes:
                    ci = curves.index(c)
                    old = curves.put_key(ci, k) if k is not None else curves.pop_key(ci, f)
                    done.append((ci, f, old))
            except BaseException:
                _restore_keys(curves, done)  # all or nothing
                raise
        self._old = done

    def revert(self, curves: ControlCurves) -> None:
        with curves.batch():
            _restore_keys(curves, self._old)


def _restore_keys(curves: ControlCurves, done: Sequence[tuple[int, int, Key | None]]) -> None:
    for ci, f, old in reversed(done):
        if old is None:
            curves.pop_key(ci, f)
        else:
            curves.put_key(ci, old)


class SetKey(SetKeys):
    """Add a key, or change the one at its frame (value, interpolation, mode)."""

    def __init__(self, control: ControlRef, key: Key) -> None:
        super().__init__([(control, key.frame, key)], f"Set {_label(control)} key at {key.frame}")
        self.control, self.key = control, key


class DeleteKey(SetKeys):
    def __init__(self, control: ControlRef, frame: int) -> None:
        super().__init__([(control, frame, None)], f"Delete {_label(control)} key at {frame}")
        self.control, self.frame = control, int(frame)

    def apply(self, curves: ControlCurves) -> None:
        if curves.key_at(self.control, self.frame) is None:
            raise KeyError(f"no {_label(self.control)} key at frame {self.frame}")
        super().apply(curves)


class MoveKey(Edit):
    """Move a key to another frame and/or give it another value (a drag).

    A key dropped on another key's frame replaces it (restored on undo). Consecutive updates of
    one drag (same non-None ``drag`` token, each starting where the last ended) merge into one
    edit; keys the drag ran over stay removed, as they were after the individual updates."""

    def __init__(
        self,
        control: ControlRef,
        frame: int,
        to_frame: int | None = None,
        value: float | None = None,
        drag: object = None,
    ) -> None:
        self.control = control
        self.frame = int(frame)
        self.to_frame = self.frame if to_frame is None else int(to_frame)
        self.value = value
        self.drag = drag
        self.merge_id = KEY_DRAG_MERGE_ID if drag is not None else -1  # one drag is one undo step
        self.text = f"Move {_label(control)} key"
        self._original: Key | None = None
        self._new: Key | None = None
        self._displaced: Key | None = None
        self._run_over: list[Key] = []

    def apply(self, curves: ControlCurves) -> None:
        ci = curves.index(self.control)
        curves.check_frame(self.to_frame)
        key = curves.key_at(ci, self.frame)
        if key is None:
            raise KeyError(f"no {_label(self.control)} key at frame {self.frame}")
        value = key.value if self.value is None else self.value
        new = dataclasses.replace(key, frame=self.to_frame, value=value)
        with curves.batch():
            self._original = curves.pop_key(ci, self.frame)
            for k in self._run_over:  # only on redo of a merged drag
                curves.pop_key(ci, k.frame)
            self._displaced = curves.put_key(ci, new)
        self._new = new

    def revert(self, curves: ControlCurves) -> None:
        ci = curves.index(self.control)
        with curves.batch():
            curves.pop_key(ci, self.to_frame)
            if self._displaced is not None:
                curves.put_key(ci, self._displaced)
            for k in reversed(self._run_over):
                curves.put_key(ci, k)
            curves.put_key(ci, self._original)

    def merge(self, other: Edit) -> bool:
        if not (
            isinstance(other, MoveKey)
            and self.drag is not None
            and other.drag == self.drag
            and other.control == self.control
            and other.frame == self.to_frame
            and other._new is not None
        ):
            return False
        if self._displaced is not None:
            self._run_over.append(self._displaced)
        self._displaced = other._displaced
        self.to_frame = other.to_frame
        self.value = other._new.value
        self._new = other._new
        return True


class ResetRange(Edit):
    """Back to tracked on frames ``start:stop``: removes keys there and the driven layer's weight.

    Keys kept outside the range would otherwise reach into it (interpolation across it, or their
    ease), so neutral keys are added at the range's edges where needed: the curve meets the
    tracked curve at the edges and equals it inside."""

    def __init__(self, controls: ControlRef | Iterable[ControlRef] | None = None, start: int = 0, stop: int | None = None) -> None:
        self.controls = controls if controls is None or isinstance(controls, (str, int)) else tuple(controls)
        self.start, self.stop = int(start), stop
        where = "" if start == 0 and stop is None else f" ({start}-{'end' if stop is None else stop - 1})"
        self.text = f"Reset {_labels(self.controls)} to tracked{where}"
        self._keys = SetKeys([])
        self._driven: list[tuple[int, np.ndarray]] = []

    def apply(self, curves: ControlCurves) -> None:
        start = max(0, self.start)
        stop = curves.n_frames if self.stop is None else min(int(self.stop), curves.n_frames)
        if stop <= start:
            raise ValueError(f"empty range {self.start}:{self.stop}")
        changes: list[tuple[int, int, Key | None]] = []
        cis = curves.indices(self.controls)
        for ci in cis:
            keys = curves.keys(ci)
            changes += [(ci, k.frame, None) for k in keys if start <= k.frame < stop]
            before = [k for k in keys if k.frame < start]
            after = [k for k in keys if k.frame >= stop]
            ease = curves.ease_frames
            pins = set()
            if before and (after or before[-1].frame + ease > start):
                pins.add(start)
            if after and (before or after[0].frame - ease < stop - 1):
                pins.add(stop - 1)
            changes += [(ci, f, neutral_key(f)) for f in sorted(pins)]
        self._keys = SetKeys(changes)
        with curves.batch():
            self._keys.apply(curves)
            self._driven = [(ci, curves.write_driven(ci, start, None, np.zeros(stop - start))[1]) for ci in cis]
        self._start = start

    def revert(self, curves: ControlCurves) -> None:
        with curves.batch():
            for ci, weights in reversed(self._driven):
                curves.write_driven(ci, self._start, None, weights)
            self._keys.revert(curves)


class SetDriven(Edit):
    """Put a driven curve (audio- or dubber-driven) under frames ``start:start+L`` of one or more
    controls, with a weight (scalar or per frame; 0 switches the layer off on a frame).
    ``words``: the line's words ((frame, word), ...) that replace the curves' (a dub's new line;
    ``()`` clears the last line's), or None to leave them."""

    def __init__(
        self,
        controls: ControlRef | Iterable[ControlRef],
        values: np.ndarray,
        start: int = 0,
        weight: float | np.ndarray = 1.0,
        source: str | None = None,
        words=None,
    ) -> None:
        self.controls = controls if isinstance(controls, (str, int)) else tuple(controls)
        self.words = None if words is None else tuple((float(f), str(w)) for f, w in words)
        n_ctrl = 1 if isinstance(self.controls, (str, int)) else len(self.controls)
        v = np.array(values, dtype=np.float64, copy=True)
        if v.ndim == 1:
            v = v[:, None]
        if v.ndim != 2 or v.shape[1] != n_ctrl:
            raise ValueError(f"driven values must be (L,) or (L, {n_ctrl}), got {np.shape(values)}")
        w = np.array(weight, dtype=np.float64, copy=True)
        w = np.broadcast_to(w if w.ndim != 1 else w[:, None], v.shape).copy()
        if not np.all(np.isfinite(v)):  # checked up front so apply never stops half-way
            raise ValueError("driven values must be finite")
        if not np.all((w >= 0) & (w <= 1)):
            raise ValueError("driven weights must lie in [0, 1]")
        self.values, self.weights = v, w
        self.start, self.source = int(start), source
        what = f" ({source})" if source else ""
        self.text = f"Drive {_labels(self.controls)}{what}"
        self._old: list[tuple[int, np.ndarray, np.ndarray, str | None]] = []
        self._old_words: tuple[tuple[float, str], ...] | None = None

    @property
    def stop(self) -> int:
        return self.start + len(self.values)

    def apply(self, curves: ControlCurves) -> None:
        cis = curves.indices(self.controls)
        if self.start < 0 or self.stop > curves.n_frames:
            raise IndexError(f"driven span {self.start}:{self.stop} is outside the shot (0..{curves.n_frames})")
        old = []
        with curves.batch():
            for j, ci in enumerate(cis):
                ov, ow = curves.write_driven(ci, self.start, self.values[:, j], self.weights[:, j])
                src = curves.driven_source(ci)
                if self.source is not None:
                    curves.set_driven_source(ci, self.source)
                old.append((ci, ov, ow, src))
        self._old = old
        self._old_words = curves.set_words(self.words) if self.words is not None else None

    def revert(self, curves: ControlCurves) -> None:
        with curves.batch():
            for ci, ov, ow, src in reversed(self._old):
                curves.write_driven(ci, self.start, ov, ow)
                curves.set_driven_source(ci, src)
        if self._old_words is not None:
            curves.set_words(self._old_words)


class EditHistory:
    """Undo/redo over one ``ControlCurves``: the core's one undo stack (``core.undo.UndoStack``,
    which the editor uses for every kind of edit) bound to these curves, with the clean-state
    marker (saved state). ``changed`` fires whenever the stack changes (refresh Undo/Redo
    actions); ``clean_changed`` when the unsaved-changes state flips. ``limit`` > 0 caps the
    undo depth."""

    def __init__(self, curves: ControlCurves, limit: int = 0) -> None:
        self.curves = curves
        self.stack = UndoStack(limit)
        self.changed = self.stack.changed
        self.clean_changed = self.stack.clean_changed

    @property
    def limit(self) -> int:
        return self.stack.limit

    # -- operations --

    def push(self, edit: Edit) -> Edit:
        """Apply ``edit`` and record it (a key drag merged into the previous update of the same
        drag, never across the saved state). Returns the edit now on top. An edit that fails to
        apply is not recorded."""
        return self.stack.push(self.curves, edit, applied=False)

    def undo(self) -> Edit | None:
        return self.stack.undo()

    def redo(self) -> Edit | None:
        return self.stack.redo()

    def set_clean(self) -> None:
        """Mark the current state as saved."""
        self.stack.set_clean()

    def clear(self) -> None:
        """Forget all edits (the curves keep their current state, which becomes clean)."""
        self.stack.clear()

    # -- state --

    @property
    def is_clean(self) -> bool:
        return self.stack.is_clean()

    @property
    def can_undo(self) -> bool:
        return self.stack.can_undo()

    @property
    def can_redo(self) -> bool:
        return self.stack.can_redo()

    @property
    def undo_text(self) -> str:
        return self.stack.undo_text()

    @property
    def redo_text(self) -> str:
        return self.stack.redo_text()

    @property
    def index(self) -> int:
        """How many edits are applied (QUndoStack.index)."""
        return self.stack.index()

    def __len__(self) -> int:
        return self.stack.count()
