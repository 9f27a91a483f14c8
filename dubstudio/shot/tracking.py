"""The shot's tracking as the stages use it: the tracker's result with the editor's saved
corrections applied, and a key that changes with either."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import settings_hash
from dubstudio.project.store import Project
from dubstudio.tracking.correction_store import CorrectionStore
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.track import track_key


def tracking_of(project: Project, corrected: bool = True) -> tuple[Tracking, str]:
    """The project's Tracking and its key; a clear error if the shot is not tracked yet.

    With ``corrected`` (every downstream stage: curves, training, rendering, export) the editor's
    saved tracking corrections are applied and the key covers them, so frame caches and
    adaptations notice a correction like a re-track."""
    rec = project.stage_record("track")
    if not rec or "tracking" not in rec.get("outputs", {}):
        raise ProjectError(
            f"{project.root} has no tracking yet; run `dubstudio track VIDEO --project {project.root}` first."
        )
    path = project.path(rec["outputs"]["tracking"])
    if not path.is_file():
        raise ProjectError(f"the tracking file {path} is missing; run `dubstudio track` on the project again.")
    tracking, key = Tracking.load(path), str(rec["key"])
    if corrected:
        store = CorrectionStore(project)
        if store.exists():
            tracking = store.load(tracking).tracking
            key = settings_hash({"track": key, "corrections": hashlib.sha256(store.path.read_bytes()).hexdigest()})
    return tracking, key


def load_tracking(project: Project) -> Tracking:
    """The corrected tracking alone (``tracking_of(project)[0]``)."""
    return tracking_of(project)[0]


def current_tracking(project: Project, video: Path) -> tuple[Tracking | None, dict, str]:
    """The tracker's result if it is current for this video and the default settings, with its
    metrics; else None and why (what the editor shows before offering to track)."""
    rec = project.stage_record("track")
    if not rec:
        return None, {}, "not tracked yet"
    if not project.stage_is_current("track", track_key(project, video)):
        return None, {}, "the tracking is out of date (settings or version changed); track again"
    tracking = Tracking.load(project.path(rec["outputs"]["tracking"]))
    return tracking, dict(rec.get("metrics", {})), ""
