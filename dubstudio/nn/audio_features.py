"""Audio features aligned to video frames: a log-mel window centred on every frame.

Shared by the renderer (audio injected into the generator) and audio-to-expression. Frames are
located by their exact rational time, so 23.976/29.97 fps footage aligns without drift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
N_MELS = 80
WINDOW_FRAMES = 16  # mel frames per video frame window (160 ms)


@dataclass(frozen=True)
class MelSettings:
    sample_rate: int = SAMPLE_RATE
    hop: int = HOP
    n_fft: int = 800
    n_mels: int = N_MELS
    window: int = WINDOW_FRAMES


def log_mel(audio: np.ndarray, s: MelSettings = MelSettings()) -> np.ndarray:
    """(n_mels, T) log-mel spectrogram (dB, clipped at -80, scaled to about [-1, 1])."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, np.float32), sr=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop,
        n_mels=s.n_mels, fmin=55, fmax=7600, center=True,
    )
    db = librosa.power_to_db(mel, ref=1.0, top_db=None)
    return (np.clip(db, -80, 20) + 30) / 50


def frame_windows(mel: np.ndarray, n_frames: int, fps: Fraction, s: MelSettings = MelSettings()) -> np.ndarray:
    """(n_frames, n_mels, window) mel windows centred on each video frame's time (edge-padded)."""
    mel_rate = Fraction(s.sample_rate, s.hop)
    half = s.window // 2
    padded = np.pad(mel, ((0, 0), (half, half + 1)), mode="edge")
    out = np.empty((n_frames, mel.shape[0], s.window), np.float32)
    for i in range(n_frames):
        centre = int(round(Fraction(i) / Fraction(fps) * mel_rate))
        centre = min(max(centre, 0), mel.shape[1] - 1)
        out[i] = padded[:, centre : centre + s.window]
    return out


def speech_envelope(audio: np.ndarray, n_frames: int, fps: Fraction, sample_rate: int = SAMPLE_RATE,
                    band: tuple[float, float] | None = None) -> np.ndarray:
    """RMS loudness per video frame (for lip-sync measures and silence detection).

    ``band`` (Hz) band-passes first: the 1-3 kHz envelope (the second-formant region) follows the
    mouth's opening more closely than the broadband one (Chandrasekaran et al. 2009, "The natural
    statistics of audiovisual speech"), and leaves out hum and hiss."""
    if band is not None:
        from scipy.signal import butter, sosfiltfilt

        sos = butter(4, band, "bandpass", fs=sample_rate, output="sos")
        audio = sosfiltfilt(sos, np.asarray(audio, np.float64)) if len(audio) > 30 else audio
    out = np.zeros(n_frames, np.float32)
    for i in range(n_frames):
        a = int(Fraction(i) / Fraction(fps) * sample_rate)
        b = int(Fraction(i + 1) / Fraction(fps) * sample_rate)
        seg = audio[a:b]
        out[i] = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0
    return out


def mel_windows_for_video(video: Path, n_frames: int, fps) -> np.ndarray:
    """(n_frames, 80, 16) float32 log-mel windows of the video's own audio; zeros (with a warning)
    when the file has no audio track."""
    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import VideoReader

    s = MelSettings()
    with VideoReader(video) as r:
        has_audio = r.has_audio
    if not has_audio:
        log.warning("%s has no audio track: the renderer is trained without audio conditioning", video.name)
        return np.zeros((n_frames, s.n_mels, s.window), np.float32)
    audio = load_audio(video, sr=s.sample_rate)
    return frame_windows(log_mel(audio, s), n_frames, fps, s)
