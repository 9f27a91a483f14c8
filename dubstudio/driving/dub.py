"""Driving: new mouth motion for a shot, from a dubbing actor's video or from dubbed audio.

Both paths end in a ``DubDrive``: one ``SetDriven`` edit on the named controls (the tracked curves
stay under it, and the user can reset any frame or range to them) and the audio it belongs to.
Nothing here saves: the application layer (``app.dub``) applies the edit to the saved curves for
the CLI, the editor pushes it on its undo stack, and either records the audio in the project
(``shot.dub_audio``) so export muxes it in sync.

``offset_s`` is the same for every driving path and for export: the shot time at which the new
performance (and its audio) starts (> 0: later in the shot, after silence; < 0: its first
-offset_s seconds are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dubstudio.shot.tracking import load_tracking
from dubstudio.core.edits import SetDriven
from dubstudio.core.jobs import Progress
from dubstudio.driving.a2e_data import eased
from dubstudio.driving.a2e_predict import AdaptConfig, drive_project_from_audio
from dubstudio.project.store import Project, cached_fingerprint
from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.track import TrackSettings, track


@dataclass
class DubDrive:
    """A computed dub, not applied yet: the edit and the audio it belongs to."""

    edit: SetDriven  # over the named controls, the whole shot
    kind: str  # "audio" | "dubber"
    source: Path  # the dialogue file or the dubber video
    offset_s: float  # the shot time where the new performance (and its audio) starts
    driven_frames: int  # frames the driven layer drives (outside the new line: the mouth eased closed)
    n_frames: int
    details: dict = field(default_factory=dict)
    placement: str | None = None  # how offset_s was found by timecode (recorded with the audio)
    values: np.ndarray | None = None  # (n_frames, C) the driven controls, as the edit sets them


# A dubber clip's sound is only shifted against its picture when the audio model clearly sees it:
# the best lag must beat lag 0 by this much (Pearson r) and correlate at least this well.
DUBBER_SYNC_MIN_GAIN = 0.1
DUBBER_SYNC_MIN_R = 0.25
DUBBER_SYNC_MAX_S = 0.4


def dubber_av_sync(dubber_project: Project, dubber_video: Path, sync: str | float = "auto", generic=None) -> dict:
    """How late the dubber clip's audio is against its picture (``seconds`` > 0: audio late).

    ``sync``: "auto" measures it with the person-generic audio model (the lag between the jaw it
    predicts from the clip's audio and the dubber's tracked jaw) and applies it only when clear
    (``drive_from_dubber`` then checks the retargeted mouth against the sound as well);
    "off" applies nothing; a number is the user's own measurement in seconds. Recordings made
    with a separate sound recorder are often a few frames off, and a retarget would carry that
    offset into the dub."""
    if sync == "off":
        return {"seconds": 0.0, "applied": False, "method": "off"}
    if not isinstance(sync, str):
        if not np.isfinite(float(sync)) or abs(float(sync)) > 2.0:
            raise ValueError(f"the dubber's sync offset must be within +-2 s, got {sync}")
        return {"seconds": float(sync), "applied": float(sync) != 0.0, "method": "given"}
    if sync not in ("auto", "check"):
        raise ValueError(f"sync must be 'check', 'auto', 'off' or seconds, got {sync!r}")
    from dubstudio.driving.a2e_actor import estimate_av_offset
    from dubstudio.driving.a2e_data import ClipSource
    from dubstudio.driving.a2e_generic import find_generic
    from dubstudio.core.errors import MediaError
    from dubstudio.shot.tracking import tracking_of

    g = generic if generic is not None else find_generic()
    if g is None:
        return {"seconds": 0.0, "applied": False, "method": "auto",
                "reason": "no audio-to-expression model installed (`dubstudio audio2expr train`): sync not checked"}
    tracking = tracking_of(dubber_project, corrected=False)[0]
    try:
        est = estimate_av_offset(ClipSource(tracking, Path(dubber_video), Path(dubber_video).stem), g, DUBBER_SYNC_MAX_S)
    except MediaError as e:
        return {"seconds": 0.0, "applied": False, "method": "auto", "reason": f"the dubber clip's audio cannot be read ({e})"}
    r0, r = est.get("r_lag0"), est.get("r_best")
    out = {"method": "auto", "lag_frames": int(est.get("lag_best", 0)), "r_lag0": r0, "r_best": r}
    clear = (r0 is not None and r is not None and abs(out["lag_frames"]) >= 2
             and r - r0 >= DUBBER_SYNC_MIN_GAIN and r >= DUBBER_SYNC_MIN_R)
    secs = float(out["lag_frames"] / tracking.fps) if clear else 0.0
    return out | {"seconds": secs, "applied": clear,
                  **({} if clear else {"reason": "no clear offset between the dubber's mouth and audio"})}


def drive_from_dubber(project: Project, dubber_video: Path, offset_s: float = 0.0, progress: Progress | None = None,
                      sync: str | float = "check", generic=None) -> DubDrive:
    """Track the dubbing actor's video (cached in the project's ``dubbers/<stem>``) and retarget
    their mouth onto the actor; ``offset_s`` is the shot time where the dubber clip (and its
    audio) starts. When the dubber's own audio is late against their picture (``sync``, see
    ``dubber_av_sync``; with "auto" also ``_check_against_sound``) the motion is delayed by as
    much, so the dub matches the audio that is muxed. "check" (the default) measures as "auto"
    does and reports the offset without moving anything: on dubber_a the measure says 0.2 s, but
    the dub's mouth follows the dubber's own mouth at r 0.86 unshifted and 0.07 shifted, and a mouth
    that opens 1-3 frames before its sound (natural at speech onsets) reads as an offset to it."""
    from dubstudio.driving.retarget import retarget
    from dubstudio.core.errors import DubStudioError

    progress = progress or Progress()
    dubber_video = Path(dubber_video)
    actor = load_tracking(project)
    dub_project = _dubber_project(project, dubber_video)
    dubber, metrics = track(dubber_video, dub_project, TrackSettings(), progress)
    if not np.any(dubber.has_face):
        raise DubStudioError(f"no face was found in the dubber video {dubber_video.name}; film the dubbing actor facing the camera.")
    progress.stage("dubber sync")
    measure = "auto" if sync == "check" else sync
    av = dubber_av_sync(dub_project, dubber_video, measure, generic)
    motion_s = offset_s + av["seconds"]  # shot time where the dubber's picture starts
    progress.stage("retarget")
    check_overlap(dubber_video.name, "dubber clip", dubber.n_frames / float(dubber.fps), motion_s, actor)
    values, ok, fmap = retarget(dubber, actor, motion_s)
    values = _close_outside(values, ok, actor, dubber, motion_s)
    if measure == "auto":
        # what the viewer judges: the actor's new mouth against the sound that is muxed with it
        moved, av = _check_against_sound(values, dubber_video, offset_s, actor, av)
        if sync == "check":
            found = float(av.get("seconds", 0.0)) if av.get("applied") else 0.0
            av = {k: v for k, v in av.items() if k not in ("seconds", "applied")}
            av |= {"method": "check", "seconds": 0.0, "applied": False}
            if found:
                av["measured_seconds"] = found
                av.pop("reason", None)
            moved = motion_s != offset_s
        if moved:
            motion_s = offset_s + av["seconds"]
            values, ok, fmap = retarget(dubber, actor, motion_s)
            values = _close_outside(values, ok, actor, dubber, motion_s)
    t = np.arange(actor.n_frames) / float(actor.fps) - motion_s
    inside = (t >= 0) & (t <= (dubber.n_frames - 1) / float(dubber.fps))
    edit = SetDriven(CONTROL_NAMES, values, start=0, weight=actor.has_face.astype(np.float64), source=f"dubber:{dubber_video.name}",
                     words=())  # a dubber's line has no script: the last line's words go
    edit.text = f"Dub from {dubber_video.name}"
    return DubDrive(
        edit, "dubber", dubber_video, float(offset_s), int(actor.has_face.sum()), actor.n_frames,
        {"map": fmap.as_dict(), "dubber_frames": dubber.n_frames, "dubber_fps": str(dubber.fps), "av_sync": av,
         "covered_frames": int((inside & actor.has_face).sum()),
         "dubber_tracking": {k: metrics[k] for k in ("landmark_rms_iod", "jaw_lip_corr") if k in metrics}},
        values=values,
    )


def _dubber_project(project: Project, dubber_video: Path) -> Project:
    """The project caching the dubber clip's tracking: ``dubbers/<stem>``, or ``<stem>-<hash>``
    when that folder already tracks another clip of the same name (a new take exported over the
    old file name must not be refused, nor reuse the old take's tracking)."""
    from dubstudio.project.store import PROJECT_FILE, cached_fingerprint

    folder = project.path(f"dubbers/{dubber_video.stem}")
    if (folder / PROJECT_FILE).exists() and Project.open(folder).video_fingerprint != cached_fingerprint(dubber_video.resolve()):
        folder = project.path(f"dubbers/{dubber_video.stem}-{cached_fingerprint(dubber_video.resolve())[:10]}")
    return Project.create(folder, dubber_video)


def _check_against_sound(values: np.ndarray, dubber_video: Path, offset_s: float, actor: Tracking, av: dict) -> tuple[bool, dict]:
    """``align_to_dialogue`` on the retargeted mouth against the dubber clip's own sound as it
    plays in the shot. It finds what the audio model's estimate left (or, with no model
    installed, the whole offset): dubber_a's picture leads its sound by 5 frames, the model sees
    3. Returns (moved, ``av`` with the total shift in ``seconds`` and the check under ``sound``)."""
    from dubstudio.driving.a2e_data import as_audio
    from dubstudio.driving.a2e_predict import _shifted, align_to_dialogue
    from dubstudio.core.errors import MediaError

    try:
        heard = _shifted(as_audio(dubber_video), -offset_s)  # shot frame 0 hears audio time -offset_s
    except MediaError as e:
        return False, av | {"sound": {"applied": False, "reason": f"the dubber clip's audio cannot be read ({e})"}}
    _, check = align_to_dialogue(values, heard, actor)
    out = av | {"sound": check}
    if not check.get("applied"):
        if "no audio-to-expression model" in str(av.get("reason", "")):
            out["reason"] = "no clear offset between the dubber's mouth and their sound"
        return False, out
    out.pop("reason", None)
    total = float(av["seconds"]) + check["moved_frames"] / float(actor.fps)
    return True, out | {"seconds": total, "applied": abs(total) > 1e-9}


def check_overlap(name: str, what: str, duration_s: float, start_s: float, actor: Tracking) -> None:
    """A clear error, before any curve is written, when a source placed at ``start_s`` in the
    shot covers less than one frame of it (too short, or an offset past either end): driving
    would otherwise close the mouth over the whole shot."""
    from dubstudio.core.errors import DubStudioError

    fps = float(actor.fps)
    shot_s = actor.n_frames / fps
    overlap = min(shot_s, start_s + duration_s) - max(0.0, start_s)
    if overlap < 1.0 / fps:
        raise DubStudioError(
            f"the {what} {name} ({duration_s:.2f} s, starting {start_s:+.2f} s into the shot) does not overlap "
            f"the {shot_s:.2f} s shot by a single frame: nothing to dub. Check the file and --offset.")


def _close_outside(values: np.ndarray, ok: np.ndarray, actor: Tracking, dubber: Tracking, offset_s: float) -> np.ndarray:
    """Where the dubber clip does not cover the shot, the new dialogue is silent: the mouth
    eases to closed (all controls 0) instead of showing the original language's lips. Frames
    inside the clip where the dubber's face was lost are interpolated from their neighbours."""
    from dubstudio.tracking.smoothing import fill_gaps

    t = np.arange(actor.n_frames) / float(actor.fps) - offset_s
    inside = (t >= 0) & (t <= (dubber.n_frames - 1) / float(dubber.fps))
    if ok.any():
        values = fill_gaps(values, ok)
    ramp = eased(inside.astype(np.float64), ease=3)
    return values * ramp[:, None]


AUDIO_MODELS = ("auto", "shot")


def audio_model_path(choice: str | Path | None = "auto") -> Path | None:
    """The generic audio-to-expression checkpoint a dub from audio uses: ``auto`` the installed one
    (`dubstudio audio2expr train`; the dub then still takes the shot's own model where that fits
    the actor clearly better, ``choose_audio_model``), or none when none is installed; ``shot``
    none (a model trained on the shot alone, even with a generic installed); or a checkpoint file
    (used as given). None: the shot's own.

    Neither wins everywhere: on talk_c (20 s, its sound realigned) the shot's own model drove the
    English line at r 0.63 against the generic's 0.44; on the 8 s talk_b the generic was in sync
    and the shot's own was not (BENCHMARKS.md, thirteenth session)."""
    from dubstudio.driving.a2e_generic import find_generic
    from dubstudio.core.errors import MediaError

    if choice is None or str(choice) == "auto":
        return find_generic()
    if str(choice) == "shot":
        return None
    path = Path(choice).expanduser()
    if not path.is_file():
        raise MediaError(f"audio model {path} not found; give auto, shot or a checkpoint from `dubstudio audio2expr train`.")
    return path


def drive_from_audio(project: Project, audio: Path, offset_s: float = 0.0, progress: Progress | None = None,
                     audio_model: str | Path | None = "auto", config: AdaptConfig = AdaptConfig(),
                     text: str | None = None, language: str = "en") -> DubDrive:
    """Mouth curves predicted from dubbed ``audio`` (``audio_model``, see ``audio_model_path``: by
    default the person-generic model if one is installed, adapted per actor on the shot's own
    audio, unless a small model trained on the shot fits the actor clearly better; a per-actor
    model trained on the shot otherwise). Past the end of the audio the mouth stays closed.
    ``text``: the line's script in ``language`` (an espeak-ng voice), aligned to the recording
    and blended with the audio model's mouth (``script_align``)."""
    from dubstudio.io.audio import audio_info

    audio = Path(audio)
    generic = audio_model_path(audio_model)  # a missing checkpoint fails before any work
    choose = generic is not None and str(audio_model or "auto") == "auto"  # a named model is used as named
    actor = load_tracking(project)  # a clear error when the shot is not tracked yet
    check_overlap(audio.name, "dialogue", audio_info(audio).duration_s, offset_s, actor)
    script = None
    if text is not None:
        from dubstudio.driving.a2e_data import as_audio
        from dubstudio.driving.script_align import align_script

        (progress or Progress()).stage("script: aligning the line's phones to the recording")
        script = align_script(text, as_audio(audio), language)
    # predict_curves' own offset is the other way round: shot frame i hears audio time
    # i / fps + its offset, so the audio starting offset_s into the shot is its -offset_s.
    res = drive_project_from_audio(project, audio, generic, offset_s=-offset_s, config=config, progress=progress, choose=choose,
                                   script=script)
    res.edit.text = f"Dub from {audio.name}"
    cached_fingerprint(audio)  # hashed here (a worker thread), so recording the dub is instant
    return DubDrive(res.edit, "audio", audio, float(offset_s), res.audio_frames, res.n_frames,
                    {"adaptation": res.adaptation}, values=res.values)
