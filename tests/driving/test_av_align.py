"""Training clips are moved onto the set's consensus audio/picture lag only where clearly off it."""

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from dubstudio.driving.a2e_data import ClipSource
from dubstudio.driving.audio_features import SAMPLE_RATE
from dubstudio.driving.av_align import align_clips, clip_lag
from dubstudio.tracking.face_model import CONTROL_NAMES, JAW

FPS = 25


def _clip(seed: int, audio_late: int, n: int = 400, name: str = "") -> ClipSource:
    """Syllable-like 2 kHz bursts; the jaw follows their envelope one frame early (the mouth's
    natural lead), and the audio is delayed by ``audio_late`` more frames."""
    rng = np.random.default_rng(seed)
    env = np.zeros(n)
    i = 3
    while i < n - 8:
        d = int(rng.integers(3, 7))
        env[i : i + d] = np.hanning(d + 2)[1:-1] * rng.uniform(0.5, 1.0)
        i += d + int(rng.integers(1, 6))
    spf = SAMPLE_RATE // FPS
    t = np.arange(n * spf) / SAMPLE_RATE
    amp = np.repeat(np.roll(env, 1 + audio_late), spf)  # sound follows the jaw by 1 (+ late) frames
    audio = (amp * np.sin(2 * np.pi * 2000 * t) + 0.002 * rng.normal(size=len(t))).astype(np.float32)
    controls = np.zeros((n, len(CONTROL_NAMES)))
    controls[:, JAW] = env + 0.02 * rng.normal(size=n)
    tr = SimpleNamespace(controls=controls, has_face=np.ones(n, bool), fps=Fraction(FPS), n_frames=n)
    return ClipSource(tr, audio, name or f"clip{seed}")


def test_clip_lag_sees_the_mouth_lead_and_a_late_track():
    assert clip_lag(_clip(0, 0)).lag == -1
    lg = clip_lag(_clip(1, 5))
    assert lg.lag == -6 and lg.stable and lg.r > 0.5


def test_the_odd_clip_is_moved_onto_the_consensus():
    clips = [_clip(0, 0), _clip(1, 0), _clip(2, 0), _clip(3, 5, name="late")]
    out, report = align_clips(clips)
    assert report["consensus_s"] == pytest.approx(-1 / FPS)
    assert [o.audio_offset_s for o in out[:3]] == [0.0, 0.0, 0.0]
    assert out[3].audio_offset_s == pytest.approx(5 / FPS)
    assert report["clips"][3]["audio_late_frames"] == 5
    # after the move the clip sits on the consensus like the others
    from dataclasses import replace

    moved = replace(out[3], audio=out[3].audio[int(5 / FPS * SAMPLE_RATE):], audio_offset_s=0.0)
    assert clip_lag(moved).lag == -1


def test_small_offsets_and_too_few_stable_clips_move_nothing():
    out, report = align_clips([_clip(0, 0), _clip(1, 1), _clip(2, 0)])
    assert all(o.audio_offset_s == 0 for o in out)  # one frame is within the natural spread
    out, report = align_clips([_clip(0, 0), _clip(3, 5)])
    assert report["consensus_s"] is None and "no clip moved" in report["note"]
    assert all(o.audio_offset_s == 0 for o in out)


def test_a_clip_given_an_offset_is_kept():
    given = ClipSource(_clip(3, 5).tracking, _clip(3, 5).audio, "given", audio_offset_s=0.2)
    out, _ = align_clips([_clip(0, 0), _clip(1, 0), _clip(2, 0), given])
    assert out[3].audio_offset_s == 0.2
