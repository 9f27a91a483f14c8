"""Shot ▸ Choose Face: in a two-face shot the editor says so, and a click picks the face to dub."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from media_helpers import two_face_clip

N, SWAP, SIDE = 40, 20, 320


def test_two_faces_message_then_click_chooses_the_face(make_window, media, tmp_path, gui, qtbot):
    from pytestqt.qtbot import QtBot

    (tmp_path / "clip").mkdir()
    video = two_face_clip(media, tmp_path / "clip" / "two.mp4", N, SWAP, SIDE)
    win = make_window()
    gui.open(win, video)
    gui.track(win)
    s = win.session
    assert win.messages.isVisible() and "2 faces in this shot" in win.messages.label.text()
    assert "Choose Face" in win.messages.label.text()

    # after the swap the right-hand face (x > SIDE) is talk_a; click it on frame SWAP + 5
    frame = SWAP + 5
    s.playhead.set_frame(frame)
    qtbot.waitUntil(lambda: win.viewer.shown_frame == frame, timeout=10_000)
    win.actions["choose_face"].trigger()
    assert win.face_picker.active
    at = win.viewer.mapFromScene(QPointF(SIDE * 1.5, SIDE / 2))
    with qtbot.waitSignal(win.tracking_loaded, timeout=120_000):
        QtBot.mouseClick(win.viewer.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert not win.face_picker.active
    x = np.nanmean(s.tracking.landmarks[:, :, 0], axis=1)
    assert (x[:SWAP] < SIDE).all() and (x[SWAP:] > SIDE).all()  # talk_a: left, then right
    assert s.metrics.get("face_spec") == f"{SIDE * 3 // 2},{SIDE // 2}@{frame}"

    # Esc leaves the mode without tracking
    win.actions["choose_face"].trigger()
    QtBot.keyClick(win.viewer, Qt.Key.Key_Escape)
    assert not win.face_picker.active and not win.jobs.running("Tracking")
