"""The built-in audio model's data and model: espeak-ng speech with its phones, the phones' mouth
curves, training on synthesised lines, and the shipped weights (BENCHMARKS.md measures how well it
follows real speakers' mouths; these check behaviour)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.driving.a2e_generic import TrainConfig, builtin_generic_path, find_generic, load_generic
from dubstudio.driving.a2e_data import audio_windows
from dubstudio.driving.a2e_synthetic import synthetic_clips, train_synthetic
from dubstudio.driving.audio2expr import Audio2ExprConfig
from dubstudio.driving.phone_targets import phone_curves, phone_visemes
from dubstudio.driving.speech_synth import SpeechSynthError, synthesise

JAW, PRESS = CONTROL_NAMES.index("jaw_open"), CONTROL_NAMES.index("lip_press")
TINY = Audio2ExprConfig(enc_channels=16, width=32, dilations=(1, 2), dropout=0.0)


def test_espeak_speaks_with_each_phones_start_time():
    line = synthesise("Papa, mama.", "en")
    assert line.sample_rate > 8000 and 0.5 < line.duration_s < 3.0
    times = [t for t, _ in line.phones]
    assert times == sorted(times) and times[-1] <= line.duration_s + 0.05
    phones = "".join(p for _, p in line.phones)
    assert phones.count("p") >= 2 and phones.count("m") >= 2  # the lip closures are there, in IPA
    with pytest.raises(SpeechSynthError, match="no voice 'xx-nope'"):
        synthesise("hello", "xx-nope")


def test_phone_curves_open_on_vowels_close_on_lips_rest_in_pauses():
    phones = [(0.0, "m"), (0.2, "ɑː"), (0.5, "p"), (0.6, "u"), (0.8, ""), (1.4, "")]
    c = phone_curves(phones, 1.5, 150, 100.0, lead_s=0.0)  # 100 fps to look at the shapes closely
    assert c.shape == (150, len(CONTROL_NAMES))
    assert c[35, JAW] > 0.5 and c[35, JAW] > 4 * c[10, JAW]  # /ɑ/ open, /m/ shut
    assert c[10, PRESS] > 0.3 and c[55, PRESS] > 0.3 and c[35, PRESS] < 0.1  # lips pressed on /m/ and /p/
    assert c[70, CONTROL_NAMES.index("lip_pucker")] > 0.5  # /u/ rounds
    assert np.abs(c[100:130]).max() < 0.02  # a 0.6 s pause: the actor's rest
    led = phone_curves(phones, 1.5, 150, 100.0, lead_s=0.04)
    assert np.allclose(led[:-4], c[4:], atol=1e-9)  # a lead shows each shape 4 frames (40 ms) sooner


def test_the_lip_contacts_of_a_line_are_its_closures_and_f_v():
    phones = [(0.0, ""), (0.10, "h"), (0.15, "ə"), (0.20, "m"), (0.30, "a"), (0.42, "f"), (0.50, "ɪ"), (0.60, "b"), (0.66, "ʊ"),
              (0.72, "k"), (0.80, "v"), (0.86, "")]
    got = phone_visemes(phones, 1.0)
    assert [v for _, v in got] == ["closed", "fv", "closed", "fv"]
    assert [t for t, _ in got] == pytest.approx([0.25, 0.46, 0.63, 0.83])


def test_synthetic_clips_at_two_rates_with_matching_inputs():
    clips = synthetic_clips(3, seed=5)
    rates = {c.fps for c in clips}
    assert Fraction(25) in rates and len(rates) >= 2
    for c in clips:
        assert c.windows.shape == (c.n, 80, 16) and c.controls.shape == (c.n, len(CONTROL_NAMES))
        assert c.valid.all() and c.controls[:, JAW].max() > 0.3
    assert any(c.silent.any() for c in clips)  # the end of a line is silence


def test_training_on_synthesised_speech_writes_a_generic_model(tmp_path):
    out = tmp_path / "synthetic.pt"
    cfg = TrainConfig(steps=4, batch=2, seq_frames=16, log_every=2, fps_variants=(), threads=1)
    r = train_synthetic(out, utterances=3, config=cfg, model_config=TINY)
    assert r.steps == 4 and r.clips[0]["utterances"] == 3
    g = load_generic(out)
    assert g.predict(np.zeros((10, 80, 16), np.float32)).shape == (10, len(CONTROL_NAMES))


def test_cli_trains_on_synthesised_speech(tmp_path, capsys):
    from dubstudio.cli import main

    out = tmp_path / "s.pt"
    assert main(["audio2expr", "train", "--synthetic", "2", "--steps", "2", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2 and out.is_file()
    assert main(["audio2expr", "train", "--synthetic", "0"]) == 2
    assert "at least 1 line" in capsys.readouterr().err


def test_the_built_in_model_ships_and_is_found_only_when_nothing_else_is(monkeypatch, tmp_path):
    monkeypatch.setenv("DUBSTUDIO_BUILTIN_MODELS", "1")
    monkeypatch.setenv("DUBSTUDIO_MODELS", str(tmp_path / "models"))  # an empty models folder
    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path / "home"))  # no model from an earlier version either
    path = builtin_generic_path()
    assert path is not None and find_generic() == path
    g = load_generic(path)
    assert g.config["clips"][0]["name"].startswith("synthetic speech")  # trained on nothing else
    from dubstudio.app.audio2expr import a2e_show_job

    assert "trained on 600 lines of synthetic speech" in a2e_show_job().describe()
    monkeypatch.setenv("DUBSTUDIO_BUILTIN_MODELS", "0")
    assert builtin_generic_path() is None and find_generic() is None


def test_the_built_in_model_follows_a_line_it_never_heard(monkeypatch):
    """A line in a language and voice, at a rate and pitch, outside its training: the predicted jaw
    follows the line's phones (the training target) and shuts in its pause."""
    monkeypatch.setenv("DUBSTUDIO_BUILTIN_MODELS", "1")
    g = load_generic(builtin_generic_path())
    line = synthesise("Bom dia. ... Amanhã vamos ao mar, para ver o barco.", "pt-br+m2", rate=150, pitch=40)
    import soxr

    audio = soxr.resample(line.audio, line.sample_rate, 16000).astype(np.float32)
    n = int(line.duration_s * 25)
    jaw = g.predict(audio_windows(audio, n, 25))[:, JAW]
    target = phone_curves(line.phones, line.duration_s, n, 25.0)[:, JAW]
    assert np.corrcoef(jaw, target)[0, 1] > 0.6
    rest = target < 0.01
    assert rest.sum() >= 5 and jaw[rest].mean() < 0.5 * jaw[~rest].mean()


def test_a_machine_without_espeak_gets_a_clear_error(monkeypatch):
    from dubstudio.driving import speech_synth

    monkeypatch.setattr(speech_synth, "_engine", None)
    monkeypatch.setattr(speech_synth.ctypes.util, "find_library", lambda name: "libespeak-ng-not-here.so")
    with pytest.raises(SpeechSynthError, match="espeak-ng's library is not installed.*install"):
        synthesise("hello")
