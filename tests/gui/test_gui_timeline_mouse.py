"""The curve editor with real mouse events: double-click adds a key, a drag moves it as one undo
step, clicking the ruler scrubs, the waveform is drawn decimated."""

from __future__ import annotations

import pytest


def _send(widget, kind, pos, button, buttons):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    p = QPointF(pos)
    ev = QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def _viewport_pos(tl, plot, x, y):
    from PySide6.QtCore import QPointF

    scene = plot.getViewBox().mapViewToScene(QPointF(x, y))
    return tl.glw.mapFromScene(scene)


def test_mouse_add_drag_and_scrub(make_window, tracked_project, gui, qtbot):
    from PySide6.QtCore import QEvent, Qt

    win = make_window()
    gui.open(win, tracked_project)
    tl, s = win.timeline, win.session
    vp = tl.glw.viewport()
    L, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    # double-click at frame 20, value 0.6
    p = _viewport_pos(tl, tl.curve_plot, 20, 0.6)
    _send(vp, QEvent.Type.MouseButtonPress, p, L, L)
    _send(vp, QEvent.Type.MouseButtonRelease, p, L, none)
    _send(vp, QEvent.Type.MouseButtonDblClick, p, L, L)
    _send(vp, QEvent.Type.MouseButtonRelease, p, L, none)
    keys = s.curves.keys("jaw_open")
    assert [k.frame for k in keys] == [20]
    assert keys[0].value == pytest.approx(0.6, abs=0.03)
    assert s.undo_stack.count() == 1

    # drag the key to frame 26, value 0.3 in several mouse moves: one undo step
    start = _viewport_pos(tl, tl.curve_plot, 20, keys[0].value)
    _send(vp, QEvent.Type.MouseButtonPress, start, L, L)
    for f, v in [(21, 0.55), (23, 0.45), (25, 0.35), (26, 0.3)]:
        _send(vp, QEvent.Type.MouseMove, _viewport_pos(tl, tl.curve_plot, f, v), none, L)
    _send(vp, QEvent.Type.MouseButtonRelease, _viewport_pos(tl, tl.curve_plot, 26, 0.3), L, none)
    keys = s.curves.keys("jaw_open")
    assert [k.frame for k in keys] == [26]
    assert keys[0].value == pytest.approx(0.3, abs=0.03)
    assert s.undo_stack.count() == 2
    assert s.playhead.frame == 26
    s.undo_stack.undo()
    assert [k.frame for k in s.curves.keys("jaw_open")] == [20]

    # click in the ruler: the playhead follows, and all three plots show it
    p = _viewport_pos(tl, tl.ruler, 40, 0.5)
    _send(vp, QEvent.Type.MouseButtonPress, p, L, L)
    _send(vp, QEvent.Type.MouseButtonRelease, p, L, none)
    assert s.playhead.frame == 40
    assert all(line.value() == 40 for line in tl.lines)


def test_waveform_is_decimated(make_window, tracked_project, gui, qtbot):
    win = make_window()
    gui.open(win, tracked_project)
    qtbot.waitUntil(lambda: win.session.waveform is not None, timeout=20_000)
    w = win.session.waveform
    assert len(w.lo) == pytest.approx(2.0 / w.bin_s, rel=0.02)  # 2 s of audio
    assert w.hi.max() > 0.05  # espeak speech is there
    x, lo, hi = w.decimated(25.0, 0, 50, 100)
    assert len(x) <= 110 and (hi >= lo).all()
    assert hi.max() == pytest.approx(w.hi.max())  # peaks survive decimation
    xs, ys = win.timeline.wave_item.getData()
    assert 0 < len(xs) <= 2 * (int(win.timeline.wave.getViewBox().width()) + 10)
