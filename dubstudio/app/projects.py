"""Several shots given at once (a prior's identities, a generic audio model's clips): project
folders, video files or folders of videos, each a tracked project."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.core.paths import default_project_dir
from dubstudio.project.store import PROJECT_FILE, Project
from dubstudio.tracking.track import TrackSettings, track

VIDEO_SUFFIXES = (".mp4", ".mov", ".mxf", ".mkv", ".avi", ".m4v")


def open_projects(entries: Sequence[str | Path], work: str | Path | None = None, progress: Progress | None = None) -> list[Project]:
    """One tracked project per entry (a folder of videos gives one per video); videos are tracked
    into ``work/<stem>`` or, without ``work``, their default project (``core.paths``)."""
    out = []
    for e in entries:
        p = Path(e)
        if p.is_dir() and (p / PROJECT_FILE).is_file():
            out.append(Project.open(p))
        elif p.is_dir():
            vids = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            if not vids:
                raise DubStudioError(f"{p} is neither a project nor a folder with videos ({', '.join(VIDEO_SUFFIXES)}).")
            out += [tracked_project(v, work, progress) for v in vids]
        elif p.is_file():
            out.append(tracked_project(p, work, progress))
        else:
            raise DubStudioError(f"{p} not found; give tracked project folders, video files or folders of videos.")
    return out


def tracked_project(video: Path, work: str | Path | None = None, progress: Progress | None = None) -> Project:
    root = Path(work) / video.stem if work else default_project_dir(video)
    project = Project.create(root, video)
    track(video, project, TrackSettings(), progress or Progress())
    return project
