"""Tracking correction in the editor with real mouse and key events: a handle drag re-fits the
frame as one undo step, nudges merge, reset, save and reopen."""

from __future__ import annotations

import numpy as np
import pytest

FRAME = 25


def _send(widget, kind, pos, button, buttons):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    p = QPointF(pos)
    ev = QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def _open_at(make_window, path, gui, qtbot, frame=FRAME):
    win = make_window()
    gui.open(win, path)
    v = win.viewer
    with qtbot.waitSignal(v.frame_shown, timeout=20_000, check_params_cb=lambda i: i == frame, raising=False):
        win.goto(frame)
    qtbot.waitUntil(lambda: v.shown_frame == frame, timeout=20_000)
    v.frame_face(2.0)
    return win


def _fields(t):
    return {k: np.array(getattr(t, k), copy=True) for k in ("scale", "rotation", "translation", "controls", "residual")}


def _same(t, snap) -> bool:
    return all(np.array_equal(getattr(t, k), v) for k, v in snap.items())


def test_drag_a_handle_refits_the_frame_as_one_undo_step(make_window, tracked_project, gui, qtbot):
    from PySide6.QtCore import QEvent, QPoint, Qt

    win = _open_at(make_window, tracked_project, gui, qtbot)
    s, v, tool = win.session, win.viewer, win.correction
    before = _fields(s.tracking)
    lm0 = s.corrector.landmarks(FRAME)
    with qtbot.waitSignal(tool.handles_updated, timeout=5_000):
        win.actions["correct_mode"].trigger()
    assert tool.active and tool.dock.isVisible() and tool.layer.isVisible()
    assert any("tracking correction" in text for text, _c in v._hud_lines())
    p0 = tool.handle_position(14)  # lower inner lip, centre
    assert p0 is not None and np.allclose([p0.x(), p0.y()], lm0[14, :2])
    vp = v.viewport()
    L, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    start = v.mapFromScene(p0)

    # a press away from every handle pans (no edit)
    far = start + QPoint(0, -200)
    _send(vp, QEvent.Type.MouseButtonPress, far, L, L)
    _send(vp, QEvent.Type.MouseButtonRelease, far, L, none)
    assert s.undo_stack.count() == 0

    # drag 24 screen pixels down in steps: a live preview, then one re-fit on release
    _send(vp, QEvent.Type.MouseButtonPress, start, L, L)
    with qtbot.waitSignal(tool.preview_shown, timeout=5_000):
        for k in (6, 12, 18, 24):
            _send(vp, QEvent.Type.MouseMove, start + QPoint(0, k), none, L)
    assert _same(s.tracking, before)  # a preview changes nothing yet
    with qtbot.waitSignal(tool.refitted, timeout=5_000) as blocker:
        _send(vp, QEvent.Type.MouseButtonRelease, start + QPoint(0, 24), L, none)
    assert blocker.args == [FRAME]
    target = v.mapToScene(start + QPoint(0, 24))
    moved = target.y() - p0.y()
    assert moved > 3
    lm1 = s.corrector.landmarks(FRAME)
    assert lm1[14, 1] - lm0[14, 1] > 0.7 * moved  # the fit followed the drag
    assert s.corrector.is_corrected(FRAME) and s.undo_stack.count() == 1
    assert s.tracking.controls[FRAME, 0] > before["controls"][FRAME, 0]  # the jaw opened
    assert np.array_equal(s.curves.tracked, s.tracking.controls)  # the curves' base follows
    assert win.isWindowModified()
    qtbot.waitUntil(lambda: tool.handle_position(14) is not None and abs(tool.handle_position(14).y() - lm1[14, 1]) < 1e-6)
    assert tool.last_refit_ms < 500

    after = _fields(s.tracking)
    s.undo_stack.undo()
    assert _same(s.tracking, before) and not s.corrector.is_corrected(FRAME)
    assert np.array_equal(s.curves.tracked, before["controls"])
    s.undo_stack.redo()
    assert _same(s.tracking, after)


def test_nudges_merge_reset_and_reopen(make_window, tracked_project, gui, qtbot):
    win = _open_at(make_window, tracked_project, gui, qtbot)
    s, tool = win.session, win.correction
    before = _fields(s.tracking)
    assert not win.actions["nudge_right"].isEnabled()  # only in correction mode
    tool.set_active(True)
    nose = lambda: s.tracking.pose(FRAME).apply(s.corrector.model.identity[1])  # noqa: E731
    n0 = nose()
    for _ in range(3):
        win.actions["nudge_right"].trigger()
    assert nose()[0] - n0[0] == pytest.approx(3.0, abs=1e-6)
    assert s.undo_stack.count() == 1  # a held key is one undo step
    jaw = s.tracking.controls[FRAME, 0]
    win.actions["nudge_jaw_open"].trigger()
    assert s.tracking.controls[FRAME, 0] == pytest.approx(jaw + 0.02)
    assert s.undo_stack.count() == 2

    win.actions["correct_reset_frame"].trigger()
    assert _same(s.tracking, before) and s.undo_stack.count() == 3
    s.undo_stack.undo()
    assert s.corrector.is_corrected(FRAME)

    assert win.save()
    assert (tracked_project / "edits" / "tracking_corrections.json").is_file()
    corrected = _fields(s.tracking)
    win.close()

    win2 = make_window()
    gui.open(win2, tracked_project)
    s2 = win2.session
    assert s2.corrector.corrected_frames() == [FRAME]
    assert all(np.allclose(getattr(s2.tracking, k), v, atol=1e-12) for k, v in corrected.items())
    assert np.allclose(s2.curves.tracked, s2.tracking.controls)
    assert not win2.isWindowModified()


def test_correction_mode_needs_a_face_and_steps_aside_for_mask_painting(make_window, fresh_video, tracked_project, gui, qtbot):
    win = make_window()
    gui.open(win, fresh_video)  # not tracked
    assert not win.actions["correct_mode"].isEnabled()
    win.correction.set_active(True)
    assert not win.correction.active
    win.close()

    win = _open_at(make_window, tracked_project, gui, qtbot)
    tool = win.correction
    tool.set_active(True)
    mask = getattr(win, "mask_tool", None)
    if mask is not None:
        mask.set_active(True)
        assert mask.active and not tool.active
        tool.set_active(True)
        assert tool.active and not mask.active
