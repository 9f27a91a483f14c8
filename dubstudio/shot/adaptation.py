"""A shot's adaptations of the neural renderer: which actor file renders it, as recorded by the
``adapt`` stage (``adapt`` = the latest, ``adapt_<mode>`` = the latest of each mode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dubstudio.core.errors import ProjectError
from dubstudio.core.paths import default_project_dir
from dubstudio.project.store import Project


def actor_file_of(source: str | Path | Project, mode: str | None = None) -> Path:
    """The actor file behind ``source``: an actor file itself (``.pt``), a project (or its folder)'s
    latest adaptation (of ``mode``, when given), or a shot's video, meaning its default project."""
    if isinstance(source, Project):
        project = source
    else:
        source = Path(source)
        if source.is_file() and source.suffix.lower() == ".pt":
            return source
        if source.is_file():  # a shot's video: its default project (where `run` and the editor put it)
            source = default_project_dir(source)
            if not source.is_dir():
                raise ProjectError(f"{source} does not exist: give the project folder of that shot (or its actor file).")
        try:
            project = Project.open(source)
        except ProjectError as e:
            raise ProjectError(f"{source} is neither an actor file nor a project folder ({e})") from e
    stage = "adapt" if mode is None else f"adapt_{mode}"
    rec = project.stage_record(stage)
    if not rec:
        what = "adaptation" if mode is None else f"'{mode}' adaptation"
        raise ProjectError(f"{project.root} has no {what} yet; run `dubstudio adapt --project {project.root}` first.")
    path = project.path(rec["outputs"]["actor"])
    if not path.is_file():
        raise ProjectError(f"the adaptation of {project.root} points to {path}, which is missing; adapt that shot again.")
    return path


def shot_name(actor_file: str | Path) -> str:
    """The project folder an actor file sits in (``<project>/cache/adapt/actor_*.pt``), else its name."""
    p = Path(actor_file).resolve()
    return p.parents[2].name if p.parent.name == "adapt" and p.parent.parent.name == "cache" else p.name


def shot_of(source: str | Path) -> Path | None:
    """The project folder behind a From shot entry (folder, actor file or video), or None."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".pt":
        p = source.resolve()
        return p.parents[2] if p.parent.name == "adapt" and p.parent.parent.name == "cache" else None
    if source.is_file():
        source = default_project_dir(source)
    return source if source.is_dir() else None


def tracked_identity(project: Project) -> np.ndarray | None:
    """A tracked project's neutral face shape, read alone from its tracking file (cheap: the
    editor compares it with every recent shot); None when the shot is not tracked."""
    rec = project.stage_record("track")
    if not rec or "tracking" not in rec.get("outputs", {}):
        return None
    try:
        with np.load(project.path(rec["outputs"]["tracking"]), allow_pickle=False) as z:
            return np.asarray(z["identity"])
    except (OSError, KeyError, ValueError):
        return None


def adaptations(project: Project) -> list[tuple[str | None, str]]:
    """(mode or None for the latest, label) for each adaptation whose actor file exists: what an
    export or a render can choose from."""
    out: list[tuple[str | None, str]] = []

    def usable(rec) -> bool:
        return bool(rec) and "actor" in rec.get("outputs", {}) and (Path(project.root) / rec["outputs"]["actor"]).is_file()

    def label(rec) -> str:
        m = rec.get("metrics", {})
        return f"{m.get('mode', '?')}, {m.get('steps', '?')} steps" + (f" from shot {m['from_shot']}" if m.get("from_shot") else "")

    latest = project.stage_record("adapt")
    if usable(latest):
        out.append((None, f"Neural renderer — latest adaptation ({label(latest)})"))
    modes = [m for m in ("full", "texture", "mixed") if usable(project.stage_record(f"adapt_{m}"))]
    if len(modes) > 1:
        for m in modes:
            out.append((m, f"Neural renderer — {label(project.stage_record(f'adapt_{m}'))}"))
    return out
