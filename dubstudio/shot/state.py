"""``Shot``: one shot's state as every stage reads it, read once and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dubstudio.core.curves import ControlCurves
from dubstudio.masks.layer import MaskLayer
from dubstudio.project.store import Project
from dubstudio.shot import adaptation, curves, dub_audio, masks
from dubstudio.shot.tracking import tracking_of
from dubstudio.tracking.result import Tracking


class Shot:
    """A shot's project and what the stages derive from it: the tracking with the editor's
    corrections, the curves and the final controls, the painted masks, the dub's audio and the
    renderer's adaptations.

    The tracking is read once per ``Shot``; ``refresh()`` forgets it (after a re-track or saved
    corrections). Curves are returned fresh on every call: they are mutable."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._tracking: tuple[Tracking, str] | None = None

    @classmethod
    def open(cls, root: str | Path) -> Shot:
        return cls(Project.open(root))

    @property
    def root(self) -> Path:
        return self.project.root

    def video(self) -> Path:
        """The source video, checked (a clear error when it is missing or changed)."""
        return self.project.check_video()

    # -- tracking --

    def _tracked(self) -> tuple[Tracking, str]:
        if self._tracking is None:
            self._tracking = tracking_of(self.project)
        return self._tracking

    @property
    def tracking(self) -> Tracking:
        """The tracking with the editor's saved corrections applied."""
        return self._tracked()[0]

    @property
    def tracking_key(self) -> str:
        """Changes with a re-track or with saved corrections (what caches are keyed by)."""
        return self._tracked()[1]

    def tracker_result(self) -> Tracking:
        """The tracker's own result, without corrections."""
        return tracking_of(self.project, corrected=False)[0]

    def refresh(self) -> None:
        self._tracking = None

    # -- edits --

    def curves(self) -> ControlCurves:
        return curves.load_curves(self.project, self.tracking)

    def final_controls(self) -> tuple[np.ndarray | None, bool]:
        return curves.final_controls(self.project, self.tracking)

    def user_mask(self) -> MaskLayer | None:
        return masks.load_user_mask(self.project)

    # -- the dub --

    @property
    def dub_audio(self) -> dict | None:
        return dub_audio.recorded_dub_audio(self.project)

    def record_dub_audio(self, source: Path, kind: str, offset_s: float, placement: str | None = None) -> dict:
        """Record the audio a dub's mouth belongs to (it plays from ``offset_s`` into the shot)."""
        return dub_audio.record_dub_audio(self.project, source, kind, offset_s, start_in_shot_s=offset_s, placement=placement)

    # -- the renderer --

    def actor_file(self, mode: str | None = None) -> Path:
        return adaptation.actor_file_of(self.project, mode)

    def adaptations(self) -> list[tuple[str | None, str]]:
        return adaptation.adaptations(self.project)

    def __repr__(self) -> str:
        return f"Shot({str(self.root)!r})"
