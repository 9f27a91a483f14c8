"""Compare modes in the viewer: side by side, wipe (mouse-dragged divider), toggle; the dubbed side
is the grey-face preview without an adaptation and the neural render (from a worker, via a
signal) with a tiny adapted renderer."""

from __future__ import annotations

import shutil

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


def _rgb(img) -> np.ndarray:
    from PySide6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGB888)
    a = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    return a[:, : 3 * img.width()].reshape(img.height(), img.width(), 3).copy()


def _open_at(make_window, path, gui, qtbot, frame=FRAME):
    win = make_window()
    gui.open(win, path)
    win.goto(frame)
    qtbot.waitUntil(lambda: win.viewer.shown_frame == frame, timeout=20_000)
    return win


def _face_box(win, frame):
    """The face's box on the viewer's image (frames are decoded at the size they are shown)."""
    cx, cy, side = win.session.tracking.crop[frame]
    s = win.viewer.frame_item.image.width() / win.viewer.source.size[0]
    cx, cy, h = cx * s, cy * s, int(side * 0.35 * s)
    return slice(int(cy) - h, int(cy) + h), slice(int(cx) - h, int(cx) + h)


def test_compare_modes_with_the_grey_face_preview(make_window, tracked_project, gui, qtbot):
    from PySide6.QtCore import QEvent, QPoint, Qt

    from dubstudio.core.curves import Key
    from dubstudio.core.edits import SetKey

    win = _open_at(make_window, tracked_project, gui, qtbot)
    v, c = win.viewer, win.compare
    w, h = v.source.size
    with qtbot.waitSignal(c.dubbed_shown, timeout=10_000) as blocker:
        win.actions["compare_side"].trigger()
    assert blocker.args == [FRAME]
    assert c.mode == "side" and c.provider.kind == "grey"
    item = c.dubbed_item
    assert item.isVisible() and item.pos().x() > w and item.clip_x is None
    assert v.content_extent.width() > 2 * w  # "fit" shows both
    hud = " ".join(text for text, _ in v._hud_lines())
    assert "side by side" in hud and "grey-face preview" in hud
    orig, dub = _rgb(v.frame_item.image), _rgb(item.image)
    ys, xs = _face_box(win, FRAME)
    assert np.abs(orig[ys, xs].astype(int) - dub[ys, xs]).mean() > 10  # the grey face is on it
    assert np.array_equal(orig[:20], dub[:20])  # the frame elsewhere

    # an edit on the shown frame re-draws the dubbed side (jaw open on the grey face)
    with qtbot.waitSignal(c.dubbed_shown, timeout=10_000):
        win.session.push(SetKey("jaw_open", Key(FRAME, 1.0)))
    assert not np.array_equal(_rgb(item.image), dub)

    # wipe: the divider follows the mouse, the dubbed side is clipped at it
    win.actions["compare_wipe"].trigger()
    assert c.mode == "wipe" and c.divider.isVisible() and v.content_extent is None
    assert item.pos().x() == 0 and item.clip_x == pytest.approx(w / 2)
    vp = v.viewport()
    L, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    start = v.mapFromScene(c.divider.pos().x(), h / 2)
    _send(vp, QEvent.Type.MouseButtonPress, start, L, L)
    for dx in (-10, -20, -40):
        _send(vp, QEvent.Type.MouseMove, start + QPoint(dx, 0), none, L)
    _send(vp, QEvent.Type.MouseButtonRelease, start + QPoint(-40, 0), L, none)
    x = v.mapToScene(start + QPoint(-40, 0)).x()
    assert c.wipe_fraction == pytest.approx(x / w, abs=0.01) and c.wipe_fraction < 0.5
    assert item.clip_x == pytest.approx(x, abs=w * 0.01)
    assert win.session.undo_stack.count() == 1  # moving the divider is no edit

    # toggle: Q flips between the dubbed and the original frame
    win.actions["compare_toggle"].trigger()
    assert c.mode == "toggle" and item.isVisible() and item.clip_x is None
    win.actions["compare_flip"].trigger()
    assert not item.isVisible() and "ORIGINAL" in " ".join(t for t, _ in v._hud_lines())
    win.actions["compare_flip"].trigger()
    assert item.isVisible()

    win.actions["compare_off"].trigger()
    assert not item.isVisible() and not c.divider.isVisible() and v.content_extent is None
    assert not any("compare" in t for t, _ in v._hud_lines())
    win.actions["compare_flip"].trigger()  # Q from Off: toggle mode, dubbed side
    assert c.mode == "toggle" and c.showing_dubbed and win.actions["compare_toggle"].isChecked()


def test_neural_dubbed_side_arrives_from_the_worker(make_window, adapted_template, tmp_path, gui, qtbot):
    import torch

    from dubstudio.core.curves import Key
    from dubstudio.core.edits import SetKey

    root = tmp_path / "adapted.dubstudio"
    shutil.copytree(adapted_template, root)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        win = _open_at(make_window, root, gui, qtbot)
        v, c = win.viewer, win.compare
        stalls = gui.StallMonitor()
        stalls.start()
        with qtbot.waitSignal(c.dubbed_shown, timeout=180_000, check_params_cb=lambda i: i == FRAME):
            win.actions["compare_side"].trigger()
            assert c.provider.kind == "neural"
            assert c.shown_final is None  # a placeholder until the render arrives
            assert "until it arrives" in " ".join(t for t, _ in v._hud_lines())  # loading, then rendering
        stalls.stop()
        p = c.provider
        assert p.status == "" and "neural renderer" in p.description
        first = p.get(FRAME)
        assert first is not None and np.array_equal(_rgb(c.dubbed_item.image), _rgb(first.over(v.frame_item.image)))
        assert "DUBBED · neural" in c.tag_right.text
        orig, dub = _rgb(v.frame_item.image), _rgb(first.over(v.frame_item.image))
        assert orig.shape == dub.shape
        ys, xs = _face_box(win, FRAME)
        assert not np.array_equal(orig[ys, xs], dub[ys, xs])  # the renderer painted the mouth region
        assert np.array_equal(orig[:20], dub[:20])  # far from the face the frame is untouched
        print(f"GUI thread: longest stall {stalls.max_ms:.0f} ms while loading and rendering")

        # an edit of this frame invalidates its render: a new one arrives, different
        with qtbot.waitSignal(c.dubbed_shown, timeout=120_000, check_params_cb=lambda i: i == FRAME):
            win.session.push(SetKey("jaw_open", Key(FRAME, 1.0)))
            assert p.get(FRAME) is None
        second = p.get(FRAME)
        assert second is not None and not np.array_equal(_rgb(second.over(v.frame_item.image)), dub)
        # a mask edit there (gui/mask_tool.py) makes the render stale as well
        masks = getattr(getattr(win, "mask_tool", None), "controller", None)
        if masks is not None:
            with qtbot.waitSignal(c.dubbed_shown, timeout=120_000, check_params_cb=lambda i: i == FRAME):
                masks.changed.emit((FRAME, FRAME + 1))
                assert p.get(FRAME) is None
        # read-ahead rendered the next frame: stepping there shows it at once
        qtbot.waitUntil(lambda: p.get(FRAME + 1) is not None, timeout=120_000)  # read-ahead
        with qtbot.waitSignal(c.dubbed_shown, timeout=120_000, check_params_cb=lambda i: i == FRAME + 1):
            win.goto(FRAME + 1)
        # the export dialog's skin-detail switch: the compare view shows what the export will make
        with_detail = _rgb(p.get(FRAME + 1).over(v.frame_item.image))
        win.settings.setValue("export/detail", "false")
        try:
            with qtbot.waitSignal(c.dubbed_shown, timeout=120_000, check_params_cb=lambda i: i == FRAME + 1):
                p.request(FRAME + 1)
                assert p.get(FRAME + 1) is None
            without = _rgb(p.get(FRAME + 1).over(v.frame_item.image))
            assert not np.array_equal(without, with_detail) and np.array_equal(without[:20], with_detail[:20])
        finally:
            win.settings.setValue("export/detail", "true")
    finally:
        torch.set_num_threads(n)
