"""A shot's own audio/picture offset (driving.av_offset), and the per-shot audio model trained on
realigned pairs. Real sound (talk_b's); the jaw is made from that sound's envelope with a known
shift, so the right answer is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dubstudio.driving.a2e_actor import _shift
from dubstudio.driving.a2e_data import ClipSource, as_audio, prepare_clip
from dubstudio.driving.audio2expr import Audio2ExprConfig
from dubstudio.driving.audio2expr_train import AdaptConfig, TrainConfig, adapt_actor, lag_correlation, predict_curves
from dubstudio.nn.audio_features import speech_envelope
from dubstudio.driving.av_offset import shot_av_offset
from dubstudio.project.store import Project
from dubstudio.core.controls import JAW
from dubstudio.tracking.track import track

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def shot(media, tmp_path_factory):
    torch.set_num_threads(1)
    clip = media / "talk_b.mp4"
    project = Project.create(tmp_path_factory.getbasetemp() / "shared_talk_b", clip)
    tracking, _ = track(clip, project)
    audio = as_audio(clip)
    env = speech_envelope(audio, tracking.n_frames, tracking.fps, band=(1000.0, 3000.0))
    return tracking, audio, env / env.max() * 0.5


def _with_jaw(tracking, jaw):
    c = tracking.controls.copy()
    c[:, JAW] = jaw
    return dataclasses.replace(tracking, controls=c, has_face=np.ones(tracking.n_frames, bool))


def _offset(shot, audio_late: int) -> dict:
    """The estimate for a mouth whose sound comes ``audio_late`` frames after it."""
    tracking, audio, env = shot
    src = ClipSource(_with_jaw(tracking, _shift(env, audio_late)), audio)  # jaw[t] = env[t + k]
    return shot_av_offset(prepare_clip(src, (), centre=False)[0][0])


@pytest.mark.parametrize("late", [7, -5])
def test_a_clear_offset_is_measured(shot, late):
    """The mel windows are centred on each frame's start and the envelope's frames cover the
    frame, so a jaw made from the envelope peaks a frame later than made: just what the natural
    lead (NATURAL_LEAD_S, one frame at 25 fps) takes off."""
    out = _offset(shot, late)
    assert out["frames"] == late and abs(out["seconds"] - late / 25) < 1e-9, out
    assert out["r_best"] > 0.5 and all(abs(h - late - 1) <= 1 for h in out["lag_halves"]), out


def test_the_natural_lead_and_an_unrelated_mouth_are_left_alone(shot):
    for late in (0, 1, 2):  # small lags are left to the dialogue check (a2e_predict.align_to_dialogue)
        assert _offset(shot, late)["frames"] == 0
    tracking, audio, env = shot
    noise = np.random.default_rng(0).normal(0.2, 0.05, tracking.n_frames)
    out = shot_av_offset(prepare_clip(ClipSource(_with_jaw(tracking, noise), audio), (), centre=False)[0][0])
    assert out["frames"] == 0 and out["r_best"] < 0.3


def test_a_short_shot_is_not_measured(shot):
    tracking, audio, env = shot
    src = ClipSource(_with_jaw(tracking, _shift(env, 7)), audio, stop=100)  # 4 s
    out = shot_av_offset(prepare_clip(src, (), centre=False)[0][0])
    assert out["frames"] == 0 and "too little" in out["reason"]


TINY = AdaptConfig(scratch_model=Audio2ExprConfig(enc_channels=16, width=32, dilations=(1, 2, 4), dropout=0.0),
                   scratch_train=TrainConfig(steps=200, batch=4, seq_frames=48, lr=5e-3, log_every=50, fps_variants=(), threads=1))


def test_the_per_shot_model_learns_the_mouth_in_sync_from_an_out_of_sync_shot(shot):
    """Trained on a shot whose sound runs 7 frames late, the per-shot model drives the same
    sound in sync. Trained without the realignment, the sound each mouth shape goes with lies at
    the edge of what the model hears, and it drives a weak, smeared mouth (as talk_c's did: its
    sound trails its picture by 6 frames)."""
    tracking, audio, env = shot
    src = ClipSource(_with_jaw(tracking, _shift(env, 7)), audio)
    lags = {}
    for sync in (True, False):
        ad = adapt_actor(src, None, dataclasses.replace(TINY, scratch_sync=sync))
        jaw = predict_curves(audio, tracking.n_frames, tracking.fps, None, ad)[:, JAW]
        lags[sync] = lag_correlation(jaw, env, 10)  # lag > 0: the driven mouth trails the sound
        assert ad.metrics["av_offset"]["frames"] == (7 if sync else 0)
    assert abs(lags[True][0]) <= 1 and lags[True][1] > 0.8, lags
    assert lags[False][1] < lags[True][1] - 0.3, lags
