"""Questions to the user and messages in the window.

The window asks through a ``Prompter`` so that tests and scripted runs answer without a modal
dialog: ``AutoPrompter`` answers from a table (``DUBSTUDIO_AUTO_ANSWER="recover=yes,unsaved=discard"``
sets one up for the whole app) and records what it was asked. Errors are shown in a
``MessageBar`` inside the window, never as a crash.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QToolButton, QWidget

log = logging.getLogger(__name__)

# kind -> (title, buttons in order, default answer)
QUESTIONS = {
    "recover": ("Recover unsaved edits?", ("yes", "no"), "yes"),
    "unsaved": ("Unsaved changes", ("save", "discard", "cancel"), "save"),
    "export_unsaved": ("Save before exporting?", ("save", "cancel"), "save"),
    "delete_stopped": ("Delete stopped exports?", ("yes", "no"), "no"),
    "other_actor": ("Another actor?", ("yes", "no"), "no"),
    "replace_output": ("Replace the file?", ("yes", "no"), "no"),
}
_BUTTONS = {
    "yes": QMessageBox.StandardButton.Yes,
    "no": QMessageBox.StandardButton.No,
    "save": QMessageBox.StandardButton.Save,
    "discard": QMessageBox.StandardButton.Discard,
    "cancel": QMessageBox.StandardButton.Cancel,
}


class Prompter:
    """Asks with a modal QMessageBox."""

    def ask(self, kind: str, text: str, parent: QWidget | None = None) -> str:
        title, answers, default = QUESTIONS[kind]
        buttons = QMessageBox.StandardButton.NoButton
        for a in answers:
            buttons |= _BUTTONS[a]
        box = QMessageBox(QMessageBox.Icon.Question, title, text, buttons, parent)
        box.setDefaultButton(_BUTTONS[default])
        if "cancel" in answers:
            box.setEscapeButton(_BUTTONS["cancel"])
        result = box.exec()
        for a in answers:
            if result == _BUTTONS[a]:
                return a
        return answers[-1]


@dataclass
class AutoPrompter(Prompter):
    """Answers without a dialog (tests, scripted screenshots); keeps a log of the questions."""

    answers: dict[str, str] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def ask(self, kind: str, text: str, parent: QWidget | None = None) -> str:
        self.asked.append((kind, text))
        answer = self.answers.get(kind, QUESTIONS[kind][2])
        log.info("auto-answered %s: %s", kind, answer)
        return answer

    @classmethod
    def from_env(cls) -> AutoPrompter | None:
        spec = os.environ.get("DUBSTUDIO_AUTO_ANSWER", "").strip()
        if not spec:
            return None
        answers = {}
        for part in spec.split(","):
            k, _, v = part.partition("=")
            if k.strip() in QUESTIONS and v.strip() in QUESTIONS[k.strip()][1]:
                answers[k.strip()] = v.strip()
        return cls(answers)


class MessageBar(QWidget):
    """A dismissible banner above the editor for errors and notices."""

    STYLES = {
        "error": "background:#5a1f24; color:#ffdede; border-bottom:1px solid #8a2f36;",
        "warning": "background:#5a4a1f; color:#fff2cc; border-bottom:1px solid #8a7330;",
        "info": "background:#1f3a5a; color:#dcecff; border-bottom:1px solid #2f5a8a;",
    }
    shown = Signal(str, str)  # level, text

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 5, 6, 5)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.level = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, text: str, level: str = "error", timeout_ms: int = 0) -> None:
        self.level = level
        self.setStyleSheet(self.STYLES.get(level, self.STYLES["info"]))
        self.label.setText(text)
        self.show()
        if timeout_ms > 0:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()
        (log.error if level == "error" else log.info)("%s: %s", level, text)
        self.shown.emit(level, text)
