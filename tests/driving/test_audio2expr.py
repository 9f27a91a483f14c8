"""Audio to expression on a real short clip (talk_b): training, adaptation, inference, checkpoints.

Tiny models and few steps: these check behaviour, not quality (benchmarks/lipsync_audio_bench.py
measures quality).
"""

from __future__ import annotations

import dataclasses
import shutil
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from dubstudio.driving.audio2expr import ActorLayer, Audio2Expr, Audio2ExprConfig, n_params
from dubstudio.driving.audio2expr_train import (
    ActorAdaptation,
    AdaptConfig,
    Audio2ExprError,
    ClipSource,
    TrainConfig,
    adapt_actor,
    as_audio,
    clip_from_project,
    drive_project_from_audio,
    lag_correlation,
    load_generic,
    predict_curves,
    silence_mask,
    train_generic,
)
from dubstudio.core.errors import Cancelled, MediaError
from dubstudio.core.jobs import CancelToken, Progress
from dubstudio.project.store import Project
from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.tracking.track import track

pytestmark = pytest.mark.media

TINY = Audio2ExprConfig(enc_channels=16, width=32, dilations=(1, 2), dropout=0.0)
TINY_TRAIN = TrainConfig(steps=60, batch=4, seq_frames=32, lr=3e-3, log_every=10, fps_variants=("30000/1001",), threads=1)
TINY_ADAPT = AdaptConfig(
    steps=200,
    scratch_model=TINY,
    scratch_train=TrainConfig(steps=150, batch=4, seq_frames=32, lr=5e-3, log_every=25, fps_variants=(), threads=1),
)


@pytest.fixture(scope="module")
def shot(media: Path, tmp_path_factory):
    """talk_b tracked once per session (shared folder: other modules' fixtures reuse the cache)."""
    torch.set_num_threads(1)
    clip = media / "talk_b.mp4"
    project = Project.create(tmp_path_factory.getbasetemp() / "shared_talk_b", clip)
    tracking, _ = track(clip, project)
    return project, tracking, clip


@pytest.fixture(scope="module")
def audio(shot) -> np.ndarray:
    return as_audio(shot[2])


@pytest.fixture(scope="module")
def generic(shot, tmp_path_factory):
    out = tmp_path_factory.mktemp("a2e") / "generic.pt"
    result = train_generic([shot[0].root], out, TINY_TRAIN, TINY)
    return out, result


@pytest.fixture(scope="module")
def scratch(shot):
    return adapt_actor(shot[0], None, TINY_ADAPT)


def test_model_shapes_and_size():
    m = Audio2Expr()
    assert 200_000 <= n_params(m) <= 1_000_000  # the shipped default size
    y = m(torch.zeros(2, 37, 80, 16))
    assert y.shape == (2, 37, len(CONTROL_NAMES))
    with pytest.raises(ValueError, match="mel windows"):
        m(torch.zeros(2, 37, 40, 16))
    layer = ActorLayer()
    assert torch.equal(layer(y), y)  # starts as identity


def test_training_reduces_loss_and_writes_a_checkpoint(generic):
    path, result = generic
    assert result.steps == TINY_TRAIN.steps
    assert result.loss_last < 0.8 * result.loss_first
    assert path.is_file() and path.with_name(path.name + ".json").is_file()
    g = load_generic(path)
    assert g.step == TINY_TRAIN.steps and g.model.cfg == TINY


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001)])
def test_prediction_length_at_any_frame_rate(generic, audio, fps):
    n = int(len(audio) / 16000 * fps)
    y = predict_curves(audio, n, fps, generic[0])
    assert y.shape == (n, len(CONTROL_NAMES)) and np.all(np.isfinite(y))
    # Longer than the audio: padded with silence, still the asked length.
    assert predict_curves(audio[:16000], 40, fps, generic[0]).shape == (40, len(CONTROL_NAMES))


def test_silence_closes_the_mouth_after_short_actor_training(scratch, audio):
    assert scratch.mode == "scratch" and "no generic model" in scratch.metadata()["metrics"]["note"]
    fps = Fraction(25)
    gap = np.zeros(2 * 16000, np.float32)  # 2 s of silence inside speech
    a = np.concatenate([audio[: 3 * 16000], gap, audio[3 * 16000 : 6 * 16000]])
    n = int(len(a) / 16000 * fps)
    jaw = predict_curves(a, n, fps, None, scratch)[:, 0]
    silent, _ = silence_mask(a, n, fps)
    quiet = jaw[75 + 5 : 125 - 5]  # the gap, 0.2 s in from each edge
    speech = jaw[~silent]
    assert quiet.mean() < np.median(speech)
    assert quiet.mean() < 0.5 * np.percentile(speech, 90)


def test_linear_adaptation_on_the_generic_model(generic, shot, audio):
    project, tracking, _ = shot
    n = tracking.n_frames
    ad = adapt_actor(ClipSource(clip_from_project(project).tracking, audio, "talk_b", 0, int(0.6 * n)), generic[0], TINY_ADAPT)
    assert ad.mode == "linear" and ad.model is None
    assert ad.generic["step"] == TINY_TRAIN.steps
    # The layer also matches the actor's range while speaking (a spread term), which may cost a
    # little plain fit; it must not cost more than that.
    assert ad.metrics["loss_adapted"] <= 1.05 * ad.metrics["loss_generic"]
    assert np.all(ad.scale > 0)


def test_checkpoint_round_trips(generic, scratch, audio, tmp_path):
    fps = Fraction(25)
    a = audio[: 4 * 16000]
    before = predict_curves(a, 100, fps, None, scratch)
    scratch.save(tmp_path / "actor.pt")
    loaded = ActorAdaptation.load(tmp_path / "actor.pt")
    assert loaded.mode == "scratch" and loaded.metadata()["metrics"]["frames"] == scratch.metrics["frames"]
    np.testing.assert_allclose(predict_curves(a, 100, fps, None, loaded), before, atol=1e-6)
    # Generic: the loaded model predicts exactly what the trained one did.
    g1, g2 = load_generic(generic[0]), load_generic(generic[0])
    np.testing.assert_array_equal(predict_curves(a, 100, fps, g1), predict_curves(a, 100, fps, g2))


def test_zero_length_audio_is_a_clear_error(generic, tmp_path):
    with pytest.raises(MediaError, match="empty"):
        predict_curves(np.zeros(0, np.float32), 10, 25, generic[0])
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    with pytest.raises(MediaError):
        predict_curves(empty, 10, 25, generic[0])


def test_missing_model_and_bad_checkpoint_errors(audio, tmp_path):
    with pytest.raises(Audio2ExprError, match="audio2expr train"):
        predict_curves(audio[:16000], 10, 25)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(Audio2ExprError, match="damaged"):
        load_generic(bad)


def test_cancel_saves_a_resumable_checkpoint(shot, tmp_path):
    token = CancelToken()

    def cb(ev):
        if ev.stage.endswith("train") and ev.done >= 20:
            token.cancel()

    out = tmp_path / "g.pt"
    cfg = dataclasses.replace(TINY_TRAIN, steps=40, log_every=10)
    with pytest.raises(Cancelled):
        train_generic([shot[0].root], out, cfg, TINY, Progress(cb, token))
    assert out.is_file() and 20 <= load_generic(out).step < 40
    result = train_generic([shot[0].root], out, cfg, TINY)  # resumes from step 20
    assert result.steps == 40


def test_drive_project_writes_a_driven_layer(generic, shot, media, tmp_path):
    from dubstudio.shot.curve_store import CurveStore

    _, tracking, _ = shot
    shutil.copytree(shot[0].root, tmp_path / "p")  # own copy: the shared project stays unedited
    shutil.rmtree(tmp_path / "p" / "cache" / "audio2expr", ignore_errors=True)  # adapted in this call, not loaded
    project = Project.open(tmp_path / "p")
    res = drive_project_from_audio(project, media / "speech_de.wav", generic[0], config=TINY_ADAPT)
    assert res.values.shape == (tracking.n_frames, len(CONTROL_NAMES))
    assert res.adaptation["mode"] == "linear" and res.audio_frames == tracking.n_frames
    assert not CurveStore(project).exists()  # the edit is returned, not saved: the caller applies it
    res.edit.apply(curves := CurveStore(project).load(tracking))
    assert curves.has_driven("jaw_open") and curves.driven_source("jaw_open") == "audio:speech_de.wav"
    np.testing.assert_allclose(curves.evaluate("jaw_open"), res.values[:, 0], atol=1e-9)
    # Adaptation is cached by content: a second call does not retrain.
    again = drive_project_from_audio(project, media / "speech_de.wav", generic[0], config=TINY_ADAPT)
    assert again.adaptation["metrics"]["seconds"] == res.adaptation["metrics"]["seconds"]
    # ... and drives bit for bit the same curves (a re-export keys its segments on them)
    assert np.array_equal(again.values, res.values)
    # The driven jaw keeps the actor's range of motion; without the match it is the model's own.
    rng = res.adaptation["range"]
    assert rng["applied"] and 1.0 <= rng["gain"] <= 2.0
    raw = drive_project_from_audio(project, media / "speech_de.wav", generic[0], config=TINY_ADAPT, match_range=False)
    assert "range" not in raw.adaptation
    np.testing.assert_allclose(res.values[:, 1:], raw.values[:, 1:])  # only the jaw is scaled
    r, m = res.values[:, 0], raw.values[:, 0]
    up = m > 0
    assert np.all(r[up] >= m[up] - 1e-9) and np.all(r[up] <= np.clip(m[up] * rng["gain"], -0.2, 1.0) + 2e-3)  # gain shown to 3 places
    assert np.array_equal(r[m <= 0], m[m <= 0])


def test_match_jaw_range_restores_the_actors_spread_and_leaves_silence_alone(shot, audio):
    """A shrunk prediction's opening is scaled back to the actor's own wide opening while speaking
    (closed and pressed lips stay as they are); the gain is clamped; audio without speech changes
    nothing."""
    from dubstudio.driving.a2e_predict import match_jaw_range

    _, tracking, _ = shot
    n = tracking.n_frames
    values = np.zeros((n, len(CONTROL_NAMES)))
    values[:, 0] = 0.5 * tracking.controls[:, 0]  # a mumbling copy of the actor's jaw
    out, info = match_jaw_range(values, audio, tracking)
    assert info["applied"] and 1.3 < info["gain"] <= 2.0, info
    shut = values[:, 0] <= 0
    assert shut.any() and np.array_equal(out[shut, 0], values[shut, 0]) and np.array_equal(out[:, 1:], values[:, 1:])
    full = np.isclose(out[~shut, 0], np.clip(values[~shut, 0] * info["gain"], -0.2, 1.0), atol=1e-9)
    assert full.mean() > 0.5 and np.all(out[~shut, 0] >= values[~shut, 0])  # full gain while speaking
    # a pause in the line (here: its second half silenced) keeps the model's own opening
    paused = audio.copy()
    paused[len(paused) // 2 :] = 0.0
    out2, info2 = match_jaw_range(values, paused, tracking)
    mid = slice(int(n * 0.6), int(n * 0.95))
    assert info2["applied"] and np.array_equal(out2[mid, 0], values[mid, 0])
    tiny = values.copy()
    tiny[:, 0] *= 0.05
    assert match_jaw_range(tiny, audio, tracking)[1]["gain"] == 2.0  # clamped
    quiet, info = match_jaw_range(values, np.zeros_like(audio), tracking)
    assert not info["applied"] and quiet is values


def test_lag_correlation_finds_a_shift():
    rng = np.random.default_rng(0)
    x = np.convolve(rng.normal(size=300), np.ones(5) / 5, mode="same")
    lag, r, _ = lag_correlation(np.roll(x, 2), x, 5)
    assert lag == 2 and r > 0.99


def test_closure_frames_are_short_dips_inside_speech():
    from dubstudio.driving.a2e_data import closure_frames

    n = 100
    jaw = np.full(n, 0.4)
    silent = np.zeros(n, bool)
    silent[:10] = silent[90:] = True  # pauses: closed, but not closures inside speech
    jaw[:10] = jaw[90:] = 0.0
    jaw[30:33] = 0.0  # a /b/ inside a word
    jaw[60:62] = 0.02  # an /m/
    jaw[70:85] = 0.0  # held closed 0.6 s at 25 fps: a pause, not a closure
    got = closure_frames(jaw, np.ones(n, bool), silent, 25)
    assert np.flatnonzero(got).tolist() == [30, 31, 32, 60, 61]
    assert not closure_frames(jaw, np.zeros(n, bool), silent, 25).any()  # no tracked face: nothing


def test_closure_term_weights_up_a_mouth_that_mumbles_through_a_closure():
    from dubstudio.driving.a2e_generic import a2e_loss

    t = 20
    tgt = torch.zeros(1, t, len(CONTROL_NAMES))
    tgt[..., 0] = 0.4
    tgt[0, 8:11, 0] = 0.0  # the tracked mouth closes
    pred = tgt.clone()
    pred[0, 8:11, 0] = 0.3  # the prediction stays open
    valid, silent = torch.ones(1, t, dtype=torch.bool), torch.zeros(1, t, dtype=torch.bool)
    closure = torch.zeros(1, t, dtype=torch.bool)
    closure[0, 8:11] = True
    std = torch.ones(len(CONTROL_NAMES))
    plain, _ = a2e_loss(pred, tgt, valid, silent, std, dataclasses.replace(TINY_TRAIN, closure_weight=0.0), closure)
    none, _ = a2e_loss(pred, tgt, valid, silent, std, TINY_TRAIN, None)
    weighted, parts = a2e_loss(pred, tgt, valid, silent, std, dataclasses.replace(TINY_TRAIN, closure_weight=4.0), closure)
    assert torch.isclose(plain, none)
    assert weighted.item() == pytest.approx(plain.item() + 4.0 * parts["closure"]) and parts["closure"] > 0
    closed = pred.clone()
    closed[0, 8:11, 0] = 0.0
    assert a2e_loss(closed, tgt, valid, silent, std, TINY_TRAIN, closure)[0] < plain


def test_align_to_dialogue_removes_a_clear_lag_and_keeps_the_natural_lead(shot, audio):
    """A driven jaw that follows the sound 4 frames late (what a model trained on an out-of-sync
    shot learns) is moved back; a 1-frame offset, or a mouth unrelated to the sound, is left alone."""
    from dubstudio.driving.a2e_actor import _shift, lag_correlation
    from dubstudio.driving.a2e_predict import align_to_dialogue
    from dubstudio.nn.audio_features import speech_envelope

    _, tracking, _ = shot
    n = tracking.n_frames
    env = speech_envelope(audio, n, tracking.fps, band=(1000.0, 3000.0))
    values = np.zeros((n, len(CONTROL_NAMES)))
    values[:, 0] = env / env.max() * 0.5
    values[:, 1] = np.arange(n)  # any other control moves with the jaw
    late = _shift(values, -4)  # late[t] = values[t - 4]
    out, info = align_to_dialogue(late, audio, tracking)
    assert info["applied"] and info["moved_frames"] == -4, info
    assert lag_correlation(out[:, 0], env, 10)[0] == 0 and np.array_equal(out[20:-20, 1], values[20:-20, 1])
    same, info = align_to_dialogue(_shift(values, -1), audio, tracking)
    assert not info["applied"] and np.array_equal(same, _shift(values, -1))
    noise = values.copy()
    noise[:, 0] = np.random.default_rng(0).normal(0.2, 0.05, n)
    assert not align_to_dialogue(noise, audio, tracking)[1]["applied"]


def test_align_to_dialogue_needs_both_halves_of_the_line(shot, audio):
    """A lag seen in one half of the line only (the other half's mouth unrelated to the sound) is
    not moved: one stretch of speech is not enough to say the whole dub is off."""
    from dubstudio.driving.a2e_actor import _shift, lag_profile
    from dubstudio.driving.a2e_predict import _peak_near, align_to_dialogue
    from dubstudio.nn.audio_features import speech_envelope

    _, tracking, _ = shot
    n = tracking.n_frames
    env = speech_envelope(audio, n, tracking.fps, band=(1000.0, 3000.0))
    values = np.zeros((n, len(CONTROL_NAMES)))
    values[:, 0] = env / env.max() * 0.5
    late = _shift(values, -4)
    half = n // 2
    late[half:, 0] = np.random.default_rng(1).permutation(late[half:, 0])  # the second half: no relation to the sound
    out, info = align_to_dialogue(late, audio, tracking)
    assert not info["applied"] and not info["halves_agree"] and out is late, info
    # a mouth that barely moves has no timing to check, however well its drift correlates
    still = _shift(values, -4) * 0.02
    out, info = align_to_dialogue(still, audio, tracking)
    assert not info["applied"] and "barely moves" in info["reason"] and out is still
    # a local peak near the lag counts even where the half's highest r sits elsewhere
    prof = np.array([0.3, 0.1, 0.0, 0.2, 0.26, 0.1, 0.0])
    assert _peak_near(prof, 4, floor=0.15) and not _peak_near(prof, 4, floor=0.3) and not _peak_near(prof, 1, tol=0)
    assert np.isnan(lag_profile(np.ones(10), np.arange(10.0), 2)).all()


def test_a_cached_scratch_adaptation_drives_the_same_curves_as_the_fresh_one(shot, media, tmp_path):
    """Without a generic model the shot's own model is trained; the next run loads it from disk. Its
    curves must be bit for bit the fresh run's: a re-export keys its segments on them (a float32
    round trip of the scales once made every frame of the second export "changed")."""
    shutil.copytree(shot[0].root, tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / "cache" / "audio2expr", ignore_errors=True)
    project = Project.open(tmp_path / "p")
    fresh = drive_project_from_audio(project, media / "speech_de.wav", None, config=TINY_ADAPT)
    again = drive_project_from_audio(project, media / "speech_de.wav", None, config=TINY_ADAPT)
    assert fresh.adaptation["mode"] == "scratch"
    assert again.adaptation["metrics"]["seconds"] == fresh.adaptation["metrics"]["seconds"]  # loaded, not retrained
    assert np.array_equal(again.values, fresh.values)


def test_the_dub_uses_the_installed_generic_model_unless_told_otherwise(generic, shot, media, tmp_path, monkeypatch):
    """`dub --audio` / `run --audio` take the generic model `audio2expr train` installed (as the
    editor does) unless the shot's own model fits the actor clearly better, the shot's own model
    with ``shot``, or a checkpoint given by path."""
    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.driving.a2e_generic import default_generic_path
    from dubstudio.app.dub import DubRequest, apply_dub, dub_job

    def dub_from_audio(project, line, audio_model="auto"):
        drive = dub_job(DubRequest(project.root, audio=line, audio_model=audio_model))
        apply_dub(project, drive)
        return drive

    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path / "home"))
    shutil.copytree(shot[0].root, tmp_path / "p")
    project = Project.open(tmp_path / "p")
    line = media / "speech_de.wav"
    with pytest.raises(MediaError, match="audio model .*nope.pt not found"):
        dub_from_audio(project, line, audio_model=tmp_path / "nope.pt")
    assert not CurveStore(project).load(shot[1]).has_driven("jaw_open")  # refused before any work
    default_generic_path().parent.mkdir(parents=True)
    shutil.copy(generic[0], default_generic_path())
    given = dub_from_audio(project, line, audio_model=generic[0]).details["adaptation"]
    assert given["mode"] == "linear" and "choice" not in given  # a model named is used as named
    assert dub_from_audio(project, line, audio_model="shot").details["adaptation"]["mode"] == "scratch"
    # auto: the installed generic, or the shot's own where it fits the actor's held-out speech clearly better
    auto = dub_from_audio(project, line).details["adaptation"]
    choice = auto["choice"]
    shot_wins = choice["r_shot"] >= choice["r_generic"] + 0.05
    assert choice["model"] == ("shot" if shot_wins else "generic") and choice["held_frames"] == 80
    assert auto["mode"] == ("scratch" if shot_wins else "linear")
    if not shot_wins:
        assert auto["generic"]["fingerprint"] == given["generic"]["fingerprint"]
    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr("dubstudio.driving.a2e_actor.adapt_actor", no_training)
    monkeypatch.setattr("dubstudio.driving.a2e_predict.adapt_actor", no_training)  # the choice trains it too
    assert dub_from_audio(project, line).details["adaptation"]["choice"] == choice  # the choice is cached too


def test_close_in_pauses_shuts_the_mouth_where_the_line_is_silent():
    """A pause of half a second closes every control (lips together) and the mouth opens again
    a few frames before the sound comes back; a breath-length gap inside a phrase and the spoken
    frames keep the model's values; a line without pauses and pure silence change nothing."""
    from dubstudio.driving.a2e_predict import PAUSE_MIN_S, close_in_pauses
    from dubstudio.driving.a2e_data import SAMPLE_RATE

    fps, n = 25, 100
    rng = np.random.default_rng(0)
    t = np.arange(n * SAMPLE_RATE // fps) / SAMPLE_RATE
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    noise = (1e-4 * rng.standard_normal(len(t))).astype(np.float32)
    f = SAMPLE_RATE // fps
    line = speech.copy()
    line[40 * f : 55 * f] = noise[40 * f : 55 * f]  # a 0.6 s pause: frames 40-54
    line[20 * f : 22 * f] = noise[20 * f : 22 * f]  # a 2-frame gap: shorter than a pause
    assert 2 / fps < PAUSE_MIN_S < 15 / fps
    values = np.full((n, len(CONTROL_NAMES)), 0.3)
    out, info = close_in_pauses(values, line, fps)
    assert info["frames"] >= 6 and info["runs"] == 1, info
    assert np.all(out[44:50] == 0.0)  # the pause's middle: closed
    assert np.all(out[50:52] > 0.0) and np.all(out[50:52] < 0.3)  # opening ...
    assert np.array_equal(out[52:], values[52:])  # ... open 3 frames before the sound is back
    assert np.array_equal(out[:41], values[:41])  # closing just after the sound stops
    assert np.array_equal(out[18:24], values[18:24])  # the short gap is left alone
    same, info = close_in_pauses(values, speech, fps)
    assert info["frames"] == 0 and np.array_equal(same, values)
    quiet, info = close_in_pauses(values, np.zeros_like(speech), fps)
    assert info["frames"] == 0 and quiet is values


def test_a_shots_own_offset_counts_only_when_both_halves_see_it():
    """The generic's jaw against the tracked jaw: a steady 6-frame delay is found; a best lag that
    only the whole shot shows (each half its own, as on talk_b) moves nothing."""
    from dubstudio.driving.a2e_actor import _av_offset

    rng = np.random.default_rng(3)
    n, fps = 400, Fraction(25)
    env = np.convolve(rng.standard_normal(n + 40), np.ones(5) / 5, mode="same")
    pred = env[20:20 + n]  # the jaw the sound says
    valid = np.ones(n, bool)
    steady = env[26:26 + n] + 0.2 * rng.standard_normal(n)  # the picture's jaw: the sound comes 6 frames late
    out = _av_offset(pred, steady, valid, fps, AdaptConfig())
    assert out["frames"] == 6 and out["lag_halves"] == [6, 6], out
    # first half 9 frames, second half 4: the whole peaks somewhere between, neither half agrees
    split = np.concatenate([env[29:29 + n // 2], env[24 + n // 2:24 + n]]) + 0.2 * rng.standard_normal(n)
    out = _av_offset(pred, split, valid, fps, AdaptConfig())
    assert out["frames"] == 0 and "halves disagree" in out["reason"], out
