"""Mel windows aligned to video frames at rational frame rates."""

from fractions import Fraction

import numpy as np

from dubstudio.nn.audio_features import SAMPLE_RATE, frame_windows, log_mel, speech_envelope


def _beeps(seconds: float, on: list[tuple[float, float]]) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = np.zeros_like(t)
    for a, b in on:
        sel = (t >= a) & (t < b)
        x[sel] = 0.5 * np.sin(2 * np.pi * 440 * t[sel])
    return x.astype(np.float32)


def test_windows_follow_the_sound_at_ntsc_rate():
    fps = Fraction(30000, 1001)
    audio = _beeps(4.0, [(2.0, 2.5)])
    mel = log_mel(audio)
    n = int(4.0 * fps)
    win = frame_windows(mel, n, fps)
    assert win.shape[0] == n and win.shape[1] == 80
    energy = win[:, :, win.shape[2] // 2].mean(axis=1)
    loud = np.flatnonzero(energy > energy.min() + 0.5 * (energy.max() - energy.min()))
    # The beep spans 2.0-2.5 s = frames 59.9-74.9 at 29.97 fps.
    assert abs(loud.min() - 60) <= 1 and abs(loud.max() - 74) <= 1


def test_envelope_is_zero_in_silence():
    fps = Fraction(25)
    env = speech_envelope(_beeps(2.0, [(1.0, 1.4)]), 50, fps)
    assert env[:24].max() < 1e-6 and env[26:34].min() > 0.3


def test_band_limited_envelope_keeps_the_speech_band_only():
    sr, fps = 16000, Fraction(25)
    t = np.arange(sr * 2) / sr
    mid = (0.3 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32)  # inside 1-3 kHz
    hum = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)  # below it
    n = 50
    full_mid, band_mid = speech_envelope(mid, n, fps), speech_envelope(mid, n, fps, band=(1000, 3000))
    band_hum = speech_envelope(hum, n, fps, band=(1000, 3000))
    np.testing.assert_allclose(band_mid[5:-5], full_mid[5:-5], rtol=0.05)
    assert band_hum[5:-5].max() < 0.01 * speech_envelope(hum, n, fps)[5:-5].min()
