"""Small widgets and helpers several parts of the editor share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolButton, QWidget


def make_action(parent: QWidget, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
    """A window-wide action: its shortcut works with the menu bar hidden (``parent.addAction``)."""
    act = QAction(text, parent)
    if shortcut is not None:
        act.setShortcut(shortcut if isinstance(shortcut, QKeySequence) else QKeySequence(shortcut))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    act.setCheckable(checkable)
    if tip:
        act.setStatusTip(tip)
        act.setToolTip(tip)
    act.triggered.connect(slot)
    parent.addAction(act)
    return act


def disclosure_button(text: str, tip: str, on_toggled) -> QToolButton:
    """The arrow button that opens and collapses a section (``set_disclosed`` turns its arrow)."""
    b = QToolButton()
    b.setText(text)
    b.setCheckable(True)
    b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    b.setArrowType(Qt.ArrowType.RightArrow)
    b.setAutoRaise(True)
    b.setToolTip(tip)
    b.toggled.connect(on_toggled)
    return b


def set_disclosed(button: QToolButton, on: bool) -> None:
    button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
