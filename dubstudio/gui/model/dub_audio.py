"""The dubbed audio the timeline and playback show, Qt-free (the dub itself is ``app.dub``'s job):
its waveform placed where it plays in the shot, and its samples for playback."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.gui.model.shot import WAVE_BIN_S, WAVE_RATE, Waveform

SOUND_RATE = 48_000  # playback, as the window's own sound


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
    words: list[tuple[float, str]] = field(default_factory=list)  # the line's script: (shot time, word)

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
    words = [(float(t), str(w)) for t, w in ((record.get("script") or {}).get("words") or [])]
    path = record.get("path")
    if not path:
        return DubAudio(source.name, kind, start, None, record.get("note") or f"{source.name} has no audio track", words=words)
    path = Path(path)
    if not path.is_file():
        return DubAudio(path.name, kind, start, None, f"dubbed audio missing: {path}", words=words)
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
    return DubAudio(path.name, kind, start, wave, "", samples, at if window else None, words)


def waveform_frames(wave: Waveform, fps: float | Fraction, start_in_shot_s: float, x0: float, x1: float, max_bins: int):
    """``Waveform.decimated`` for an audio that starts ``start_in_shot_s`` into the shot:
    (x in shot frames, lo, hi) over shot frames [x0, x1]."""
    shift = float(start_in_shot_s) * float(fps)
    x, lo, hi = wave.decimated(float(fps), x0 - shift, x1 - shift, max_bins)
    return x + shift, lo, hi
