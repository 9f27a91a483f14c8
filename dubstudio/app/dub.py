"""Dub: new mouth motion from dubbed dialogue or a dubbing actor's video, as one edit.

``dub_job`` computes the dub and returns it (``driving.dub.DubDrive``: one ``SetDriven`` edit over
the named controls, and the audio it belongs to); it never saves. The CLI then calls
``apply_dub`` (the edit applied to the saved curves, and the audio recorded for export); the editor
pushes the edit on its undo stack and calls ``record_dub``. ``describe`` is the result's text for
both faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dubstudio.core.curves import ControlCurves
from dubstudio.core.edits import SetKeys
from dubstudio.core.errors import DubStudioError, MediaError
from dubstudio.core.jobs import Progress
from dubstudio.core.retime import in_frames, remap_frames
from dubstudio.core.visemes import visemes_edit
from dubstudio.driving.a2e_predict import AdaptConfig
from dubstudio.driving.dub import DubDrive, drive_from_audio, drive_from_dubber
from dubstudio.driving.placement import TIMECODE_OFFSET, place_by_timecode
from dubstudio.project.store import Project
from dubstudio.shot import Shot
from dubstudio.shot.curve_store import CurveStore
from dubstudio.shot.curves import load_curves
from dubstudio.shot.dub_audio import record_dub_audio

AUDIO_MODEL_HELP = ("the model that turns dialogue into mouth motion: auto = the installed generic model "
                    "(`dubstudio audio2expr train`; else the built-in one, trained on synthesised speech) adapted to "
                    "the actor, or one trained on this shot alone where that fits the actor clearly better; shot = "
                    "always the shot's own; or a generic checkpoint file")
DUBBER_SYNC_HELP = ("the dubber clip's own audio/picture offset: check (default) = measured (their mouth against their "
                    "sound, and with the installed audio model) and reported, never applied; auto = measured and applied "
                    "when clear; off; or SECONDS (> 0: their audio is late). The audio is never moved, the motion is.")


SYNC_MODES = ("check", "auto", "off")
VISEME_EASE_S = 0.08  # a keyed lip contact eases in and out over this (the shot's frames at any rate)
SCRIPT_HELP = ("the line's script (the translated text): its phones are aligned to the recording and shape the mouth "
               "with the audio model (closures on p/b/m, open vowels open); optional")
KEY_VISEMES_HELP = ("also key the script's lip contacts (closures on p/b/m, lip on teeth for f/v) as viseme keys on the "
                    "curves, where the editor can move or delete them; needs the script")
LANGUAGE_HELP = "the script's language, an espeak-ng voice: en, en-us, de, fr, es, it, ja, cmn, ... (`espeak-ng --voices`)"


@dataclass(frozen=True)
class DubRequest:
    project: Path
    audio: Path | None = None  # the dubbed dialogue (wav, or any file with audio)
    dubber: Path | None = None  # or a dubbing actor's video
    offset: float | str = 0.0  # shot time (s) where the new line starts; "tc": placed by timecode
    dubber_sync: str | float = "check"  # check | auto | off | seconds (> 0: the dubber's audio is late)
    audio_model: str = "auto"  # auto | shot | a generic checkpoint file
    placement: str | None = None  # how a numeric offset was found by timecode (the editor's From timecode)
    adapt_config: AdaptConfig | None = None  # the per-shot audio model's training settings (None: defaults)
    text: str | None = None  # the line's script (audio only): aligned to the recording, shapes the mouth
    language: str = "en"  # the script's language (an espeak-ng voice)
    key_visemes: bool = False  # the script's lip contacts also as viseme keys (editable)

    def check(self) -> None:
        if (self.audio is None) == (self.dubber is None):
            raise DubStudioError("give the new dialogue as --audio FILE or a dubbing actor's video as --dubber VIDEO (one of them).")
        check_script(self.text, self.audio)
        if self.key_visemes and self.text is None:
            raise DubStudioError("keying the script's visemes needs the script: give the line's words with --text.")
        line = Path(self.audio or self.dubber)
        if not line.is_file():
            what = "dubbed audio" if self.audio is not None else "dubber video"
            raise MediaError(f"{what} not found: {line}; choose an existing file.")
        parse_sync(self.dubber_sync)
        if self.offset != TIMECODE_OFFSET and not isinstance(self.offset, (int, float)):
            raise DubStudioError(f"the offset must be seconds or 'tc' (by timecode), got {self.offset!r}.")


def check_script(text: str | None, audio: Path | None) -> None:
    """A script goes with dubbed audio and has words."""
    if text is not None and audio is None:
        raise DubStudioError("a script (--text) goes with dubbed audio; a dubber's video already shows the mouth.")
    if text is not None and not any(ch.isalnum() for ch in text):
        raise DubStudioError("the script is empty: give the line's words, or leave --text out.")


def parse_sync(value: str | float) -> str | float:
    """``--dubber-sync``: check, auto, off, or seconds within +-2."""
    if value in SYNC_MODES:
        return value
    try:
        s = float(value)
    except (TypeError, ValueError):
        s = float("nan")
    if not abs(s) <= 2.0:
        raise DubStudioError(f"--dubber-sync must be check, auto, off or seconds within +-2, got {value!r}.")
    return s


def resolve_offset(offset: float | str, shot_video: Path, line: Path) -> tuple[float, str | None]:
    """(seconds, how it was placed): ``offset`` as given, or placed by timecode for "tc"."""
    if offset != TIMECODE_OFFSET:
        return float(offset), None
    if not Path(line).is_file():
        raise MediaError(f"{line} not found; choose an existing file.")
    p = place_by_timecode(shot_video, Path(line))
    return p.offset_s, p.describe()


def dub_job(req: DubRequest, progress: Progress | None = None) -> DubDrive:
    """The dub of ``req`` computed (tracked and retargeted, or predicted from the audio), not saved."""
    req.check()
    progress = progress or Progress()
    project = Project.open(req.project)
    line = Path(req.audio or req.dubber).expanduser().resolve()
    offset_s, placed = resolve_offset(req.offset, project.video_path, line)
    placement = placed or req.placement
    if req.dubber is not None:
        drive = drive_from_dubber(project, line, offset_s, progress, sync=parse_sync(req.dubber_sync))
    else:
        drive = drive_from_audio(project, line, offset_s, progress, audio_model=req.audio_model,
                                 config=req.adapt_config or AdaptConfig(), text=req.text, language=req.language)
    drive.placement = placement
    return drive


def record_dub(project: Project, drive: DubDrive) -> dict:
    """Record in the project which audio the dub's mouth belongs to (what export muxes)."""
    return record_dub_audio(project, drive.source, drive.kind, drive.offset_s, drive.offset_s, placement=drive.placement,
                            script=dub_script(drive) or None)


def apply_dub(project: Project, drive: DubDrive, key_visemes: bool = False) -> SetKeys | None:
    """The CLI's way: the dub's edit applied to the saved curves (one save) and its audio recorded;
    with ``key_visemes`` the script's lip contacts keyed on top (returned)."""
    shot = Shot(project)
    curves = load_curves(project, shot.tracking)
    if drive.n_frames != curves.n_frames:
        raise DubStudioError(f"the dub covers {drive.n_frames} frames but the shot has {curves.n_frames}; track the shot again.")
    drive.edit.apply(curves)
    keys = script_visemes_edit(curves, dub_script(drive), shot.tracking.fps) if key_visemes else None
    if keys is not None:
        keys.apply(curves)
    CurveStore(project).save(curves)
    record_dub(project, drive)
    return keys


def dub_script(drive: DubDrive) -> dict:
    """The aligned script of an audio dub ({} without one): its words and visemes in shot seconds."""
    script = (drive.details.get("adaptation") or {}).get("script") or {}
    return script if script.get("applied") else {}


def script_visemes_edit(curves: ControlCurves, script: dict | None, fps: float) -> SetKeys:
    """The script's lip contacts (``dub_script`` or the recorded dub audio's ``script``) as viseme
    keys on ``curves``, one edit, where the curves' words now put them (a re-timed word takes its
    contacts along). The editor moves or deletes them like any key."""
    visemes = (script or {}).get("visemes") or []
    if not visemes:
        raise DubStudioError("this dub has no script visemes: dub the line with its script (the words) first.")
    at = np.array([float(t) * fps for t, _ in visemes])
    aligned = in_frames((script or {}).get("words"), fps)
    if curves.words and [w for _, w in curves.words] == [w for _, w in aligned]:
        at = remap_frames(at, aligned, curves.words, curves.n_frames)  # the words were re-timed since: follow them
    keys = [(int(round(f)), str(name)) for f, (_, name) in zip(at, visemes)]
    width = max(1, int(round(VISEME_EASE_S * fps)))  # 2 frames at 25 fps, as a hand-inserted viseme
    return visemes_edit(curves, keys, width=width, text=f"Key the script's visemes ({len(keys)})")


def describe(drive: DubDrive, audio_model: str = "auto") -> list[str]:
    """What the dub did, a sentence each: the CLI prints them as lines, the editor as one message."""
    lines = [drive.placement] if drive.placement else []
    what = "dialogue" if drive.kind == "audio" else "dubbing actor"
    head = f"drove {drive.driven_frames}/{drive.n_frames} frames from the {what} {drive.source.name}"
    if drive.kind == "dubber" and "dubber_frames" in drive.details:
        head += f" ({drive.details['dubber_frames']} dubber frames tracked)"
    lines.append(head + "; the tracked curves are kept under it (reset any range to go back)")
    av = drive.details.get("av_sync") or {}
    if av.get("applied"):
        secs = float(av["seconds"])
        how = {"given": "as given", "auto": "measured"}.get(av.get("method"), "measured")
        if (av.get("sound") or {}).get("applied"):
            how += " (their mouth against their sound)"
        lines.append(f"the dubber's audio runs {abs(secs):.2f} s {'late' if secs > 0 else 'early'} against their picture, {how}; "
                     f"their motion was {'delayed' if secs > 0 else 'advanced'} to match it")
    elif av.get("measured_seconds"):
        secs = float(av["measured_seconds"])
        lines.append(f"dubber sync: their audio measures {abs(secs):.2f} s {'late' if secs > 0 else 'early'} against their "
                     f"picture; not applied, as a mouth that opens before its sound reads the same way (check by eye; "
                     f"--dubber-sync auto or {secs:+.2f} applies it)")
    elif av.get("reason"):
        lines.append(f"dubber sync: {av['reason']}")
    ad = drive.details.get("adaptation") or {}
    if ad.get("mode") == "linear":
        lines.append(f"audio model: the generic {Path((ad.get('generic') or {}).get('path') or 'model').name}, adapted to this actor")
    elif ad.get("mode") == "scratch":
        choice = ad.get("choice")
        why = (f" (it fitted the actor's own speech better than the generic: r {choice['r_shot']:.2f} against {choice['r_generic']:.2f})"
               if choice else "" if audio_model == "shot" else " (no generic model installed)")
        lines.append("audio model: trained on this shot alone" + why)
    script = ad.get("script") or {}
    if script.get("applied"):
        lines.append(f"script: {len(script.get('words', []))} words, {script['phones']} phones ({script['language']}) aligned to "
                     f"the recording; they shape half of the mouth over {script['frames']} frames")
        if script.get("warning"):
            lines.append("warning: " + script["warning"])
    elif script:
        lines.append(f"script not used: {script.get('reason')}")
    sync, rng = ad.get("sync") or {}, ad.get("range") or {}
    own = (ad.get("metrics") or {}).get("av_offset") or {}
    if own.get("frames"):
        k = int(own["frames"])
        lines.append(f"this shot's own sound runs {abs(k)} frames ({abs(float(own['seconds'])):.2f} s) {'late' if k > 0 else 'early'} "
                     f"against its picture; the audio model learned from realigned sound and picture")
    if sync.get("applied"):
        k = int(sync["moved_frames"])
        lines.append(f"the predicted mouth {'trailed' if k < 0 else 'led'} the dialogue's sound by {abs(k)} frames and was moved "
                     f"{'earlier' if k < 0 else 'later'} to match it")
    if rng.get("applied") and rng.get("gain", 1.0) > 1.0:
        lines.append(f"jaw opening scaled by {rng['gain']:.2f} to the actor's own range while speaking")
    return lines


def to_json(drive: DubDrive, project: Path) -> dict:
    return {"project": str(project), "source": str(drive.source), "driven_frames": drive.driven_frames, "frames": drive.n_frames,
            "offset_s": drive.offset_s, "placement": drive.placement, **drive.details}
