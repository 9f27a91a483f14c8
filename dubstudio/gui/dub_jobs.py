"""Dubbing from the editor, Qt-free: the jobs behind Shot ▸ Dub from Audio… / Dubber Video…
and the dubbed audio the timeline and playback show.

The CLI's ``dubstudio dub`` (``dubstudio.driving.dub``) saves its ``SetDriven`` straight into
the project; the editor must not (the user may have unsaved edits, and a dub must be one undo
step). So these jobs compute the same edit *without saving*: ``audio_drive`` through
``drive_project_from_audio(..., save=False)``, ``dubber_drive`` through ``drive_from_dubber`` (what ``dub_from_dubber`` stores). The window pushes the edit on its undo stack and then records the
dubbed audio with ``record_dub_audio`` (what export muxes). ``offset_s`` follows the CLI: the
shot time where the new performance (and its audio) starts, for both paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import MediaError
from dubstudio.gui.shot import WAVE_BIN_S, WAVE_RATE, Waveform

SOUND_RATE = 48_000  # playback, as the window's own sound


@dataclass
class DubDrive:
    """A computed dub, not applied yet: the window pushes ``edit`` and records the audio."""

    edit: object  # core.edits.SetDriven over the named controls, the whole shot
    kind: str  # "audio" | "dubber" (record_dub_audio's kind)
    source: Path
    offset_s: float  # as the CLI's --offset: the shot time where the new performance starts
    start_in_shot_s: float  # shot time where the dubbed audio's first sample plays (= offset_s)
    driven_frames: int
    n_frames: int
    details: dict = field(default_factory=dict)
    placement: str | None = None  # how the start was found by timecode (recorded with the audio)

    def summary(self) -> str:
        what = "dialogue" if self.kind == "audio" else "dubbing actor"
        note = self.details.get("note")
        text = f"Dubbed from the {what} {self.source.name}: {self.driven_frames}/{self.n_frames} frames driven"
        if self.kind == "dubber" and "dubber_frames" in self.details:
            text += f" ({self.details['dubber_frames']} dubber frames tracked)"
            av = self.details.get("av_sync") or {}
            if av.get("applied"):
                text += (f"; their audio runs {abs(av['seconds']):.2f} s {'late' if av['seconds'] > 0 else 'early'} against "
                         f"their picture, so the motion was shifted to match it")
        if self.kind == "audio":
            ad = self.details.get("adaptation") or {}
            sync, rng = ad.get("sync") or {}, ad.get("range") or {}
            own = (ad.get("metrics") or {}).get("av_offset") or {}
            if own.get("frames"):
                k = int(own["frames"])
                text += (f"; this shot's own sound runs {abs(k)} frames {'late' if k > 0 else 'early'} against its picture, "
                         f"so the audio model learned from them realigned")
            if sync.get("applied"):
                k = int(sync["moved_frames"])
                text += (f"; the predicted mouth {'trailed' if k < 0 else 'led'} the line by {abs(k)} frames and was moved "
                         f"{'earlier' if k < 0 else 'later'} to match its sound")
            if rng.get("applied") and rng.get("gain", 1.0) > 1.0:
                text += f"; its opening was scaled by {rng['gain']:.2f} to the actor's own range"
        return text + (f"; {note}" if note else "") + ". Undo (Ctrl+Z) puts the previous mouth back."


def _check_source(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MediaError(f"{what} not found: {path}; choose an existing file.")
    return path.resolve()


def audio_drive(project, audio: str | Path, offset_s: float = 0.0, config=None, progress: Progress | None = None) -> DubDrive:
    """Mouth curves predicted from dubbed ``audio`` (``dubstudio dub --audio``), not saved.
    ``offset_s``: the shot time where the audio's first sample plays (as for every driving path
    and export; negative skips its beginning).

    Uses the user's generic audio-to-expression model when one was trained, adapted to this
    actor on the shot's own audio, unless a small model trained on the shot fits the actor
    clearly better; without a generic model that small per-actor model (cached)."""
    from dubstudio.driving.audio2expr_train import AdaptConfig, drive_project_from_audio, find_generic
    from dubstudio.driving.dub import check_overlap
    from dubstudio.shot.tracking import load_tracking
    from dubstudio.io.audio import audio_info
    from dubstudio.project.store import cached_fingerprint

    progress = progress or Progress()
    audio = _check_source(audio, "dubbed audio")
    actor = load_tracking(project)  # a clear error when the shot is not tracked yet
    check_overlap(audio.name, "dialogue", audio_info(audio).duration_s, float(offset_s), actor)
    # predict_curves' own offset is the other way round (shot frame i hears audio time
    # i / fps + its offset), as dubstudio.driving.dub.dub_from_audio converts it
    res = drive_project_from_audio(project, audio, find_generic(), offset_s=-float(offset_s), save=False,
                                   config=config or AdaptConfig(), progress=progress, choose=True)
    res.edit.text = f"Dub from {audio.name}"
    cached_fingerprint(audio)  # hashed here, so recording the dub on the GUI thread is instant
    mode = res.adaptation.get("mode")
    choice = res.adaptation.get("choice")
    note = ""
    if mode == "scratch":
        note = (f"a model trained on this shot: it fitted the actor's own speech better than the generic one "
                f"(r {choice['r_shot']:.2f} against {choice['r_generic']:.2f})" if choice else
                "no generic model: a per-actor model trained on this shot")
    return DubDrive(res.edit, "audio", audio, float(offset_s), float(offset_s), res.audio_frames, res.n_frames,
                    {"adaptation": res.adaptation, "note": note})


def dubber_drive(project, video: str | Path, offset_s: float = 0.0, progress: Progress | None = None,
                 sync: str | float = "auto") -> DubDrive:
    """The dubbing actor's video tracked (cached in ``dubbers/<stem>``) and retargeted onto the
    actor (``dubstudio dub --dubber``), not saved. ``offset_s``: where it starts in the shot."""
    from dubstudio.core.edits import SetDriven
    from dubstudio.driving.dub import drive_from_dubber
    from dubstudio.shot.tracking import load_tracking
    from dubstudio.project.store import cached_fingerprint
    from dubstudio.core.controls import CONTROL_NAMES

    video = _check_source(video, "dubber video")
    actor = load_tracking(project)
    d = drive_from_dubber(project, video, float(offset_s), progress, sync)
    edit = SetDriven(CONTROL_NAMES, d.values, start=0, weight=d.weight, source=f"dubber:{video.name}")
    edit.text = f"Dub from {video.name}"
    cached_fingerprint(video)
    # the dubber's own audio starts offset_s seconds into the shot (as dub_from_dubber records)
    return DubDrive(edit, "dubber", video, float(offset_s), float(offset_s), d.covered_frames, actor.n_frames, d.details)


# ---------------------------------------------------------------------------- the dubbed audio


@dataclass
class DubAudio:
    """The dubbed audio recorded in the project, ready for the timeline and playback."""

    name: str
    kind: str  # "audio" | "dubber"
    start_in_shot_s: float
    waveform: Waveform | None  # None: the recorded source has no audio / is missing
    note: str = ""  # why there is no waveform
    sound: np.ndarray | None = None  # (channels, n) at SOUND_RATE, shot-aligned (sample 0 = frame 0)
    wave_start_s: float | None = None  # shot time of the waveform's first bin when only a window was read

    @property
    def wave_at(self) -> float:
        """Shot time where ``waveform`` begins."""
        return self.start_in_shot_s if self.wave_start_s is None else self.wave_start_s


def align(samples: np.ndarray, start_in_shot_s: float, rate: int) -> np.ndarray:
    """(channels, n) audio placed on the shot's timeline: leading silence when it starts later
    than frame 0, its beginning skipped when it starts before."""
    k = int(round(start_in_shot_s * rate))
    if k >= 0:
        return np.concatenate([np.zeros((samples.shape[0], k), np.float32), samples], axis=1)
    return samples[:, min(-k, samples.shape[1]):]


def envelope(audio: np.ndarray, rate: int = WAVE_RATE, bin_s: float = WAVE_BIN_S) -> Waveform:
    """Min/max envelope of mono ``audio`` as the timeline draws it."""
    k = max(1, int(round(rate * bin_s)))
    n = len(audio) // k * k
    if n == 0:
        return Waveform(np.zeros(1, np.float32), np.zeros(1, np.float32), bin_s)
    blocks = audio[:n].reshape(-1, k)
    return Waveform(blocks.min(axis=1), blocks.max(axis=1), bin_s)


def load_dub_audio(record: dict, sound: bool = False, progress: Progress | None = None, shot_s: float | None = None) -> DubAudio:
    """The recorded dubbed audio (``project.json`` ``dub_audio``): its waveform, and with
    ``sound`` its samples for playback, aligned to the shot. Given the shot's length ``shot_s``, a
    file running well past it (a reel's stem) is read only where the shot plays it."""
    from dubstudio.io.audio import audio_info, load_audio

    progress = progress or Progress()
    progress.stage("dubbed audio")
    source = Path(record.get("source") or "?")
    kind = str(record.get("kind", "audio"))
    start = float(record.get("start_in_shot_s", 0.0))
    path = record.get("path")
    if not path:
        return DubAudio(source.name, kind, start, None, record.get("note") or f"{source.name} has no audio track")
    path = Path(path)
    if not path.is_file():
        return DubAudio(path.name, kind, start, None, f"dubbed audio missing: {path}")
    window: dict = {}
    if shot_s is not None:
        from dubstudio.io.audio import STEM_MARGIN_S

        skip = max(0.0, -start)
        span = shot_s - max(0.0, start) + 1.0  # a second past the shot's end
        if audio_info(path).duration_s - skip > span + STEM_MARGIN_S:
            window = {"start_s": skip, "duration_s": span}
    wave = envelope(load_audio(path, sr=WAVE_RATE, mono=True, **window))
    progress.update(1, 2)
    samples = None
    at = start + window.get("start_s", 0.0)  # shot time of the first sample read
    if sound:
        samples = align(np.atleast_2d(load_audio(path, sr=SOUND_RATE, mono=False, **window)).astype(np.float32), at, SOUND_RATE)
    progress.update(2, 2)
    return DubAudio(path.name, kind, start, wave, "", samples, at if window else None)


def waveform_frames(wave: Waveform, fps: float | Fraction, start_in_shot_s: float, x0: float, x1: float, max_bins: int):
    """``Waveform.decimated`` for an audio that starts ``start_in_shot_s`` into the shot:
    (x in shot frames, lo, hi) over shot frames [x0, x1]."""
    shift = float(start_in_shot_s) * float(fps)
    x, lo, hi = wave.decimated(float(fps), x0 - shift, x1 - shift, max_bins)
    return x + shift, lo, hi
