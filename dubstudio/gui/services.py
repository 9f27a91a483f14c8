"""What a controller may use of the editor window: the services, never the window itself.

A controller (dubbing, export, masks, tracking correction, compare) is given the models it works
on (the ``ShotSession``), the widgets it draws into (viewer, timeline) and this object: a job
runner, the message bar, the prompter, the settings, the status line, where to add its actions,
menus and dock, the device jobs run on, saving, and the switch that keeps one mouse mode at a
time. It never reads the window's attributes, private or not, nor asks what class another
controller is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QToolBar, QWidget

from dubstudio.gui.jobs import JobManager
from dubstudio.gui.prompts import MessageBar, Prompter
from dubstudio.gui.widgets import make_action


class ModeSwitch:
    """One mouse mode at a time on the viewer (mask painting, tracking correction): a mode that
    turns on asks the others to step aside."""

    def __init__(self) -> None:
        self._modes: dict[str, tuple[Callable[[], bool], Callable[[bool], None]]] = {}

    def join(self, name: str, is_active: Callable[[], bool], set_active: Callable[[bool], None]) -> None:
        self._modes[name] = (is_active, set_active)

    def entering(self, name: str) -> None:
        """``name`` turns on: every other active mode turns off."""
        for other, (is_active, set_active) in self._modes.items():
            if other != name and is_active():
                set_active(False)


@dataclass
class EditorServices:
    window: QMainWindow  # held for the services below; controllers use ``parent`` for dialogs only
    jobs: JobManager
    messages: MessageBar
    prompter: Prompter
    settings: object  # QSettings
    device: Callable[[], str]  # the torch device jobs run on (Settings: auto = what the probe found)
    save: Callable[[], bool]  # save the shot's edits (False: it failed, the user was told)
    report_error: Callable[[str, str], None]  # (what failed, why): the message bar and the window's job_failed
    actions: dict[str, QAction] = field(default_factory=dict)  # every action by key (the window's registry)
    modes: ModeSwitch = field(default_factory=ModeSwitch)

    @property
    def parent(self) -> QWidget:
        """The widget dialogs and prompts are centred on."""
        return self.window

    def status(self, text: str, ms: int = 0) -> None:
        self.window.statusBar().showMessage(text, ms)

    def add_action(self, key: str, action: QAction) -> QAction:
        """Register ``action`` under ``key`` (shortcuts work window-wide)."""
        self.window.addAction(action)
        self.actions[key] = action
        return action

    def new_action(self, key: str, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
        """A window-wide action, registered under ``key``."""
        self.actions[key] = a = make_action(self.window, text, slot, shortcut, checkable, tip)
        return a

    def menu(self, title: str) -> QMenu:
        """The menu bar's menu called ``title`` (``&`` ignored), added at the end when missing."""
        bar = self.window.menuBar()
        want = title.replace("&", "")
        for a in bar.actions():
            m = a.menu()
            if isinstance(m, QMenu) and m.title().replace("&", "") == want:
                return m
        return bar.addMenu(title)

    def has_menu(self, title: str) -> bool:
        want = title.replace("&", "")
        return any(isinstance(a.menu(), QMenu) and a.menu().title().replace("&", "") == want for a in self.window.menuBar().actions())

    def toolbar(self) -> QToolBar | None:
        return self.window.findChild(QToolBar, "main_toolbar")

    def add_to_toolbar(self, action: QAction) -> None:
        tb = self.toolbar()
        if tb is None:
            return
        tb.addSeparator()
        tb.addAction(action)
        btn = tb.widgetForAction(action)
        if btn is not None:
            btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def add_dock(self, dock: QDockWidget, area=Qt.DockWidgetArea.RightDockWidgetArea) -> None:
        """Dock ``dock`` in ``area``, as a tab beside the docks already there (full height, not a
        sliver under them)."""
        w = self.window
        w.addDockWidget(area, dock)
        for other in w.findChildren(QDockWidget):
            if other is not dock and w.dockWidgetArea(other) == area and not other.isFloating():
                w.tabifyDockWidget(other, dock)
                break
