"""Track: the 3D face model through a shot, cached in the shot's project."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.core.paths import default_project_dir
from dubstudio.project.store import Project
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.track import TrackSettings, track

OVERLAY_SUFFIXES = (".mp4", ".mov", ".mkv", ".png", ".jpg")


@dataclass(frozen=True)
class TrackRequest:
    video: Path
    project: Path | None = None  # default: the video's project in the projects folder (core.paths)
    force: bool = False  # recompute even when the cached tracking is current
    overlay: Path | None = None  # also write an overlay: .mp4 of every frame, or a .png/.jpg contact sheet

    def check(self) -> None:
        video = Path(self.video)
        if video.is_dir():
            raise DubStudioError(f"{video} is a folder; give the path of a video file.")
        if self.overlay is not None and Path(self.overlay).suffix.lower() not in OVERLAY_SUFFIXES:
            raise DubStudioError(
                f"cannot write an overlay as {Path(self.overlay).name}: use a .mp4 (video) or .png/.jpg (contact sheet) name."
            )

    @property
    def project_dir(self) -> Path:
        return Path(self.project) if self.project else default_project_dir(self.video)


@dataclass
class TrackResult:
    project: Project
    tracking: Tracking
    metrics: dict
    overlay: Path | None = None
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"project": str(self.project.root), **self.metrics}
        if self.overlay is not None:
            out["overlay"] = str(self.overlay)
        return out

    def describe(self) -> str:
        m = self.metrics
        lines = [f"tracked {m['frames_with_face']}/{m['frames']} frames with a face -> {self.project.root}"]
        for k in ("tracking_fps", "landmark_rms_iod", "jaw_lip_corr", "crop_size_cv"):
            if k in m:
                lines.append(f"  {k:18s} {m[k]:.4f}")
        if self.overlay is not None:
            lines.append(f"  overlay            {self.overlay}")
        return "\n".join(lines)


def track_job(req: TrackRequest, progress: Progress | None = None) -> TrackResult:
    """Track ``req.video`` into its project (created when missing; cached when current)."""
    req.check()
    progress = progress or Progress()
    project = Project.create(req.project_dir, req.video)
    tracking, metrics = track(req.video, project, TrackSettings(), progress, force=req.force)
    overlay = None
    if req.overlay is not None:
        overlay = write_overlay(Path(req.video), tracking, Path(req.overlay), progress)
    return TrackResult(project, tracking, metrics, overlay)


def write_overlay(video: Path, tracking: Tracking, out: Path, progress: Progress | None = None) -> Path:
    """The tracked mesh drawn over the shot: a video of every frame, or a contact sheet image."""
    from dubstudio.tracking.overlay import write_overlay_grid, write_overlay_video

    if out.suffix.lower() in (".png", ".jpg"):
        return write_overlay_grid(video, tracking, out)
    return write_overlay_video(video, tracking, out, progress or Progress())
