"""Run: the whole dub of one shot, headless: track -> adapt -> dub -> export (``dubstudio run``).

Each step is the same job the single commands and the editor run, with their caches: a rerun
skips a tracking or an adaptation that is already current (same inputs, same settings, same step
count) and resumes a killed one, so running again after a crash or with another export format
costs only the missing work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dubstudio.app.adapt import RUN_STEPS, AdaptRequest, adapt_job
from dubstudio.app.dub import DubRequest, apply_dub, check_script, dub_job
from dubstudio.app.export import ExportRequest, export_job
from dubstudio.app.renderer import RendererChoice
from dubstudio.app.track import TrackRequest, faces_note, track_job
from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.core.paths import default_project_dir
from dubstudio.driving.dub import audio_model_path
from dubstudio.eval.detail_check import DetailCheck
from dubstudio.export.audio_track import check_audio_length
from dubstudio.export.formats import guess_format
from dubstudio.export.guard import guard_output
from dubstudio.shot.adaptation import actor_file_of
from dubstudio.tracking.faces import parse_face


@dataclass(frozen=True)
class RunRequest:
    video: Path
    audio: Path | None = None  # the new dialogue, or
    dubber: Path | None = None  # a dubbing actor's video (driven by their mouth, muxed with their audio)
    project: Path | None = None  # default: the video's project in the projects folder
    output: Path | None = None  # default: PROJECT/dubbed.mp4
    offset_s: float = 0.0  # shot time where the new line starts (negative skips into it)
    placement: str | None = None  # how offset_s was found by timecode, if it was
    steps: int = RUN_STEPS
    mode: str = "full"  # adaptation mode; texture/mixed need a prior
    prior: Path | None = None
    from_shot: Path | None = None  # another shot of the actor, adapted: start from it instead of the prior
    frames: str | None = None  # training frames A:B (default: the whole shot)
    detail_check: bool = True  # frames held out of the adaptation to choose the mouth detail on (adapt --no-detail-check)
    audio_policy: str | None = None  # export length policy (default: pad, fit for a line placed by timecode)
    guide_track: bool = False  # the export's second audio track: the shot's own sound
    audio_model: str = "auto"  # auto | shot | a generic checkpoint
    text: str | None = None  # the line's script (with audio): aligned to it, shapes the mouth
    language: str = "en"  # the script's language (an espeak-ng voice)
    key_visemes: bool = False  # the script's lip contacts also as viseme keys (dub --key-visemes)
    device: str = "auto"
    face: str | None = None  # which face when several show (app.track.FACE_HELP); None: the project's last choice
    overwrite: bool = False  # replace an existing output that is not an earlier export of this shot
    protect: tuple[Path, ...] = ()  # more files the export must never write over (a batch's inputs)
    threads: int | None = None  # torch CPU threads (None: torch's choice; farm workers sharing a machine set it)

    @property
    def project_dir(self) -> Path:
        return Path(self.project) if self.project else default_project_dir(self.video)

    @property
    def output_path(self) -> Path:
        return Path(self.output) if self.output else self.project_dir / "dubbed.mp4"


@dataclass
class RunResult:
    project: Path
    tracking: dict
    adapt: dict
    dub: dict
    export: dict

    @property
    def ok(self) -> bool:
        return self.export.get("verify", {}).get("ok", True)

    def to_json(self) -> dict:
        return {"project": str(self.project), "tracking": self.tracking, "adapt": self.adapt, "dub": self.dub, "export": self.export}

    def describe(self) -> str:
        ex, ad = self.export, self.adapt
        return (f"dubbed {ex['frames']} frames ({self.dub['driven_frames']} driven) -> {ex['output']}"
                f"  [adapt {ad['steps']} steps{' (cached)' if ad['cached'] else ''}"
                f"{' from ' + str(ad['from_shot']) if ad.get('from_shot') else ''}; "
                f"export {ex['frames_per_s']} frames/s; ffprobe {'ok' if self.ok else 'FAILED'}]"
                + (f"\n{DetailCheck(**ad['mouth_detail']).describe()}" if ad.get("mouth_detail") and not ad.get("cached") else "")
                + (f"\nwarning: {ad['warning']}" if ad.get("warning") else "")
                + (f"\n{note}" if (note := faces_note(self.tracking)) else ""))


STAGES = ("track", "adapt", "dub", "export")


def _check(req: RunRequest, start: bool = True) -> Path | None:
    """Every check that can fail before any work; returns the actor file ``from_shot`` names
    (``start``: a farm's track, dub and export tasks run before or without it)."""
    if (req.audio is None) == (req.dubber is None):
        raise DubStudioError("give the new dialogue as --audio FILE or a dubbing actor's video as --dubber VIDEO (one of them).")
    for p in (req.audio, req.dubber, req.prior):  # (--from-shot is checked by actor_file_of, before tracking)
        if p is not None and not Path(p).is_file():
            raise DubStudioError(f"{p} not found; check the path.")
    if req.steps < 1:
        raise DubStudioError("--steps must be at least 1.")
    parse_face(req.face)
    first = actor_file_of(req.from_shot) if start and req.from_shot is not None else None  # a wrong path fails now
    guard_output(req.output_path, guess_format(req.output_path, None),
                 [("the shot's video", Path(req.video)), ("the new dialogue", req.audio), ("the dubber's video", req.dubber)]
                 + [("a file the shot list reads", Path(p)) for p in req.protect],
                 req.project_dir.name, Path(req.video).name, req.overwrite)  # before any work, not after adaptation
    if req.audio is not None:
        audio_model_path(req.audio_model)  # a missing checkpoint fails now, not after adaptation
    check_script(req.text, req.audio)
    if req.key_visemes and req.text is None:
        raise DubStudioError("keying the script's visemes needs the script: give the line's words with --text.")
    return first


def _track(req: RunRequest, progress: Progress):
    tr = track_job(TrackRequest(Path(req.video), req.project_dir, face=req.face), progress)
    if not tr.tracking.has_face.any():
        raise DubStudioError(f"no face was found in {Path(req.video).name}; pick a shot that shows the actor's face.")
    if req.audio is not None:  # a dialogue that cannot fit the shot fails now, not after adaptation
        # a line placed by timecode is usually a reel's stem: what runs past the shot is cut (fit)
        policy = req.audio_policy or ("fit" if req.placement else "pad")
        check_audio_length(req.audio, tr.tracking.n_frames, tr.tracking.fps, req.offset_s or 0.0, policy)
    return tr


def _adapt(req: RunRequest, project, start: Path | None, progress: Progress):
    return adapt_job(AdaptRequest(project.root, req.steps, mode=req.mode, prior=req.prior, from_shot=start, frames=req.frames,
                                  device=req.device, keep_longer=True, threads=req.threads, detail_check=req.detail_check),
                     progress)


def _dub(req: RunRequest, project, progress: Progress):
    drive = dub_job(DubRequest(project.root, audio=req.audio, dubber=req.dubber, offset=req.offset_s,
                               audio_model=req.audio_model, placement=req.placement, text=req.text, language=req.language,
                               key_visemes=req.key_visemes), progress)
    apply_dub(project, drive, req.key_visemes)
    dub = {"source": str(drive.source), "driven_frames": drive.driven_frames, "frames": drive.n_frames}
    if req.placement:
        dub |= {"offset_s": req.offset_s, "placement": req.placement}
    return dub


def _export(req: RunRequest, project, checkpoint: Path | None, progress: Progress):
    return export_job(ExportRequest(project.root, req.output_path, audio_policy=req.audio_policy, verify=True,
                                    guide_track=req.guide_track, renderer=RendererChoice(checkpoint=checkpoint, device=req.device),
                                    overwrite=req.overwrite, protect=req.protect, threads=req.threads or 0),
                      progress)


def _track_json(tr) -> dict:
    t = tr.metrics
    return {k: t[k] for k in ("frames", "frames_with_face", "landmark_rms_iod", "faces_seen", "face") if k in t}


def _adapt_json(req: RunRequest, ad, start: Path | None) -> dict:
    return {"mode": req.mode, "steps": ad.train.steps, "cached": ad.train.cached, "wall_s": round(ad.train.wall_s, 1),
            "path": str(ad.train.path), "from_shot": str(start) if start is not None else None, "warning": ad.train.warning,
            "mouth_detail": ad.detail.to_json() if ad.detail is not None else None}


def run_job(req: RunRequest, progress: Progress | None = None) -> RunResult:
    """Dub ``req.video`` with the new dialogue (or a dubbing actor's video) and export it."""
    start = _check(req)
    progress = progress or Progress()
    tr = _track(req, progress)
    project = tr.project
    ad = _adapt(req, project, start, progress)
    dub = _dub(req, project, progress)
    ex = _export(req, project, ad.train.path, progress)
    return RunResult(project.root, _track_json(tr), _adapt_json(req, ad, start), dub, ex.to_json())


def run_stage(req: RunRequest, stage: str, progress: Progress | None = None) -> dict:
    """One stage of ``run_job`` alone (a farm task): the stages before it have run as other tasks,
    and their results are read from the project's caches (tracking is current, so it is not
    redone). The export renders with the project's latest adaptation. Returns the stage's numbers."""
    if stage not in STAGES:
        raise DubStudioError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}.")
    start = _check(req, start=stage == "adapt")
    progress = progress or Progress()
    tr = _track(req, progress)
    if stage == "track":
        return _track_json(tr)
    if stage == "adapt":
        return _adapt_json(req, _adapt(req, tr.project, start, progress), start)
    if stage == "dub":
        return _dub(req, tr.project, progress)
    return _export(req, tr.project, None, progress).to_json()


def with_steps_for(req: RunRequest, steps: int | None, from_shot_steps: int) -> RunRequest:
    """``req`` with its step count: as given, else the default of its start (from another shot: fewer)."""
    return replace(req, steps=steps if steps is not None else (from_shot_steps if req.from_shot else RUN_STEPS))
