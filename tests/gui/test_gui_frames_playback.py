"""Frame source (decode thread, cache), playback timing and keys, viewer zoom, the app entry."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from dubstudio.io.video import VideoReader


def test_frame_source_serves_exact_frames_forward_and_back(sample_video, qtbot):
    from dubstudio.gui.frames import FrameSource

    with VideoReader(sample_video) as ref:
        truth = {i: ref.frame(i) for i in (0, 7, 8, 30, 29, 3)}
    src = FrameSource(VideoReader(sample_video, cache_size=1), cache_bytes=8 * 512 * 512 * 4)
    try:
        for i in (7, 8, 30, 29, 3):  # forward, sequential, jump, one back, far back
            with qtbot.waitSignal(src.frame_ready, timeout=10_000, check_params_cb=lambda j, img, i=i: j == i) as sig:
                src.request(i, -1 if i in (29, 3) else 1)
            img = sig.args[1]
            assert (img.width(), img.height()) == (512, 512)
            arr = np.frombuffer(img.constBits(), np.uint8).reshape(512, img.bytesPerLine() // 4, 4)
            rgb = arr[:, :512, 2::-1]  # Format_RGB32 is BGRA in memory
            assert np.abs(rgb.astype(int) - truth[i]).max() == 0
        # a backwards request decoded a block before it: stepping back is served from the cache
        assert all(j in src.cache for j in range(max(0, 3 - 2), 4))
        assert len(src.cache) <= 8  # the byte budget holds
    finally:
        src.close()


def test_playback_follows_the_clock_and_keys(make_window, tracked_project, gui, qtbot):
    from PySide6.QtCore import Qt

    win = make_window()
    gui.open(win, tracked_project)
    ph, pb = win.session.playhead, win.playback
    assert not win.audio.available or win.audio.reason == ""  # no sound device here: still plays
    ph.set_frame(0)
    t0 = time.perf_counter()
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert pb.playing and pb.speed == 1.0
    qtbot.waitUntil(lambda: ph.frame >= 20, timeout=5_000)
    elapsed = time.perf_counter() - t0
    assert elapsed >= 20 / 25 - 0.05  # not faster than real time
    assert ph.frame <= int((time.perf_counter() - t0) * 25) + 1  # and never ahead of the clock
    qtbot.keyClick(win, Qt.Key.Key_K)
    assert not pb.playing
    stopped = ph.frame

    qtbot.keyClick(win, Qt.Key.Key_L)
    qtbot.keyClick(win, Qt.Key.Key_L)
    assert pb.speed == 2.0
    qtbot.keyClick(win, Qt.Key.Key_J)
    assert pb.speed == -1.0
    qtbot.waitUntil(lambda: ph.frame < stopped, timeout=3_000)
    qtbot.keyClick(win, Qt.Key.Key_K)

    # looping inside in/out
    ph.set_range(10, 14)
    ph.set_frame(14)
    pb.play(1.0)
    seen: list[int] = []
    ph.frame_changed.connect(lambda f: seen.append(f))
    qtbot.waitUntil(lambda: len(seen) >= 8, timeout=5_000)
    pb.pause()
    assert set(seen) <= set(range(10, 15)) and seen.count(10) >= 1  # wrapped from 14 to 10


def test_playback_drops_frames_instead_of_lagging(qtbot):
    from fractions import Fraction

    from PySide6.QtCore import QTimer

    from dubstudio.gui.playback import PlaybackController
    from dubstudio.core.playhead import Playhead

    ph = Playhead(1000, Fraction(50))
    pb = PlaybackController(ph)
    pb.loop = False
    hog = QTimer()
    hog.timeout.connect(lambda: time.sleep(0.06))  # a GUI thread busier than the frame rate (test only)
    t0 = time.perf_counter()
    pb.play(1.0)
    hog.start(0)
    qtbot.waitUntil(lambda: ph.frame >= 40, timeout=5_000)
    hog.stop()
    pb.pause()
    elapsed = time.perf_counter() - t0
    assert elapsed < 40 / 50 + 0.4  # kept pace with the clock
    assert pb.dropped > 0  # by skipping frames


def test_viewer_zoom_and_fit(make_window, tracked_project, gui, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    win = make_window()
    gui.open(win, tracked_project)
    v = win.viewer
    fit = v.zoom
    centre = QPointF(v.viewport().width() / 2, v.viewport().height() / 2)
    ev = QWheelEvent(centre, v.viewport().mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(v.viewport(), ev)
    assert v.zoom == pytest.approx(fit * 1.25**2, rel=1e-3)
    qtbot.keyClick(win, Qt.Key.Key_1)
    assert v.zoom == pytest.approx(1.0)
    qtbot.keyClick(win, Qt.Key.Key_F)
    assert v.zoom == pytest.approx(fit, rel=1e-3)
    assert "%" in win.zoom_label.text()


def test_gui_entry_without_display(monkeypatch, capsys):
    from dubstudio.gui import app

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert app.main(None) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "dubstudio run" in err


def test_pyside_keeps_refcounts(qtbot):
    """PySide6 6.12.0 on CPython 3.11 drops a reference to None on every void call and to True on
    every signal emit, which kills the interpreter after a few thousand calls (fixed by pinning
    PySide6-Essentials < 6.12). This guards the pin."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class O(QObject):
        s = Signal(int)

    label, o = QLabel(), O()
    o.s.connect(lambda v: None)
    before = (sys.getrefcount(None), sys.getrefcount(True))
    for i in range(200):
        label.setText("x")
        o.s.emit(i)
    after = (sys.getrefcount(None), sys.getrefcount(True))
    assert after[0] >= before[0] - 20 and after[1] >= before[1] - 20, (before, after)


def test_the_timeline_counts_the_shots_source_timecode(make_window, sample_video, tmp_path, qtbot):
    """A shot stamped with its source timecode (as an edit exports it) shows that timecode, not
    one counted from zero, so the editor can find the frame the director names."""
    import av

    from tests.gui.conftest import open_and_wait

    clip = tmp_path / "stamped.mp4"
    with av.open(str(sample_video)) as src, av.open(str(clip), "w") as dst:
        dst.metadata["timecode"] = "10:00:00:00"
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
    win = make_window()
    open_and_wait(qtbot, win, clip)
    ph = win.session.playhead
    assert win.session.info.start_timecode == "10:00:00:00" and "TC 10:00:00:00" in win.session.info.describe()
    ph.set_frame(26)
    assert ph.timecode() == "10:00:01:01"
    qtbot.waitUntil(lambda: "10:00:01:01" in win.timeline.time_label.text(), timeout=3_000)


def test_the_viewer_shows_anamorphic_pixels_unsqueezed(make_window, sample_video, tmp_path, qtbot):
    """A 2x anamorphic shot (pixels shown twice as wide as tall) is displayed unsqueezed; scene
    units stay image pixels, so the overlays and the mouse still address image pixels."""
    import av
    from PySide6.QtCore import QPointF

    from tests.gui.conftest import open_and_wait

    clip = tmp_path / "anamorphic.mp4"
    with av.open(str(sample_video)) as src, av.open(str(clip), "w") as dst:
        vs = dst.add_stream("libx264", rate=25)
        vin = src.streams.video[0]
        vs.width, vs.height, vs.pix_fmt = vin.width // 2, vin.height, "yuv420p"  # squeezed to half width
        vs.codec_context.sample_aspect_ratio = 2
        for i, f in enumerate(src.decode(vin)):
            if i >= 10:
                break
            rgb = f.to_ndarray(format="rgb24")[:, ::2]
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                dst.mux(p)
        for p in vs.encode():
            dst.mux(p)
    win = make_window()
    open_and_wait(qtbot, win, clip)
    v = win.viewer
    assert win.session.info.sar == 2 and "pixels 2:1" in win.session.info.describe()
    qtbot.waitUntil(lambda: v.shown_frame is not None, timeout=5_000)
    v.fit()
    t = v.transform()
    assert t.m11() == pytest.approx(2 * t.m22()) and v.zoom == pytest.approx(t.m22())
    w, h = v.source.size
    centre = v.mapFromScene(QPointF(w / 2, h / 2))
    corner = v.mapFromScene(QPointF(w, h))
    # on screen the frame's width is 2 w to its height h: the unsqueezed picture
    assert (corner.x() - centre.x()) / (corner.y() - centre.y()) == pytest.approx(2 * w / h, rel=0.02)
    v.set_zoom(v.zoom * 2)
    assert v.transform().m11() == pytest.approx(2 * v.transform().m22())  # zooming keeps the aspect


def test_frames_come_at_the_view_size_and_from_the_proxy_once_built(sample_video, tmp_path, qtbot):
    """The decode thread scales to the view (the GUI paints a small image, not a 4K one); the
    display proxy serves far jumps once built and is cached for the next opening; 1:1 and closer
    always shows the decoder's exact pixels."""
    from dubstudio.gui.frames import FrameSource, view_level

    assert view_level(0.243) == 0.25 and view_level(2.0) == 1.0 and view_level(0.01) == 1 / 16
    with VideoReader(sample_video) as ref:
        truth = ref.frame(40)
    src = FrameSource(VideoReader(sample_video), proxy_dir=tmp_path)
    try:
        assert src.set_view_scale(0.5) and not src.set_view_scale(0.49)  # same level: nothing to do
        assert src.display_size == (256, 256)
        qtbot.waitUntil(src.prepared, timeout=30_000)
        assert src.proxy_frames() == (50, 50)
        assert len(list(tmp_path.glob("*.proxy"))) == 1
        with qtbot.waitSignal(src.frame_ready, timeout=10_000, check_params_cb=lambda j, img: j == 40) as sig:
            src.request(40)
        img = sig.args[1]
        assert (img.width(), img.height()) == (256, 256)
        assert src.set_view_scale(1.0) and len(src.cache) == 0  # zoomed to 1:1: the old size is dropped
        with qtbot.waitSignal(src.frame_ready, timeout=10_000, check_params_cb=lambda j, img: j == 40) as sig:
            src.request(40)
        img = sig.args[1]
        arr = np.frombuffer(img.constBits(), np.uint8).reshape(512, img.bytesPerLine() // 4, 4)
        assert np.array_equal(arr[:, :512, 2::-1], truth)  # the decoder's pixels, not the JPEG's
    finally:
        assert src.close()
    made = next(tmp_path.glob("*.proxy")).stat().st_mtime_ns
    again = FrameSource(VideoReader(sample_video), proxy_dir=tmp_path)
    try:
        qtbot.waitUntil(again.prepared, timeout=10_000)
        assert again.proxy_frames() == (50, 50)
        assert next(tmp_path.glob("*.proxy")).stat().st_mtime_ns == made  # read back, not rebuilt
    finally:
        again.close()


def test_the_viewer_decodes_at_its_zoom(make_window, tracked_project, gui, qtbot):
    from PySide6.QtCore import Qt

    win = make_window()
    gui.open(win, tracked_project)
    v = win.viewer
    w, h = v.source.size
    assert v.frame_item.image.width() < w  # fit: the frame is shown smaller, so it is decoded smaller
    assert v.frame_item.boundingRect().width() == w  # ... and drawn over the frame's own pixels
    qtbot.keyClick(win, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: v.frame_item.image.width() == w, timeout=10_000)
