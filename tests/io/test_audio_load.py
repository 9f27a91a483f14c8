"""load_audio / audio_info on wav (16/24-bit), AAC-in-mp4 and broken inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dubstudio.core.errors import MediaError
from dubstudio.io.audio import audio_info, load_audio

pytestmark = pytest.mark.media


def test_wav_24bit_stereo_to_16k_mono(media: Path) -> None:
    y = load_audio(media / "speech_de.wav")  # 48 kHz s24le stereo, 448448 samples
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 448448 / 3) <= 1  # 9.3427 s
    assert 0.05 < np.sqrt(np.mean(y**2)) and np.abs(y).max() < 1.2


def test_native_rate_stereo_is_bit_exact(media: Path) -> None:
    """No resampling at the native rate: the 24-bit samples match soundfile's decode."""
    y = load_audio(media / "speech_de.wav", sr=48000, mono=False)
    ref, sr = sf.read(media / "speech_de.wav", dtype="float32", always_2d=True)
    assert sr == 48000 and y.shape == (2, 448448)
    np.testing.assert_allclose(y, ref.T, atol=1e-7)


def test_aac_track_of_video(media: Path) -> None:
    y = load_audio(media / "talk_b.mp4")  # AAC 16 kHz stereo
    assert abs(len(y) / 16000 - 8.0) < 0.1  # 8.000 s after the encoder delay is trimmed
    assert np.abs(y).max() > 0.1


def test_audio_info(media: Path) -> None:
    info = audio_info(media / "speech_de.wav")
    assert (info.sample_rate, info.channels, info.codec) == (48000, 2, "pcm_s24le")
    assert info.duration_s == pytest.approx(9.3427, abs=1e-3)
    info = audio_info(media / "talk_c.mp4")
    assert (info.sample_rate, info.channels, info.codec) == (48000, 2, "aac")
    assert info.duration_s == pytest.approx(20.0, abs=0.05)


@pytest.mark.parametrize("name, start", [("speech_de.wav", 3.0), ("talk_c.mp4", 10.0), ("talk_a.mp4", 0.02)])
def test_window_equals_slice_of_full_load(media: Path, name: str, start: float) -> None:
    full = load_audio(media / name)
    win = load_audio(media / name, start_s=start, duration_s=1.5)
    assert len(win) == 24000
    i = round(start * 16000)
    np.testing.assert_allclose(win, full[i : i + 24000], atol=1e-3)


def test_window_past_the_end_is_short_or_empty(media: Path) -> None:
    assert len(load_audio(media / "talk_a.mp4", start_s=4.5, duration_s=3.0)) == pytest.approx(
        0.5155 * 16000, abs=2
    )
    assert len(load_audio(media / "talk_a.mp4", start_s=60.0)) == 0


def test_video_without_audio_raises(make_clip) -> None:
    path = make_clip("silent.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3)
    with pytest.raises(MediaError, match="no audio track"):
        load_audio(path)
    with pytest.raises(MediaError, match="no audio track"):
        audio_info(path)


def test_synthetic_aac_track_keeps_its_pitch(make_clip) -> None:
    frames = [np.zeros((16, 16, 3), np.uint8)] * 25
    y = load_audio(make_clip("tone.mp4", frames, audio_sr=44100), sr=16000)
    assert abs(len(y) - 16000) < 1100  # one second (+ at most one AAC frame)
    spectrum = np.abs(np.fft.rfft(y[2000:14000]))
    assert abs(np.argmax(spectrum) * 16000 / 12000 - 440) < 3


@pytest.mark.parametrize("kind", ["missing", "random", "truncated_wav"])
def test_bad_audio_files(tmp_path: Path, media: Path, kind: str) -> None:
    path = tmp_path / "bad.wav"
    if kind == "random":
        path.write_bytes(np.random.default_rng(1).bytes(20_000))
    elif kind == "truncated_wav":
        path.write_bytes((media / "speech_de.wav").read_bytes()[:30])  # header cut in half
    with pytest.raises(MediaError):
        load_audio(path)
