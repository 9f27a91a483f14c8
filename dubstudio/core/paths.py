"""Every path DubStudio uses comes from here (ARCHITECTURE rule 7), and one rule for where a
shot's project goes, the same for the CLI, batch and the editor.

Projects never go beside the video: studio media folders are shared and often read-only, and a
project folder dropped next to a camera original is clutter in someone else's tree. A video's
default project is ``<projects folder>/<video stem>-<hash of its path>.dubstudio``; the projects
folder is, in order: ``$DUBSTUDIO_PROJECTS``, the one set with ``dubstudio settings
--projects-dir`` or the editor's Settings (``settings.json`` in the user data folder), else
``<user data folder>/projects``. ``--project DIR`` (or File ▸ Open Project) still opens any folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "resources"
MODELS = REPO_ROOT / "models"
SETTINGS_FILE = "settings.json"


def media_dir() -> Path:
    """Test-only media (never shipped): $DUBSTUDIO_MEDIA or ../shared/data/media beside the repo."""
    env = os.environ.get("DUBSTUDIO_MEDIA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data" / "media"


def user_data_dir() -> Path:
    """Per-user writable folder (built-in sample, settings, default projects folder)."""
    env = os.environ.get("DUBSTUDIO_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dubstudio"


def models_dir() -> Path:
    """The models a user trains or installs (``nn.registry``): $DUBSTUDIO_MODELS, else the
    installation's ``models/`` folder."""
    env = os.environ.get("DUBSTUDIO_MODELS")
    return Path(env) if env else MODELS


def settings_file() -> Path:
    return user_data_dir() / SETTINGS_FILE


def _settings() -> dict:
    try:
        d = json.loads(settings_file().read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def projects_dir() -> Path:
    """Where a video's project goes when none is named (see the module docstring)."""
    env = os.environ.get("DUBSTUDIO_PROJECTS")
    if env:
        return Path(env).expanduser()
    chosen = _settings().get("projects_dir")
    if isinstance(chosen, str) and chosen:
        return Path(chosen).expanduser()
    return user_data_dir() / "projects"


def projects_dir_source() -> str:
    """What decided ``projects_dir()``: "environment", "settings" or "default"."""
    if os.environ.get("DUBSTUDIO_PROJECTS"):
        return "environment (DUBSTUDIO_PROJECTS)"
    return f"settings ({settings_file()})" if _settings().get("projects_dir") else "default"


def set_projects_dir(folder: Path | None) -> None:
    """Remember the projects folder for the CLI, batch and the editor alike (None: the default)."""
    from dubstudio.core.errors import DubStudioError

    d = _settings()
    if folder is None:
        d.pop("projects_dir", None)
    else:
        folder = Path(folder).expanduser().absolute()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DubStudioError(f"cannot use {folder} as the projects folder: {e.strerror}; choose a writable folder.") from e
        d["projects_dir"] = str(folder)
    f = settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f".{f.name}.tmp")
    tmp.write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, f)


def default_project_dir(video: Path) -> Path:
    """A video's project folder in the projects folder, named by the video and its absolute path
    (two videos of one name in different folders get two projects; the same video opened from
    the CLI, batch or the editor gets one). The video's own path is used, not a symlink's target."""
    video = Path(video).expanduser().absolute()
    tag = hashlib.sha1(os.fsencode(video)).hexdigest()[:8]  # the name's bytes: a non-UTF-8 name works too
    return projects_dir() / f"{video.stem}-{tag}.dubstudio"
