"""The editor end to end on the built-in sample: open -> track (worker) -> key the jaw ->
undo/redo -> the viewer's mesh follows the edit -> save -> reopen restores the curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dubstudio.shot.curve_store import CURVES_FILE
from dubstudio.core.controls import JAW


def test_open_track_edit_undo_save_reopen(make_window, fresh_video, gui, qtbot):
    win = make_window()
    gui.open(win, fresh_video)
    s = win.session
    assert s.is_open and s.info.n_frames == 50 and s.tracking is None
    assert win.actions["track"].isEnabled()
    with qtbot.waitSignal(win.viewer.frame_shown, timeout=10_000, raising=False):
        pass
    assert win.viewer.shown_frame == 0 or win.frames.get(0) is not None

    job = gui.track(win)
    assert job.state == "succeeded"
    assert s.is_tracked and s.tracking.has_face.all()
    assert not win.actions["track"].isEnabled()  # cached: nothing to recompute

    frame = 20
    s.playhead.set_frame(frame)
    qtbot.waitUntil(lambda: win.viewer.shown_frame == frame and win.viewer.mesh_vertices() is not None, timeout=10_000)
    before = win.viewer.mesh_vertices()
    tracked_jaw = float(s.curves.tracked[frame, JAW])

    # a jaw key through the timeline API: one undo step, the mesh opens its mouth
    with qtbot.waitSignal(win.viewer.overlay_rebuilt, timeout=5_000):
        win.timeline.add_key(frame, 0.8)
    assert s.curves.evaluate("jaw_open")[frame] == pytest.approx(0.8)
    assert s.undo_stack.count() == 1 and s.is_dirty
    edited = win.viewer.mesh_vertices()
    lower_lip, upper_lip = 14, 13  # inner lip centre (mediapipe ids)
    gap_before = before[lower_lip, 1] - before[upper_lip, 1]
    gap_after = edited[lower_lip, 1] - edited[upper_lip, 1]
    assert gap_after > gap_before + 5  # pixels: the lower lip dropped
    assert np.allclose(edited[10], before[10], atol=0.5)  # the forehead did not move

    with qtbot.waitSignal(win.viewer.overlay_rebuilt, timeout=5_000):
        win.actions["undo"].trigger()
    assert s.curves.evaluate("jaw_open")[frame] == pytest.approx(tracked_jaw)
    assert np.allclose(win.viewer.mesh_vertices(), before)
    assert not s.is_dirty
    with qtbot.waitSignal(win.viewer.overlay_rebuilt, timeout=5_000):
        win.actions["redo"].trigger()
    assert np.allclose(win.viewer.mesh_vertices(), edited)

    # a drag of the key is one undo step, however many moves it made
    tl = win.timeline
    tl.begin_key_drag(frame)
    for f, v in [(21, 0.7), (22, 0.6), (24, 0.5), (25, 0.5)]:
        tl.drag_key_to(f, v)
    tl.end_key_drag()
    assert [k.frame for k in s.curves.keys("jaw_open")] == [25]
    assert s.undo_stack.count() == 2
    s.undo_stack.undo()
    assert [(k.frame, k.value) for k in s.curves.keys("jaw_open")] == [(frame, pytest.approx(0.8))]
    s.undo_stack.redo()

    # a viseme from the right-click menu is one undo step over several controls
    menu = tl.context_menu(40)
    viseme = next(a for a in menu.actions() if a.text().startswith("Insert viseme")).menu()
    next(a for a in viseme.actions() if a.text() == "Oh").trigger()
    assert s.undo_stack.count() == 3
    assert s.curves.key_at("lip_pucker", 40) is not None
    assert s.curves.evaluate("jaw_open")[40] == pytest.approx(0.4)

    # save, then a new window on the project folder gets the same curves back
    expected = s.curves.evaluate_all()
    win.actions["save"].trigger()
    assert not s.is_dirty and not win.isWindowModified()
    saved = json.loads((s.project.root / CURVES_FILE).read_text())
    assert {25, 38, 40, 42} <= {k["frame"] for k in saved["keys"]["jaw_open"]}
    root = s.project.root
    win.close()

    win2 = make_window()
    gui.open(win2, root)
    assert win2.session.is_tracked
    assert np.allclose(win2.session.curves.evaluate_all(), expected)
    assert not win2.session.is_dirty
    assert win2.recent.paths()[0] == str(root.resolve())


def test_keys_delete_reset_and_shortcuts(make_window, tracked_project, gui, qtbot):
    win = make_window()
    gui.open(win, tracked_project)
    s, tl = win.session, win.timeline
    assert s.is_tracked

    tl.set_control("smile")
    assert tl.combo.currentData() == "smile"
    tl.add_key(10, 0.5)
    tl.add_key(30, -0.3)
    assert [k.frame for k in s.curves.keys("smile")] == [10, 30]
    tl.select_key(30)
    win.actions["delete_key"].trigger()
    assert [k.frame for k in s.curves.keys("smile")] == [10]
    tl.reset_frame(10)
    assert s.curves.evaluate("smile")[10] == pytest.approx(s.curves.tracked[10, s.curves.index("smile")])

    # a failing edit is a message in the window, not an exception
    tl._safe(tl.delete_key, 44)
    qtbot.waitUntil(lambda: win.messages.isVisible(), timeout=2_000)
    assert "no smile key at frame 44" in win.messages.text

    # editor keys, sent to the window: step, in/out, jump
    from PySide6.QtCore import Qt

    s.playhead.set_frame(5)
    qtbot.keyClick(win, Qt.Key.Key_Right)
    assert s.playhead.frame == 6
    qtbot.keyClick(win, Qt.Key.Key_I)
    qtbot.keyClick(win, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(win, Qt.Key.Key_O)
    assert (s.playhead.in_point, s.playhead.out_point) == (6, 16)
    qtbot.keyClick(win, Qt.Key.Key_Home)
    assert s.playhead.frame == 6
    qtbot.keyClick(win, Qt.Key.Key_End)
    assert s.playhead.frame == 16
    qtbot.keyClick(win, Qt.Key.Key_G)  # grey-face preview toggles
    assert win.viewer.overlay_enabled("grey") and win.actions["overlay_grey"].isChecked()
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the reset
    assert s.curves.evaluate("smile")[10] == pytest.approx(0.5)


def test_grey_face_and_overlays_draw(make_window, tracked_project, gui, qtbot):
    win = make_window()
    gui.open(win, tracked_project)
    v = win.viewer
    for name in ("mesh", "landmarks", "crop", "mask", "grey"):
        v.set_overlay(name, True)
    win.session.playhead.set_frame(12)
    qtbot.waitUntil(lambda: v.shown_frame == 12 and v._drawing is not None and v._drawing.frame == 12, timeout=10_000)
    d = v._drawing
    assert d.wire is not None and not d.wire.isEmpty()
    assert d.landmarks is not None and d.landmarks.size() == 478
    assert d.crop is not None and d.crop.width() > 50
    assert d.mask is not None and d.grey is not None
    grey = d.grey.convertToFormat(d.grey.Format.Format_RGBA8888)
    arr = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(), grey.bytesPerLine() // 4, 4)
    covered = arr[..., 3] > 200
    assert covered.mean() > 0.3  # the face fills its box
    shades = arr[..., :3][covered].mean(axis=1)
    assert shades.std() > 8  # really shaded, not a flat fill
    img = v.grab().toImage()
    assert img.width() > 100 and img.height() > 100
