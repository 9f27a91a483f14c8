"""The editor's dubbed-audio row and playback read a reel's stem only where the shot plays it."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from dubstudio.gui.model.dub_audio import SOUND_RATE, load_dub_audio, waveform_frames
from dubstudio.gui.model.shot import WAVE_BIN_S


def test_a_stems_waveform_and_sound_are_read_where_the_shot_plays_it(tmp_path):
    rng = np.random.default_rng(5)
    x = (0.1 * rng.standard_normal((40 * 48000, 2))).astype(np.float32)  # a 40 s stem
    path = tmp_path / "reel1.wav"
    sf.write(str(path), x, 48000, subtype="FLOAT")
    rec = {"source": str(path), "path": str(path), "kind": "audio", "start_in_shot_s": -20.0}
    whole = load_dub_audio(rec, sound=True)
    part = load_dub_audio(rec, sound=True, shot_s=4.0)  # a 4 s shot 20 s into the stem
    assert whole.wave_at == -20.0 and part.wave_at == 0.0 and part.start_in_shot_s == -20.0
    assert part.sound.shape[1] == 5 * SOUND_RATE and whole.sound.shape[1] == 20 * SOUND_RATE  # shot + 1 s, not the rest
    np.testing.assert_allclose(part.sound, whole.sound[:, : 5 * SOUND_RATE], atol=1e-6)
    # the timeline draws the same waveform over the shot either way
    a = waveform_frames(whole.waveform, 25, whole.wave_at, 0, 100, 10_000)
    b = waveform_frames(part.waveform, 25, part.wave_at, 0, 100, 10_000)
    n = int(4 / WAVE_BIN_S)
    np.testing.assert_allclose(a[0][:n], b[0][:n], atol=1e-6)
    np.testing.assert_allclose(a[1][:n], b[1][:n], atol=2e-3)
    # a line no longer than the shot is read whole
    short = {**rec, "start_in_shot_s": -30.0}
    assert load_dub_audio(short, sound=False, shot_s=4.0).wave_at == -30.0
