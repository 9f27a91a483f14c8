"""The whole dub of one shot, headless: track -> adapt -> drive -> export (``dubstudio run``).

Every stage is the same core function the CLI's single commands and the editor run, with their
caches: a rerun skips a tracking or an adaptation that is already current (same inputs, same
settings, same step count) and resumes a killed one, so running the pipeline again after a crash or
with a different export format costs only the missing work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import DubStudioError


RUN_STEPS = 600  # adaptation steps from the prior or from scratch (about 5 min on 2 CPU cores at 128 px)
# from another shot of the actor (`--from-shot`, batch, the editor's default there): they match a
# 600-step run from scratch (BENCHMARKS.md, "another shot of the same actor")
FROM_SHOT_STEPS = 150


@dataclass(frozen=True)
class PipelineSettings:
    steps: int = RUN_STEPS
    mode: str = "full"  # adaptation mode; texture/mixed need a prior
    prior: Path | None = None
    frames: str | None = None  # training frames A:B (default: the whole shot)
    offset_s: float = 0.0  # shot time where the new line starts (negative skips into the clip)
    placement: str | None = None  # how offset_s was found by timecode (driving.placement), if it was
    device: str = "cpu"
    audio_policy: str | None = None  # export length policy (default: pad dubbed audio)
    from_shot: Path | None = None  # another shot of the actor, adapted: start from it instead of the prior
    guide_track: bool = False  # the export's second audio track: the shot's own sound
    audio_model: str = "auto"  # the dub from audio's model: auto | shot | a generic checkpoint (dub.audio_model_path)


def dub_shot(
    video: Path,
    project_dir: Path,
    out: Path,
    audio: Path | None = None,
    dubber: Path | None = None,
    settings: PipelineSettings = PipelineSettings(),
    progress: Progress | None = None,
) -> dict:
    """Dub ``video`` with the new dialogue ``audio`` (or a dubbing actor's ``dubber`` video) and
    export the finished shot to ``out``; returns what each stage did."""
    from dubstudio.driving.dub import dub_from_audio, dub_from_dubber
    from dubstudio.export.audio_track import AudioRequest
    from dubstudio.export.job import ExportSettings, export_shot
    from dubstudio.project.store import Project
    from dubstudio.rendering.renderer import ActorRenderer
    from dubstudio.tracking.track import TrackSettings, track
    from dubstudio.core.frames import parse_frames
    from dubstudio.shot.adaptation import actor_file_of
    from dubstudio.training.trainer import adapt

    if (audio is None) == (dubber is None):
        raise DubStudioError("give the new dialogue as --audio FILE or a dubbing actor's video as --dubber VIDEO (one of them).")
    for p in (audio, dubber, settings.prior):  # (--from-shot is checked by actor_file_of, before tracking)
        if p is not None and not Path(p).is_file():
            raise DubStudioError(f"{p} not found; check the path.")
    start = actor_file_of(settings.from_shot) if settings.from_shot is not None else None  # a wrong path fails now
    if audio is not None:
        from dubstudio.driving.dub import audio_model_path

        audio_model_path(settings.audio_model)  # a missing checkpoint fails now, not after adaptation
    progress = progress or Progress()
    project = Project.create(project_dir, video)
    tracking, metrics = track(video, project, TrackSettings(), progress)
    if not tracking.has_face.any():
        raise DubStudioError(f"no face was found in {Path(video).name}; pick a shot that shows the actor's face.")
    frames = parse_frames(settings.frames, tracking.n_frames) if settings.frames else None
    if audio is not None:  # a dialogue that cannot fit the shot fails now, not after adaptation
        from dubstudio.export.audio_track import check_audio_length

        # a line placed by timecode is usually a reel's stem: what runs past the shot is cut (fit)
        policy = settings.audio_policy or ("fit" if settings.placement else "pad")
        check_audio_length(audio, tracking.n_frames, tracking.fps, settings.offset_s or 0.0, policy)
    ad = adapt(project, settings.mode, settings.steps, frames=frames, prior=settings.prior, device=settings.device, progress=progress,
               start_from=start, keep_longer=True)
    if dubber is not None:
        d = dub_from_dubber(project, Path(dubber), settings.offset_s, progress, placement=settings.placement)
    else:
        d = dub_from_audio(project, Path(audio), settings.offset_s, progress, placement=settings.placement,
                           audio_model=settings.audio_model)
    renderer = ActorRenderer.load(project, settings.device, actor=ad.path)
    # the audio the dub recorded (dialogue file or the dubber's own track) at its offset
    request = AudioRequest(policy=settings.audio_policy)
    ex = export_shot(project, renderer, out, ExportSettings(audio=request, verify=True, guide_track=settings.guide_track), progress,
                     tracking=tracking,
                     renderer_name=f"neural-{settings.mode}")
    return {
        "project": str(project.root),
        "tracking": {k: metrics[k] for k in ("frames", "frames_with_face", "landmark_rms_iod") if k in metrics},
        "adapt": {"mode": settings.mode, "steps": ad.steps, "cached": ad.cached, "wall_s": round(ad.wall_s, 1), "path": str(ad.path),
                  "from_shot": str(start) if start is not None else None, "warning": ad.warning},
        "dub": {"source": d.source, "driven_frames": d.driven_frames, "frames": d.frames},
        "export": ex,
    }
