"""Opening shots: where projects go, and a real 1080p clip opening at once (frames decoded lazily)."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from dubstudio.core.paths import default_project_dir, projects_dir, set_projects_dir


def test_projects_go_to_the_projects_folder_never_beside_the_video(tmp_path, monkeypatch):
    """One rule for the CLI, batch and the editor: a video's project is in the projects folder
    (the user data folder's projects/, or the folder the user set), never in the video's folder,
    writable or not, even for root."""
    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path / "home"))
    (tmp_path / "rw").mkdir()
    a = default_project_dir(tmp_path / "rw" / "a.mp4")
    assert a.parent == tmp_path / "home" / "projects" and a.name.startswith("a-") and a.suffix == ".dubstudio"
    assert default_project_dir(tmp_path / "rw" / "a.mp4") == a  # the same video, the same project
    other = tmp_path / "other"
    other.mkdir()
    assert default_project_dir(other / "a.mp4") != a  # another video of that name: another project
    # a symlink is a video of its own path (a scratch folder's link keeps its own project)
    link = tmp_path / "rw" / "c.mp4"
    os.symlink(other / "a.mp4", link)
    assert default_project_dir(link).name.startswith("c-")
    # the folder the user sets (the editor's Settings, `dubstudio settings --projects-dir`)
    set_projects_dir(tmp_path / "studio" / "projects")
    assert projects_dir() == tmp_path / "studio" / "projects" and default_project_dir(link).parent == projects_dir()
    monkeypatch.setenv("DUBSTUDIO_PROJECTS", str(tmp_path / "env"))  # the environment wins
    assert default_project_dir(link).parent == tmp_path / "env"
    monkeypatch.delenv("DUBSTUDIO_PROJECTS")
    set_projects_dir(None)
    assert projects_dir() == tmp_path / "home" / "projects"


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
    assert win.recent.paths()[:2] == [str(default_project_dir(fresh_video).resolve()), str(tracked_project.resolve())]
