"""Opening shots: where projects go, and a real 1080p clip opening at once (frames decoded lazily)."""

from __future__ import annotations

import os
import shutil
import stat
import time

import pytest

from dubstudio.gui.shot import default_project_dir


def test_project_folder_beside_the_video_or_in_user_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path / "home"))
    (tmp_path / "rw").mkdir()
    assert default_project_dir(tmp_path / "rw" / "a.mp4") == tmp_path / "rw" / "a.dubstudio"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        d = default_project_dir(ro / "b.mp4")  # read-only even for root: never written into
        assert d.parent == tmp_path / "home" / "projects" and d.name.startswith("b-")
    finally:
        ro.chmod(0o755)
    # a symlink keeps the project beside the link, not beside its target
    link = tmp_path / "rw" / "c.mp4"
    os.symlink(ro / "b.mp4", link)
    assert default_project_dir(link) == tmp_path / "rw" / "c.dubstudio"


@pytest.mark.media
def test_1080p_shot_opens_at_once(make_window, media, gui, qtbot, tmp_path):
    clip = media / "dubber_a.mp4"  # 1920x1080 h264
    if not clip.is_file():
        pytest.skip("dubber_a.mp4 is not in the test media")
    before = sorted(p.name for p in media.iterdir())
    win = make_window()
    t0 = time.perf_counter()
    with qtbot.waitSignal(win.viewer.frame_shown, timeout=20_000):
        win.open_path(clip)
    first_frame_s = time.perf_counter() - t0
    assert win.session.info.width == 1920 and win.session.info.height == 1080
    assert first_frame_s < 5.0, f"first frame after {first_frame_s:.1f} s"
    assert len(win.frames.cache) <= 1 + 4 + 1  # decoded lazily: the frame and a short read-ahead
    # jump far and back: served by the decode thread, the GUI never decodes
    for f in (100, 60, 59):
        with qtbot.waitSignal(win.viewer.frame_shown, timeout=20_000, check_params_cb=lambda i, f=f: i == f):
            win.session.playhead.set_frame(f)
    assert sorted(p.name for p in media.iterdir()) == before  # nothing written into the media folder
    root = win.session.project.root
    win.close()
    shutil.rmtree(root, ignore_errors=True)


def test_switching_shots(make_window, tracked_project, fresh_video, gui, qtbot):
    win = make_window()
    gui.open(win, tracked_project)
    first = win.frames
    win.timeline.add_key(3, 0.5)  # unsaved: the window asks (auto-answer: discard)
    gui.open(win, fresh_video)
    assert ("unsaved" in [k for k, _ in win.prompter.asked])
    assert win.frames is not first and win.session.info.path.name == fresh_video.name
    assert win.session.tracking is None and win.session.curves is None
    qtbot.waitUntil(lambda: not first.is_running(), timeout=10_000)
    with qtbot.waitSignal(win.viewer.frame_shown, timeout=10_000, check_params_cb=lambda i: i == 7):
        win.session.playhead.set_frame(7)
    assert win.recent.paths()[:2] == [str(fresh_video.with_name("sample_astronaut.dubstudio").resolve()), str(tracked_project.resolve())]
