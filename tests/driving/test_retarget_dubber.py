"""Dubber retargeting: per-control calibration and time mapping across frame rates."""

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from dubstudio.driving.retarget import ControlRange, calibrate, resample, retarget
from dubstudio.core.controls import CONTROL_NAMES, JAW

C = len(CONTROL_NAMES)


def _tracking(controls, fps):
    controls = np.asarray(controls, float)
    return SimpleNamespace(controls=controls, has_face=np.ones(len(controls), bool), fps=Fraction(fps), n_frames=len(controls))


def test_jaw_map_keeps_closed_and_scales_the_opening():
    rng = np.random.default_rng(0)
    dub = np.abs(rng.normal(0, 0.2, (500, C)))
    act = dub * 0.5 + 0.01 * rng.normal(size=(500, C))
    m = calibrate(ControlRange.of(dub, np.ones(500, bool)), ControlRange.of(act, np.ones(500, bool)))
    assert m.offset[JAW] == 0.0
    assert m.scale[JAW] == pytest.approx(0.5, rel=0.1)
    mapped = m(dub)
    for k in range(C):
        assert np.percentile(mapped[:, k], 95) - np.percentile(mapped[:, k], 5) == pytest.approx(
            np.percentile(act[:, k], 95) - np.percentile(act[:, k], 5), rel=0.15
        )


def test_a_control_that_never_moves_does_not_explode():
    dub = np.zeros((100, C))
    dub[:, JAW] = np.linspace(0, 0.5, 100)
    act = np.random.default_rng(1).normal(0, 0.3, (100, C))
    m = calibrate(ControlRange.of(dub, np.ones(100, bool)), ControlRange.of(act, np.ones(100, bool)))
    assert np.all(m.scale <= 3.0)


def test_resample_30fps_dubber_onto_25fps_shot_by_time():
    src = np.arange(90, dtype=float)[:, None]  # 3 s at 30 fps: value = source frame index
    out, ok = resample(src, np.ones(90, bool), Fraction(30), 100, Fraction(25))
    # Shot frame 50 is at 2.0 s = dubber frame 60.
    assert out[50, 0] == pytest.approx(60.0)
    assert ok[:74].all() and not ok[75:].any()  # dubber ends at 89/30 s = shot frame 74.2


def test_resample_with_offset_and_ntsc_rate():
    src = np.arange(100, dtype=float)[:, None]
    out, ok = resample(src, np.ones(100, bool), Fraction(30000, 1001), 60, Fraction(24000, 1001), offset_s=1.0)
    assert not ok[:24].any()  # before the dubber starts
    i = 40  # 40 / 23.976 - 1 s = 0.6683 s -> 20.04 dubber frames
    assert out[i, 0] == pytest.approx((i * 1001 / 24000 - 1.0) * 30000 / 1001, abs=1e-6)


def test_retarget_end_to_end_on_synthetic_trackings():
    t = np.arange(150) / 30
    dub = np.zeros((150, C))
    dub[:, JAW] = 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)  # 2 Hz open/close
    act = np.zeros((125, C))
    act[:, JAW] = np.abs(np.random.default_rng(2).normal(0, 0.1, 125))
    curves, ok, m = retarget(_tracking(dub, 30), _tracking(act, 25))
    assert curves.shape == (125, C) and ok.sum() > 120
    # Open where the dubber is open, at the actor's own scale.
    opened = curves[ok, JAW] > 0.5 * curves[ok, JAW].max()
    assert 0.3 < opened.mean() < 0.7
    assert curves[ok, JAW].max() == pytest.approx(np.percentile(act[:, JAW], 95), rel=0.3)
