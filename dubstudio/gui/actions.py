"""The window's actions, menus and toolbar (shortcuts are window-wide, editor conventions:
Space play/pause, J/K/L shuttle, Left/Right step, I/O in/out, W/D/C/M/G overlays, F/Z/1 zoom)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from dubstudio.gui.overlay_items import OVERLAY_LABELS, OVERLAYS

from dubstudio.gui.widgets import make_action

if TYPE_CHECKING:
    from dubstudio.gui.main_window import MainWindow

OVERLAY_KEYS = {"mesh": "W", "landmarks": "D", "crop": "C", "mask": "M", "grey": "G"}
TOOLBAR_ICONS = {
    "open_video": "SP_DialogOpenButton", "save": "SP_DialogSaveButton", "prev": "SP_MediaSkipBackward",
    "play": "SP_MediaPlay", "next": "SP_MediaSkipForward",
}


def _action(win: MainWindow, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
    return make_action(win, text, slot, shortcut, checkable, tip)


def _stack_twin(win: MainWindow, text: str, source: QAction) -> QAction:
    """A toolbar twin of the stack's Undo/Redo action with a short, fixed label."""
    act = QAction(text, win)
    act.triggered.connect(source.trigger)

    def sync(*_: object) -> None:
        act.setEnabled(source.isEnabled())
        act.setToolTip(source.text().replace("&", ""))

    source.changed.connect(sync)
    sync()
    return act


def build_actions(win: MainWindow) -> dict[str, QAction]:
    s, tl, pb, v = win.session, win.timeline, win.playback, win.viewer
    a: dict[str, QAction] = {}
    act = lambda *args, **kw: _action(win, *args, **kw)  # noqa: E731
    a["open_video"] = act("Open &Video…", win.choose_video, QKeySequence.StandardKey.Open, tip="Open a video; its project is created or reopened (Ctrl+O)")
    a["open_project"] = act("Open &Project…", win.choose_project, "Ctrl+Shift+O")
    a["save"] = act("&Save", win.save, QKeySequence.StandardKey.Save, tip="Save the curve edits (Ctrl+S)")
    a["quit"] = act("&Quit", win.close, QKeySequence.StandardKey.Quit)
    a["settings"] = act("Se&ttings…", win.open_settings, "Ctrl+,", tip="Compute device, CPU threads, autosave, playback sound")
    a["undo"] = undo = act("&Undo", s.undo_stack.undo, QKeySequence.StandardKey.Undo)
    a["redo"] = redo = act("&Redo", s.undo_stack.redo, QKeySequence.StandardKey.Redo)
    redo.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Y")])
    follow_undo_stack(s.undo_stack, undo, redo)
    a["add_key"] = act("Add &Key at Playhead", lambda: tl._safe(tl.add_key), "Ctrl+K")
    a["delete_key"] = act("&Delete Key", lambda: tl._safe(tl.delete_key), QKeySequence.StandardKey.Delete)
    a["track"] = act("&Track Face", win.track, "Ctrl+T", tip="Track the face model through the shot (background job, Ctrl+T)")
    a["cancel_jobs"] = act("&Cancel Jobs", win.cancel_jobs)
    a["play"] = act("Play", pb.toggle, "Space", tip="Play / pause (Space)")
    a["shuttle_back"] = act("Play &Backwards (J)", lambda: pb.shuttle(-1), "J")
    a["stop"] = act("Pause (&K)", pb.pause, "K")
    a["shuttle_fwd"] = act("Play &Forwards (L)", lambda: pb.shuttle(1), "L")
    a["prev"] = act("Prev", lambda: pb.step(-1), "Left", tip="Previous frame (Left)")
    a["next"] = act("Next", lambda: pb.step(1), "Right", tip="Next frame (Right)")
    a["prev10"] = act("Back 10 Frames", lambda: pb.step(-10), "Shift+Left")
    a["next10"] = act("Forward 10 Frames", lambda: pb.step(10), "Shift+Right")
    a["start"] = act("Go to In Point", lambda: win.goto(s.playhead.in_point), "Home")
    a["end"] = act("Go to Out Point", lambda: win.goto(s.playhead.out_point), "End")
    a["set_in"] = act("Set &In Point", lambda: s.playhead.set_in(), "I")
    a["set_out"] = act("Set &Out Point", lambda: s.playhead.set_out(), "O")
    a["clear_range"] = act("Clear In/Out", s.playhead.clear_range, "Alt+X")
    a["fit"] = act("&Fit", v.fit, "F", tip="Fit the frame in the view (F)")
    a["zoom_face"] = act("&Face", v.frame_face, "Z", tip="Zoom to the tracked face (Z)")
    a["zoom100"] = act("Actual &Pixels", lambda: v.set_zoom(1.0), "1")
    for name in OVERLAYS:
        o = act(OVERLAY_LABELS[name], lambda on, n=name: v.set_overlay(n, on), OVERLAY_KEYS[name], checkable=True,
                tip=f"Show the {OVERLAY_LABELS[name].lower()} ({OVERLAY_KEYS[name]})")
        stored = win.settings.value(f"overlays/{name}")
        on = (stored in (True, "true")) if stored is not None else v.overlay_enabled(name)
        o.setChecked(on)
        v.set_overlay(name, on)
        a[f"overlay_{name}"] = o

    mb = win.menuBar()
    m = mb.addMenu("&File")
    m.addActions([a["open_video"], a["open_project"]])
    win.recent_menu = m.addMenu("Open &Recent")
    win.recent_menu.aboutToShow.connect(lambda: _fill_recent(win))
    m.addSeparator()
    m.addAction(a["save"])
    m.addSeparator()
    m.addAction(a["quit"])
    m = mb.addMenu("&Edit")
    m.addActions([undo, redo])
    m.addSeparator()
    m.addActions([a["add_key"], a["delete_key"]])
    m.addSeparator()
    m.addAction(a["settings"])
    m = mb.addMenu("&View")
    m.addActions([a[f"overlay_{n}"] for n in OVERLAYS])
    m.addSeparator()
    m.addActions([a["fit"], a["zoom_face"], a["zoom100"]])
    m = mb.addMenu("&Playback")
    m.addActions([a["play"], a["shuttle_back"], a["stop"], a["shuttle_fwd"]])
    m.addSeparator()
    m.addActions([a["prev"], a["next"], a["prev10"], a["next10"], a["start"], a["end"]])
    m.addSeparator()
    m.addActions([a["set_in"], a["set_out"], a["clear_range"]])
    m = mb.addMenu("&Shot")
    m.addActions([a["track"], a["cancel_jobs"]])  # (+ Choose Face…, added by gui/face_picker.py)

    tb = win.addToolBar("Main")
    tb.setObjectName("main_toolbar")
    tb.setMovable(False)
    tb.addActions([a["open_video"], a["save"], _stack_twin(win, "Undo", undo), _stack_twin(win, "Redo", redo)])
    tb.addSeparator()
    tb.addAction(a["track"])
    tb.addSeparator()
    tb.addActions([a["prev"], a["play"], a["next"]])
    tb.addSeparator()
    tb.addActions([a[f"overlay_{n}"] for n in OVERLAYS])
    tb.addSeparator()
    tb.addActions([a["fit"], a["zoom_face"]])
    for key, pix in TOOLBAR_ICONS.items():
        a[key].setIcon(win.style().standardIcon(getattr(QStyle.StandardPixmap, pix)))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for w in tb.findChildren(QWidget):
        w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return a


def _fill_recent(win: MainWindow) -> None:
    menu = win.recent_menu
    menu.clear()
    paths = win.recent.paths()
    for p in paths:
        menu.addAction(p, lambda p=p: win.open_path(p))
    if not paths:
        menu.addAction("(none)").setEnabled(False)


def follow_undo_stack(stack, undo: QAction, redo: QAction) -> None:
    """Undo / Redo say what they undo and are enabled only when they can (as QUndoStack's own
    actions do), following the session's Qt-free ``core.undo.UndoStack``."""

    def update() -> None:
        undo.setEnabled(stack.can_undo())
        redo.setEnabled(stack.can_redo())
        undo.setText(f"&Undo {stack.undo_text()}".rstrip())
        redo.setText(f"&Redo {stack.redo_text()}".rstrip())

    stack.changed.connect(update)
    update()
