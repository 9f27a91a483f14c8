"""QUndoCommand over the core's edit objects (ARCHITECTURE rule 5).

The core edit stores its own inverse; the command only forwards ``redo``/``undo`` and lets
``QUndoStack`` merge consecutive updates of one key drag (``MoveKey`` with a drag token) into
one undo step through the edit's own ``merge``.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from dubstudio.core.curves import ControlCurves
from dubstudio.core.edits import Edit, MoveKey

MERGEABLE_DRAG_ID = 0x4B45  # "KE": key drags; every other edit returns -1 (never merged)


class EditCommand(QUndoCommand):
    """One core ``Edit`` on one ``ControlCurves``.

    Pushed *after* the edit was applied (``applied=True``), so an edit that fails raises in the
    caller before anything lands on the stack; the stack's first ``redo`` is then a no-op.
    """

    def __init__(self, curves: ControlCurves, edit: Edit, applied: bool = True) -> None:
        super().__init__(edit.text)
        self.curves = curves
        self.edit = edit
        self._skip_redo = applied

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.edit.apply(self.curves)

    def undo(self) -> None:
        self.edit.revert(self.curves)

    def id(self) -> int:  # noqa: A003 (Qt's name)
        e = self.edit
        return MERGEABLE_DRAG_ID if isinstance(e, MoveKey) and e.drag is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt's name)
        if not isinstance(other, EditCommand) or other.curves is not self.curves:
            return False
        if self.edit.merge(other.edit):
            self.setText(self.edit.text)
            return True
        return False
