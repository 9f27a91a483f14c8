"""The timeline's thumbnail strip: decoded in a background job when a shot opens, drawn on the
frame axis the ruler uses (following zoom), each slot showing the nearest decoded frame."""

from __future__ import annotations

import numpy as np
import pytest

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import Cancelled
from dubstudio.gui.thumbnails import MAX_THUMBS, THUMB_HEIGHT, Thumbnails, load_thumbnails, thumbnail_step


def test_step_and_nearest():
    assert thumbnail_step(50) == 1 and thumbnail_step(200) == 1 and thumbnail_step(201) == 2
    assert -(-5000 // thumbnail_step(5000)) <= MAX_THUMBS
    t = Thumbnails(np.array([0, 10, 20]), [np.zeros((4, 4, 3), np.uint8)] * 3, 25)
    assert [t.nearest(f) for f in (-3, 4, 6, 14, 16, 24)] == [0, 0, 1, 1, 2, 2]


def test_load_thumbnails_every_kth_and_cancel(sample_video):
    t = load_thumbnails(sample_video, max_thumbs=20)  # 50 frames -> every 3rd
    assert list(t.frames) == list(range(0, 50, 3)) and t.n_frames == 50
    assert t.size == (THUMB_HEIGHT, THUMB_HEIGHT)  # the sample is square
    p = Progress()
    p.token.cancel()
    with pytest.raises(Cancelled):
        load_thumbnails(sample_video, p)


def _row_image(tl):
    """The timeline's plots as drawn on screen (RGB array, viewport pixels) and the thumbnail row's viewbox."""
    from PySide6.QtGui import QImage

    vb = tl.thumbs.getViewBox()
    img = tl.glw.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : 3 * img.width()]
    return a.reshape(img.height(), img.width(), 3), vb


def _slot_crop(tl, vb, arr, s, w, image, m=3):
    """The slot [s, s + w) as drawn, and ``image`` scaled to the slot, both less an ``m`` px margin."""
    import cv2
    from PySide6.QtCore import QPointF

    p0 = tl.glw.mapFromScene(vb.mapViewToScene(QPointF(s, 1.0)))
    p1 = tl.glw.mapFromScene(vb.mapViewToScene(QPointF(s + w, 0.0)))
    assert p1.x() - p0.x() > 20 and p1.y() - p0.y() > 20, (p0, p1)
    drawn = arr[p0.y() : p1.y(), p0.x() : p1.x()].astype(np.float32)
    want = cv2.resize(image, (drawn.shape[1], drawn.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
    return drawn[m:-m, m:-m], want[m:-m, m:-m]


def test_thumbnail_row(make_window, fresh_video, gui, qtbot):
    import cv2

    from dubstudio.io.video import VideoReader

    win = make_window()
    tl = win.timeline
    with qtbot.waitSignal(tl.thumbnails_changed, timeout=60_000):
        gui.open(win, fresh_video)
    t = tl.thumb_item.thumbs
    assert t is not None and len(t) == 50 and list(t.frames) == list(range(50))  # 50 frames: all of them
    assert all(im.shape == (THUMB_HEIGHT, THUMB_HEIGHT, 3) and im.dtype == np.uint8 for im in t.images)
    assert not win.jobs.running("Thumbnails")

    with VideoReader(fresh_video) as r:
        decoded = {i: cv2.resize(r.frame(i), t.size, interpolation=cv2.INTER_AREA) for i in (0, 25, 49)}
    for i, small in decoded.items():
        assert np.abs(t.images[i].astype(int) - small.astype(int)).mean() < 2

    def check_drawn(centre_frames):
        arr, vb = _row_image(tl)
        assert tl.thumb_item.slots, "nothing drawn"
        w = tl.thumb_item.slot_width
        (x0, x1), _ = vb.viewRange()
        checked = 0
        for s, j in tl.thumb_item.slots:
            if s < x0 or s + w > x1 or s + w > t.n_frames - 0.5:
                continue  # partly outside the view or the shot
            mid = s + w / 2
            assert abs(t.frames[j] - mid) <= 0.5 + 1e-6  # the nearest thumbnail to the slot's centre
            crop, want = _slot_crop(tl, vb, arr, s, w, t.images[j])
            assert crop.std() > 5, "the row is blank"
            assert np.abs(crop.mean(axis=(0, 1)) - want.mean(axis=(0, 1))).max() < 8  # mean colour
            assert np.abs(crop - want).mean() < 20  # the picture itself, right way up
            centre_frames.append(mid)
            checked += 1
        assert checked >= 2
        return centre_frames

    full = check_drawn([])
    assert min(full) < 5 and max(full) > 40  # the whole shot, zoomed out
    tl.ruler.setXRange(20, 30, padding=0)  # zoom in: the row follows the ruler's frame axis
    zoomed = check_drawn([])
    assert all(19 <= f <= 31 for f in zoomed)
    assert tl.thumb_item.slot_width < 10


def test_switching_shots_cancels_thumbnails(make_window, fresh_video, tracked_project, gui, qtbot):
    win = make_window()
    gui.open(win, fresh_video)
    job = win._thumb_job
    assert job is not None
    gui.open(win, tracked_project)  # another shot: the first one's job is cancelled (or done)
    assert job.state in ("cancelling", "cancelled", "succeeded")
    assert win._thumb_job is not job
    with qtbot.waitSignal(win.timeline.thumbnails_changed, timeout=60_000):
        pass
    assert win.timeline.thumb_item.thumbs is not None and win.timeline.thumb_item.thumbs.n_frames == 50
