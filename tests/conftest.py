"""Shared test fixtures: the real test media, and tiny synthetic clips written with PyAV."""

from __future__ import annotations

import os
import sys

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from dubstudio.core.paths import media_dir

sys.path.insert(0, str(Path(__file__).parent))
from media_helpers import write_clip  # noqa: E402  (re-exported for fixtures below)


@pytest.fixture(scope="session", autouse=True)
def _user_folders(tmp_path_factory):
    """Tests never write into the user's folders nor the repo's models/: the user data folder
    (sample, settings), the projects folder and the models folder are a session's scratch
    folders (CLI subprocesses inherit them). The built-in audio model is off unless a test turns it
    on (tests/driving/test_a2e_synthetic.py): most dubs here exercise the shot's own model, which a
    user gets with `--audio-model shot`, and stay as fast as they were."""
    base = tmp_path_factory.mktemp("user")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUBSTUDIO_HOME", str(base / "home"))
        mp.setenv("DUBSTUDIO_MODELS", str(base / "models"))
        mp.setenv("DUBSTUDIO_BUILTIN_MODELS", "0")
        mp.delenv("DUBSTUDIO_PROJECTS", raising=False)
        yield


@pytest.fixture(scope="session")
def media() -> Path:
    """The test media folder (never copied into the repo).

    Skips when it is absent on a developer machine; in CI (CI=true) a missing folder fails,
    so a misplaced checkout can never pass by skipping every real-footage test."""
    d = media_dir()
    if not d.is_dir():
        msg = f"test media folder not found: {d} (set DUBSTUDIO_MEDIA)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    """``make_clip(name, frames, **kw)`` writes a synthetic clip into tmp_path (see write_clip)."""

    def make(name: str, frames: Sequence[np.ndarray], **kw) -> Path:
        return write_clip(tmp_path / name, frames, **kw)

    return make


@pytest.fixture(scope="session")
def talk_b_shot(media: Path, tmp_path_factory):
    """(project, tracking, clip): talk_b tracked once per session, shared by the modules that
    composite, evaluate or add detail on a real shot."""
    from dubstudio.project.store import Project
    from dubstudio.tracking.track import track

    clip = media / "talk_b.mp4"
    project = Project.create(tmp_path_factory.getbasetemp() / "shared_talk_b", clip)
    tracking, _ = track(clip, project)
    return project, tracking, clip
