"""One undo stack for every kind of edit of a shot, Qt-free (ARCHITECTURE rule 5).

An entry is a *target* (the curves, the painted mask, the tracking corrector) and an *edit*: a
small object that applies itself to its target and stores its own inverse (``apply(target)``,
``revert(target)``), may absorb the next edit of a drag (``merge(other)``, when both have the
same ``merge_id`` other than -1) and names itself (``text``). Curve edits (``core.edits``), mask
edits (``masks.layer``) and tracking corrections (``tracking.correction_edits``) all have that
shape, so one stack undoes them in the order they were made.

The stack follows ``QUndoStack``'s rules, which editors expect: pushing after an undo drops the
redo entries; a merge never crosses the clean (saved) state; the clean state can become
unreachable. It emits plain-Python events (psygnal): the editor's Undo/Redo actions and the
window's modified mark follow them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psygnal import Signal


def merge_id(edit: Any) -> int:
    """The edit's merge family (-1: never merged)."""
    return int(getattr(edit, "merge_id", -1))


@dataclass
class _Entry:
    target: Any
    edit: Any


class UndoStack:
    """Undo/redo over (target, edit) entries with a clean-state marker."""

    index_changed = Signal(int)  # entries applied (the position in the stack)
    clean_changed = Signal(bool)  # the saved state was reached or left
    changed = Signal()  # anything changed (texts, can-undo): refresh actions

    def __init__(self, limit: int = 0) -> None:
        self.limit = int(limit)  # > 0 caps the undo depth (the oldest entries are dropped)
        self._entries: list[_Entry] = []
        self._index = 0  # entries [0, index) are applied
        self._clean: int | None = 0  # index of the saved state; None = unreachable

    # -- state --

    def count(self) -> int:
        return len(self._entries)

    def index(self) -> int:
        return self._index

    def text(self, i: int) -> str:
        return str(getattr(self._entries[i].edit, "text", ""))

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._entries)

    def undo_text(self) -> str:
        return self.text(self._index - 1) if self.can_undo() else ""

    def redo_text(self) -> str:
        return self.text(self._index) if self.can_redo() else ""

    def is_clean(self) -> bool:
        return self._clean == self._index

    # QUndoStack's spelling, which callers and tests use
    isClean = is_clean  # noqa: N815

    # -- operations --

    def push(self, target: Any, edit: Any, applied: bool = True) -> Any:
        """Record ``edit`` on ``target`` (applied first unless ``applied``). Merged into the top
        entry when both have the same merge id, the same target, and the top accepts it. Returns
        the edit now on top. An edit that fails to apply raises, with nothing recorded."""
        if not applied:
            edit.apply(target)
        was_clean, old = self.is_clean(), self._index
        if self._index < len(self._entries):
            del self._entries[self._index:]
            if self._clean is not None and self._clean > self._index:
                self._clean = None
        top = self._entries[-1] if self._entries else None
        mid = merge_id(edit)
        if (top is not None and mid != -1 and merge_id(top.edit) == mid and top.target is target
                and self._clean != self._index and top.edit.merge(edit)):
            edit = top.edit
        else:
            self._entries.append(_Entry(target, edit))
            self._index += 1
            if self.limit and len(self._entries) > self.limit:
                del self._entries[0]
                self._index -= 1
                self._clean = None if self._clean in (None, 0) else self._clean - 1
                old -= 1
        self._notify(was_clean, old)
        return edit

    def undo(self) -> Any | None:
        if not self.can_undo():
            return None
        was_clean, old = self.is_clean(), self._index
        e = self._entries[self._index - 1]
        e.edit.revert(e.target)
        self._index -= 1
        self._notify(was_clean, old)
        return e.edit

    def redo(self) -> Any | None:
        if not self.can_redo():
            return None
        was_clean, old = self.is_clean(), self._index
        e = self._entries[self._index]
        e.edit.apply(e.target)
        self._index += 1
        self._notify(was_clean, old)
        return e.edit

    def set_clean(self) -> None:
        """Mark the current state as saved."""
        was_clean = self.is_clean()
        self._clean = self._index
        self._notify(was_clean, self._index)

    def reset_clean(self) -> None:
        """No state is the saved one (recovered or carried-over edits are unsaved)."""
        was_clean = self.is_clean()
        self._clean = None
        self._notify(was_clean, self._index)

    def clear(self) -> None:
        """Forget every entry; the current state is the clean one."""
        was_clean, old = self.is_clean(), self._index
        self._entries.clear()
        self._index = 0
        self._clean = 0
        self._notify(was_clean, old)

    # QUndoStack's spellings
    setClean = set_clean  # noqa: N815
    resetClean = reset_clean  # noqa: N815

    def _notify(self, was_clean: bool, old_index: int) -> None:
        if self._index != old_index:
            self.index_changed.emit(self._index)
        if self.is_clean() != was_clean:
            self.clean_changed.emit(self.is_clean())
        self.changed.emit()
