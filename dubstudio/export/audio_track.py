"""The export's audio: which track, where it starts in the shot, and what to do about length.

Source, in order (``AudioRequest.mode == "auto"``):

1. the dubbed audio recorded by ``dubstudio dub`` (the dialogue file, or the dubber video's own
   audio track) at the offset it was driven with;
2. if the mouth was driven but the project does not say from which audio (dubbed by an older
   version, or from a silent dubber video): an error asking for ``--audio`` (exporting the
   original-language sound under new lips would be a silent mistake);
3. otherwise the shot's own audio (said so in the result), or no audio if it has none.

``mode="file"`` (``--audio FILE``), ``"original"`` and ``"none"`` choose explicitly.

Timing: ``start_in_shot_s`` is the shot time at which the audio's first sample plays
(``--audio-offset S``: S > 0 starts the audio S seconds into the shot, after silence; S < 0 skips
its first -S seconds). Then the length policy makes the track exactly
``round(n_frames / fps * sample_rate)`` samples long, so audio and video end together and the
difference is never a silent drift:

- ``pad``  (default for dubbed audio): a shorter track is padded with silence; a longer one is
  an error (we never cut dialogue without being asked);
- ``trim``: a longer track is cut at the shot's end; a shorter one is an error;
- ``fit``:  pad or trim, whichever is needed (default for the shot's own audio);
- ``error``: any difference of a frame or more is an error.

Differences under one frame (codec padding, rounding) are always absorbed and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.io.audio import STEM_MARGIN_S, has_audio
from dubstudio.shot.curves import driven_source
from dubstudio.core.errors import DubStudioError, MediaError, ProjectError

__all__ = ["AudioRequest", "ExportAudio", "AudioLengthError", "POLICIES", "EXPORT_SAMPLE_RATE", "prepare_audio", "fit_length", "check_audio_length", "target_samples", "mel_windows"]

POLICIES = ("pad", "trim", "fit", "error")
MODES = ("auto", "file", "original", "none")
EXPORT_SAMPLE_RATE = 48000


class AudioLengthError(DubStudioError):
    """The audio does not match the shot's length under the chosen policy."""


@dataclass(frozen=True)
class AudioRequest:
    mode: str = "auto"
    path: Path | None = None
    offset_s: float | None = None  # None: the recorded one (dubbed audio) or 0
    policy: str | None = None  # None: "pad" for dubbed audio, "fit" for the shot's own

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"audio mode must be one of {MODES}, got {self.mode!r}")
        if self.policy is not None and self.policy not in POLICIES:
            raise ValueError(f"audio policy must be one of {POLICIES}, got {self.policy!r}")
        if (self.mode == "file") != (self.path is not None):
            raise ValueError("give a path exactly when mode is 'file'")


@dataclass
class ExportAudio:
    samples: np.ndarray | None  # (channels, n) float32, exactly target_samples long; None = no audio
    sample_rate: int
    report: dict = field(default_factory=dict)


def target_samples(n_frames: int, fps: Fraction, sample_rate: int) -> int:
    """Samples that last exactly as long as the shot (rounded to the nearest sample)."""
    return int(round(Fraction(n_frames) / Fraction(fps) * sample_rate))


def _resolve(project, request: AudioRequest) -> tuple[str, Path | None, float, str | None, str]:
    """(kind, path, start_in_shot_s, note, default policy); kind in dubbed/file/original/none."""
    from dubstudio.shot.dub_audio import recorded_dub_audio

    offset = request.offset_s
    if request.mode == "none":
        return "none", None, 0.0, None, "fit"
    if request.mode == "file":
        p = Path(request.path).expanduser()
        if not p.is_file():
            raise MediaError(f"audio file not found: {p}; check the path given to --audio.")
        return "file", p.resolve(), float(offset or 0.0), None, "pad"
    video = project.check_video()
    if request.mode == "original":
        if not has_audio(video):
            raise MediaError(f"the shot {video.name} has no audio track; export with --no-audio or give --audio FILE.")
        return "original", video, float(offset or 0.0), None, "fit"
    rec = recorded_dub_audio(project)
    driven = driven_source(project)
    stale = None
    if rec and driven is None:
        # the dub was undone or reset in the editor (and saved): its audio no longer belongs here
        stale = f"the dub from {Path(rec.get('source', '?')).name} is no longer on the curves"
        rec = None
    elif rec and driven and Path(rec.get("source", "")).name not in driven.split(", "):
        raise ProjectError(
            f"the mouth was driven from {driven} but the recorded dubbed audio is {Path(rec.get('source', '?')).name}; "
            f"run `dubstudio dub` again or pass --audio FILE."
        )
    if rec and rec.get("path"):
        p = Path(rec["path"])
        if not p.is_file():
            raise ProjectError(
                f"the dubbed audio {p} recorded by `dubstudio dub` is missing; put it back or pass --audio FILE."
            )
        from dubstudio.project.store import cached_fingerprint

        if rec.get("fingerprint") and cached_fingerprint(p) != rec["fingerprint"]:
            raise ProjectError(
                f"the dubbed audio {p.name} has changed since the mouth was driven from it; run `dubstudio dub` "
                f"again, or pass --audio {p} to export it as it is now."
            )
        start = float(rec.get("start_in_shot_s", 0.0)) if offset is None else float(offset)
        note = f"dubbed audio from `dubstudio dub --{rec.get('kind', 'audio')}`"
        if rec.get("placement") and offset is None:  # a stem placed by timecode: its other lines are cut
            return "dubbed", p, start, f"{note}, placed by timecode", "fit"
        return "dubbed", p, start, note, "pad"
    if driven or rec:
        what = driven or Path(rec.get("source", "?")).name
        why = rec.get("note") if rec else "the project does not record where that audio is"
        raise ProjectError(
            f"the mouth was driven from {what} but {why}; pass --audio FILE (with --audio-offset S) for the "
            f"dubbed dialogue, or --original-audio / --no-audio."
        )
    why = stale or "no dubbed audio in the project"
    if has_audio(video):
        return "original", video, float(offset or 0.0), f"{why}: the shot's own audio", "fit"
    return "none", None, 0.0, f"{why} and the shot has no audio track: no audio", "fit"


def _check_fit(end: int, target: int, policy: str, sample_rate: int, fps: Fraction) -> tuple[int, int]:
    """(short, long) in samples of audio ending at sample ``end`` of a ``target``-sample shot; an
    AudioLengthError when ``policy`` does not allow a difference of a frame or more."""
    frame = Fraction(sample_rate) / Fraction(fps)  # samples per frame
    short, long = max(0, target - end), max(0, end - target)
    sr = float(sample_rate)
    if short >= frame and policy in ("trim", "error"):
        raise AudioLengthError(
            f"the audio ends {short / sr:.2f} s before the shot (at {end / sr:.2f} s of {target / sr:.2f} s); "
            f"pass --audio-policy pad (or fit) to fill the rest with silence, or use a longer audio."
        )
    if long >= frame and policy in ("pad", "error"):
        raise AudioLengthError(
            f"the audio runs {long / sr:.2f} s past the end of the shot ({end / sr:.2f} s for a {target / sr:.2f} s shot); "
            f"pass --audio-policy trim (or fit) to cut it at the shot's end, or move it with --audio-offset."
        )
    return short, long


def check_audio_length(path: str | Path, n_frames: int, fps: Fraction, offset_s: float = 0.0, policy: str = "pad") -> None:
    """Raise the export's AudioLengthError now, before any long job, when the dialogue at ``path``
    placed at ``offset_s`` cannot fit the shot under ``policy`` (decodes the file: exact length)."""
    from dubstudio.io.audio import load_audio

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}")
    from dubstudio.io.audio import audio_info

    sr = 16000
    start = int(round(offset_s * sr))
    target = target_samples(n_frames, Fraction(fps), sr)
    span = _stem_span(audio_info(path), start, target, sr)
    # a stem running well past the shot needs no decode to know it; a file near the shot's length does
    n = span[2] if span is not None else load_audio(path, sr=sr, mono=True).shape[-1]
    end = max(start, 0) + max(0, n - max(0, -start))
    _check_fit(end, target, policy, sr, Fraction(fps))


def fit_length(samples: np.ndarray, start: int, target: int, policy: str, sample_rate: int, fps: Fraction) -> tuple[np.ndarray, dict]:
    """Place ``samples`` (channels, n) at sample ``start`` of the shot (negative: skip its first
    -start samples) and make it exactly ``target`` long under ``policy``; returns (audio, report)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}")
    ch = samples.shape[0]
    if start >= 0:
        lead = start
        placed = samples
    else:
        lead = 0
        placed = samples[:, -start:]
    end = lead + placed.shape[1]  # where the audio ends on the shot's timeline
    short, long = _check_fit(end, target, policy, sample_rate, fps)
    sr = float(sample_rate)
    out = np.zeros((ch, target), np.float32)
    n = min(placed.shape[1], max(0, target - lead))
    if n > 0:
        out[:, lead : lead + n] = placed[:, :n]
    report = {
        "policy": policy,
        "start_in_shot_s": round(start / sr, 6),
        "leading_silence_s": round(min(lead, target) / sr, 6),
        "skipped_start_s": round(max(0, -start) / sr, 6),
        "padded_end_s": round(short / sr, 6),
        "trimmed_end_s": round(long / sr, 6),
    }
    return out, report




def _stem_span(info, start: int, target: int, sample_rate: int) -> tuple[int, int, int] | None:
    """(samples skipped, samples the shot plays, samples in the file) at ``sample_rate`` when the
    file runs well past the shot (a reel's dialogue stem placed by its offset or timecode: a
    20 min stem decoded whole is 460 MB of float samples), else None: decode it all. The file's
    length comes from its header; a shorter file is decoded whole, so pad/trim stay exact."""
    if not info.duration_s:
        return None
    total = int(round(info.duration_s * sample_rate))
    skip = max(0, -start)
    need = max(0, target - max(0, start))
    if total - skip <= need + STEM_MARGIN_S * sample_rate:
        return None
    return skip, need, total


def prepare_audio(project, n_frames: int, fps: Fraction, request: AudioRequest | None = None, sample_rate: int = EXPORT_SAMPLE_RATE) -> ExportAudio:
    """Resolve, decode (resampled to ``sample_rate``; mono stays mono, more than 2 channels are
    mixed to stereo), offset and fit the export's audio track."""
    from dubstudio.io.audio import audio_info, load_audio

    request = request or AudioRequest()
    fps = Fraction(fps)
    kind, path, start_s, note, default_policy = _resolve(project, request)
    shot_s = float(Fraction(n_frames) / fps)
    if kind == "none":
        rep = {"source": None, "kind": "none", "shot_duration_s": round(shot_s, 6)}
        if note:
            rep["note"] = note
        return ExportAudio(None, sample_rate, rep)
    policy = request.policy or default_policy
    info = audio_info(path)
    target = target_samples(n_frames, fps, sample_rate)
    start = int(round(start_s * sample_rate))
    span = _stem_span(info, start, target, sample_rate)
    if span is None:
        x = load_audio(path, sr=sample_rate, mono=False)  # (channels, n)
        source_n = x.shape[1]
    else:  # a reel's stem: decode only what the shot plays
        skip, need, source_n = span
        _check_fit(max(0, start) + source_n - skip, target, policy, sample_rate, fps)  # it runs on past the shot
        x = load_audio(path, sr=sample_rate, mono=False, start_s=skip / sample_rate, duration_s=need / sample_rate)
    if x.shape[0] > 2:
        x = np.stack([x[0::2].mean(axis=0), x[1::2].mean(axis=0)])
    if span is None:
        audio, fit = fit_length(x, start, target, policy, sample_rate, fps)
    else:
        audio, fit = fit_length(x, max(0, start), target, "fit", sample_rate, fps)
        fit |= {"policy": policy, "start_in_shot_s": round(start / sample_rate, 6), "skipped_start_s": round(skip / sample_rate, 6),
                "trimmed_end_s": round(max(0, source_n - skip - need) / sample_rate, 6)}
    rep = {
        "source": str(path),
        "kind": kind,
        "source_sample_rate": info.sample_rate,
        "source_channels": info.channels,
        "source_duration_s": round(source_n / sample_rate, 6),
        "shot_duration_s": round(shot_s, 6),
        "sample_rate": sample_rate,
        "channels": int(audio.shape[0]),
        "samples": int(audio.shape[1]),
        "duration_s": round(audio.shape[1] / sample_rate, 6),
        **fit,
    }
    if note:
        rep["note"] = note
    if not np.any(audio):
        rep["warning"] = "the audio is silent over the whole shot; check --audio-offset"
    return ExportAudio(audio, sample_rate, rep)


def mel_windows(audio: ExportAudio, n_frames: int, fps: Fraction) -> np.ndarray | None:
    """(n_frames, 80, 16) log-mel windows of the export's audio for audio-conditioned renderers
    (the neural renderer then hears the dubbed line instead of the shot's own)."""
    if audio.samples is None:
        return None
    from dubstudio.nn.audio_features import MelSettings, frame_windows, log_mel

    s = MelSettings()
    mono = audio.samples.mean(axis=0)
    if audio.sample_rate != s.sample_rate:
        import soxr

        mono = soxr.resample(mono, audio.sample_rate, s.sample_rate, quality="HQ").astype(np.float32)
    return frame_windows(log_mel(mono, s), n_frames, Fraction(fps), s)
