"""GUI test fixtures: the offscreen Qt platform (set before any Qt import), the built-in sample
clip, a tracked copy of it, and editor windows with their own settings file and auto-answers."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before PySide6 is imported anywhere
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory, monkeypatch):
    """Projects of read-only videos and anything per-user go to a temporary folder."""
    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> Path:
    """The built-in sample clip, 2 s (50 frames at 25 fps), built once per test session."""
    from dubstudio.app.sample import build_sample

    return build_sample(tmp_path_factory.mktemp("sample"), seconds=2)


@pytest.fixture
def fresh_video(sample_video, tmp_path) -> Path:
    """A private copy of the sample (its default project folder is then private too)."""
    dst = tmp_path / "clip" / sample_video.name
    dst.parent.mkdir()
    shutil.copy2(sample_video, dst)
    return dst


@pytest.fixture(scope="session")
def tracked_template(sample_video, tmp_path_factory) -> Path:
    """A project of the sample, tracked once with the core (tests copy it)."""
    from dubstudio.project.store import Project
    from dubstudio.tracking.track import track

    root = tmp_path_factory.mktemp("tracked") / "sample.dubstudio"
    track(sample_video, Project.create(root, sample_video))
    return root


@pytest.fixture
def tracked_project(tracked_template, tmp_path) -> Path:
    dst = tmp_path / "tracked.dubstudio"
    shutil.copytree(tracked_template, dst)
    return dst


@pytest.fixture
def make_window(qtbot, tmp_path) -> Callable:
    """``make_window(answers=None, autosave_ms=...)`` -> a shown MainWindow with its own
    settings file and an AutoPrompter; closed (discarding edits) at teardown."""
    from PySide6.QtCore import QSettings

    from dubstudio.gui.main_window import MainWindow
    from dubstudio.gui.prompts import AutoPrompter

    made = []

    def make(answers: dict | None = None, autosave_ms: int = 60_000) -> MainWindow:
        settings = QSettings(str(tmp_path / f"settings{len(made)}.ini"), QSettings.Format.IniFormat)
        prompter = AutoPrompter(dict({"unsaved": "discard"}, **(answers or {})))
        win = MainWindow(settings=settings, prompter=prompter, autosave_ms=autosave_ms)
        qtbot.addWidget(win)
        win.resize(1280, 820)
        win.show()
        made.append(win)
        return win

    yield make
    for win in made:
        win.prompter.answers["unsaved"] = "discard"
        win.close()


N_ADAPT_FRAMES = 24


@pytest.fixture(scope="session")
def adapted_template(tracked_template, tmp_path_factory):
    """The tracked sample with a tiny 'full' adaptation (R = 64, 2 steps: seconds on a CPU)."""
    import torch

    from dubstudio.project.store import Project
    from dubstudio.nn.generator import GeneratorConfig
    from dubstudio.nn.config import TrainConfig
    from dubstudio.training.trainer import adapt

    root = tmp_path_factory.mktemp("adapted") / "sample.dubstudio"
    shutil.copytree(tracked_template, root)
    tiny = TrainConfig(resolution=64, batch_size=2, generator=GeneratorConfig(width=4, mults=(1, 2, 4, 8), audio_dim=8),
                       tex_resolution=32, tex_levels=2, checkpoint_every=1000, checkpoint_seconds=1e9)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        adapt(Project.open(root), "full", 2, frames=range(0, N_ADAPT_FRAMES), cfg=tiny)
    finally:
        torch.set_num_threads(n)
    return root


@pytest.fixture
def adapted_project(adapted_template, tmp_path) -> Path:
    dst = tmp_path / "adapted.dubstudio"
    shutil.copytree(adapted_template, dst)
    return dst


def open_and_wait(qtbot, win, path, timeout: int = 60_000) -> None:
    """Open a video or project and wait until its tracking state is known."""
    with qtbot.waitSignal(win.shot_ready, timeout=timeout):
        win.open_path(path)


def track_and_wait(qtbot, win, timeout: int = 120_000):
    with qtbot.waitSignal(win.tracking_loaded, timeout=timeout):
        job = win.track()
    return job


class StallMonitor:
    """Records the gaps between ticks of a 10 ms QTimer: a gap far above 10 ms means the GUI
    thread was blocked (the event loop could not run) for that long."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last: float | None = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = None
        self.gaps.clear()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.gaps, default=0.0)


@pytest.fixture
def gui(qtbot):
    """Helpers as a fixture (tests/gui has no __init__.py, so conftest is not importable)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        open=lambda win, path, timeout=60_000: open_and_wait(qtbot, win, path, timeout),
        track=lambda win, timeout=120_000: track_and_wait(qtbot, win, timeout),
        StallMonitor=StallMonitor,
    )
