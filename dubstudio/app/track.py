"""Track: the 3D face model through a shot, cached in the shot's project."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.core.paths import default_project_dir
from dubstudio.project.store import Project
from dubstudio.tracking.faces import MAX_FACES, parse_face
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.correction_store import CorrectionStore
from dubstudio.tracking.track import TrackSettings, chosen_face, track

OVERLAY_SUFFIXES = (".mp4", ".mov", ".mkv", ".png", ".jpg")
FACE_HELP = (f"which face to dub when several show: 0-{MAX_FACES - 1} counts from the left, X,Y is the face nearest "
             "to that pixel, @FRAME picks on that frame (e.g. 640,360@120); the person is followed by their face's "
             "shape, also where people trade places. Kept by the project; auto: back to the automatic choice")


@dataclass(frozen=True)
class TrackRequest:
    video: Path
    project: Path | None = None  # default: the video's project in the projects folder (core.paths)
    force: bool = False  # recompute even when the cached tracking is current
    overlay: Path | None = None  # also write an overlay: .mp4 of every frame, or a .png/.jpg contact sheet
    face: str | None = None  # which face when several show (FACE_HELP); None: the project's last choice

    def check(self) -> None:
        video = Path(self.video)
        if video.is_dir():
            raise DubStudioError(f"{video} is a folder; give the path of a video file.")
        parse_face(self.face)
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
        if note := faces_note(m):
            lines.append(note)
        return "\n".join(lines)


def faces_note(metrics: dict) -> str:
    """What to say when the shot shows more than one face ('' when it shows one)."""
    seen = int(metrics.get("faces_seen", 1) or 1)
    if seen < 2:
        return ""
    face = metrics.get("face", "automatic")
    which = ("the most prominent face (mediapipe's pick)" if face == "automatic" else face)
    return (f"note: {seen} faces in this shot; tracked {which}. Another one: --face 0-{seen - 1} (left to right) "
            f"or --face X,Y[@FRAME] (in the editor: Shot ▸ Choose Face).")


def track_job(req: TrackRequest, progress: Progress | None = None) -> TrackResult:
    """Track ``req.video`` into its project (created when missing; cached when current)."""
    req.check()
    progress = progress or Progress()
    project = Project.create(req.project_dir, req.video)
    _check_corrections_follow(project, req.face)
    tracking, metrics = track(req.video, project, TrackSettings(face=req.face), progress, force=req.force)
    overlay = None
    if req.overlay is not None:
        overlay = write_overlay(Path(req.video), tracking, Path(req.overlay), progress)
    return TrackResult(project, tracking, metrics, overlay)


def _check_corrections_follow(project: Project, face: str | None) -> None:
    """Tracking corrections are made on one person's face: choosing another face while they exist
    would move the new face by them, so it is refused (nothing is changed)."""
    if face is None or chosen_face(project, TrackSettings(face=face)) == chosen_face(project, TrackSettings()):
        return
    store = CorrectionStore(project)
    if store.exists():
        raise DubStudioError(f"this shot has tracking corrections made on the face tracked now ({store.path}); reset them "
                             "in the editor (Shot ▸ Reset In/Out to Tracker over the whole shot) or move the file aside, "
                             "then choose another face.")


def write_overlay(video: Path, tracking: Tracking, out: Path, progress: Progress | None = None) -> Path:
    """The tracked mesh drawn over the shot: a video of every frame, or a contact sheet image."""
    from dubstudio.tracking.overlay import write_overlay_grid, write_overlay_video

    if out.suffix.lower() in (".png", ".jpg"):
        return write_overlay_grid(video, tracking, out)
    return write_overlay_video(video, tracking, out, progress or Progress())
