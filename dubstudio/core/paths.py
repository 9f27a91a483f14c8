"""Every path DubStudio uses comes from here (ARCHITECTURE rule 7)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "resources"
MODELS = REPO_ROOT / "models"


def media_dir() -> Path:
    """Test-only media (never shipped): $DUBSTUDIO_MEDIA or ../shared/data/media beside the repo."""
    env = os.environ.get("DUBSTUDIO_MEDIA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data" / "media"


def user_data_dir() -> Path:
    """Per-user writable folder (built-in sample, recent projects)."""
    env = os.environ.get("DUBSTUDIO_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dubstudio"


def default_project_dir(video: Path) -> Path:
    """A shot's project folder: beside the video (VIDEO's name + .dubstudio), unless that folder is
    read-only (checked by mode bits: as root, access() says yes even on a read-only share); then
    in the user data folder."""
    import stat

    video = Path(video)
    folder = video.resolve().parent
    try:
        writable = bool(folder.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    except OSError:
        writable = False
    if writable:
        return video.with_name(video.stem + ".dubstudio")
    return user_data_dir() / "projects" / (video.stem + ".dubstudio")
