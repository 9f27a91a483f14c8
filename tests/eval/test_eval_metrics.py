"""Metrics against hand-computed values, the copy baseline, self-reenactment and the eval/render CLI."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import pytest

from dubstudio.core.errors import DubStudioError
from dubstudio.eval.copy_baseline import CopyBaseline, mouth_masks, nearest_frames, warp_crop
from dubstudio.eval.metrics import LpipsScorer, masked_psnr, psnr, ssim, summarise
from dubstudio.eval.selfreenact import EvalSettings, evaluate
from dubstudio.io.video import VideoReader
from dubstudio.rendering.crop_io import extract_crop

R = 256
TRAIN, TEST = range(0, 100), range(172, 180)  # test frames where the copy baseline is not at its worst


# -- metrics, by hand ---------------------------------------------------------------------------


def test_psnr_by_hand():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))  # 28.1308 dB
    assert psnr(a, a) == math.inf
    c = a.copy()
    c[0, 0, 0] = 255  # one channel of one pixel: mse = 255^2 / 192
    assert psnr(a, c) == pytest.approx(10 * math.log10(192))


def test_masked_psnr_uses_only_the_mask():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 30  # error inside the mask
    b[3, 3] = 200  # error outside the mask: ignored
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[0, 1] = True
    assert masked_psnr(a, b, mask) == pytest.approx(10 * math.log10(255**2 / 450))  # (900 + 0) / 2
    soft = mask.astype(np.float32) * np.array([[1.0, 0.5, 0, 0]] * 4, np.float32)
    assert masked_psnr(a, b, soft) == pytest.approx(10 * math.log10(255**2 / (900 / 1.5)))
    assert math.isnan(masked_psnr(a, b, np.zeros((4, 4), bool)))
    with pytest.raises(ValueError):
        masked_psnr(a, b, np.ones((3, 3), bool))


def test_ssim_by_hand():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2  # constant images: only the luminance term remains
    assert ssim(a, b) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rel=1e-6)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, 255 - x) < 0


def test_summarise_skips_missing_values():
    s = summarise([1.0, None, 3.0, float("nan"), 5.0])
    assert s == {"mean": 3.0, "median": 3.0, "n": 3}
    assert summarise([None]) == {"mean": None, "median": None, "n": 0}
    assert summarise([1.0, math.inf])["mean"] == math.inf


def test_lpips_is_null_with_a_reason_when_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "dubstudio.eval.lpips", None)  # import fails
    s = LpipsScorer()
    assert not s.available and "lpips" in s.reason
    x = np.zeros((2, 64, 64, 3), np.uint8)
    assert s.score_batch(x, x, np.ones((2, 64, 64), bool)) == [None, None]


def test_masked_lpips_when_available():
    s = LpipsScorer()
    if not s.available:
        pytest.skip(s.reason)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 96, 96, 3), dtype=np.uint8)
    b = a.copy()
    b[:, 60:, 60:] = 0  # differs only outside the mask
    mask = np.zeros((1, 96, 96), bool)
    mask[:, 10:40, 10:40] = True
    same = s.score_batch(a, b, mask)[0]
    assert same == pytest.approx(0.0, abs=1e-6)  # isolated: pixels outside the mask do not count
    c = a.copy()
    c[:, 15:35, 15:35] = 128
    assert s.score_batch(a, c, mask)[0] > 0.05


# -- on the real clip ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shot(talk_b_shot):
    return talk_b_shot


class Perfect:
    resolution = R

    def __init__(self, tracking, clip):
        self.tracking, self.clip = tracking, clip

    def render_crops(self, indices, controls=None):
        with VideoReader(self.clip) as r:
            return np.stack([extract_crop(r.frame(int(i)), self.tracking.crop[i], R) for i in indices])


class Grey:
    resolution = R

    def render_crops(self, indices, controls=None):
        return np.full((len(indices), R, R, 3), 128, np.uint8)


@pytest.mark.media
def test_nearest_frames_and_identity_warp(shot):
    _, tracking, clip = shot
    src, dist = nearest_frames(tracking, TRAIN, [5, 50])
    assert src.tolist() == [5, 50] and np.allclose(dist, 0)
    src, _ = nearest_frames(tracking, TRAIN, [170])
    assert src[0] in TRAIN
    with VideoReader(clip) as r:
        crop = extract_crop(r.frame(170), tracking.crop[170], R)
    same = warp_crop(tracking, 170, 170, crop)
    assert psnr(same, crop) > 45  # warping a frame onto its own mesh changes (almost) nothing
    m = mouth_masks(tracking, [170], R)[0]
    assert 200 < m.sum() < 0.1 * R * R


@pytest.mark.media
def test_copy_baseline_pastes_only_the_mouth(shot):
    _, tracking, clip = shot
    with VideoReader(clip) as r:
        cb = CopyBaseline(tracking, r, TRAIN, R)
        out = cb.render_crops([170])[0]
        real = cb.crop(170)
    m = mouth_masks(tracking, [170], R)[0]
    assert np.array_equal(out[~m], real[~m])
    assert not np.array_equal(out[m], real[m])


@pytest.mark.media
def test_selfreenact_perfect_and_grey_renderers(shot):
    _, tracking, clip = shot
    perfect = evaluate(tracking, clip, TRAIN, TEST, Perfect(tracking, clip), EvalSettings())
    m = perfect["methods"]
    assert perfect["n_test_with_face"] == len(TEST)
    assert m["renderer"]["face_psnr"]["median"] == "inf" and m["renderer"]["face_ssim"]["median"] == pytest.approx(1.0)
    assert m["renderer_composited"]["mouth_psnr"]["median"] == "inf"
    assert perfect["renderer_beats_copy"]["mouth_psnr"] is True
    json.dumps(perfect, allow_nan=False)  # strict JSON: inf is written as "inf"

    grey = evaluate(tracking, clip, TRAIN, TEST, Grey(), EvalSettings())
    g = grey["methods"]
    assert g["renderer"]["mouth_psnr"]["median"] < 13
    assert g["copy_warp"]["mouth_psnr"]["median"] > g["renderer"]["mouth_psnr"]["median"] + 2
    assert grey["renderer_beats_copy"]["mouth_psnr"] is False
    if grey["lpips"]["available"]:
        assert g["copy"]["mouth_lpips"]["median"] < g["renderer"]["mouth_lpips"]["median"]
        assert g["copy_warp"]["mouth_lpips"]["median"] < g["renderer"]["mouth_lpips"]["median"]
        assert grey["renderer_beats_copy"]["mouth_lpips"] is False
    else:
        assert g["renderer"]["mouth_lpips"]["median"] is None and grey["lpips"]["reason"]
    # Copy-baseline numbers do not depend on the renderer.
    assert g["copy_warp"] == m["copy_warp"]


@pytest.mark.media
def test_selfreenact_refuses_overlapping_frames(shot):
    _, tracking, clip = shot
    with pytest.raises(DubStudioError, match="overlap"):
        evaluate(tracking, clip, range(0, 100), range(90, 110), None, EvalSettings(lpips=False))


# -- CLI ------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    from dubstudio.cli import render as cli_render

    parser = argparse.ArgumentParser(prog="dubstudio")
    sub = parser.add_subparsers(dest="command")
    cli_render.register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DubStudioError as e:
        print(json.dumps({"error": str(e)}))
        return 2


@pytest.mark.media
def test_cli_eval_baseline_and_render_copy(shot, tmp_path, capsys):
    project, tracking, clip = shot
    rc = run_cli(["eval", "--project", str(project.root), "--train-frames", "0:100", "--test-frames", "150:154", "--baseline-only", "--no-lpips", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and set(out["methods"]) == {"copy", "copy_warp"}
    assert out["lpips"]["available"] is False
    assert out["methods"]["copy_warp"]["mouth_psnr"]["n"] == 4

    rc = run_cli(["render", "--project", str(project.root), "--frames", "150:153", "-o", str(tmp_path / "seq"), "--renderer", "copy", "--train-frames", "0:100", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and out["frames"] == 3
    assert len(list((tmp_path / "seq").glob("frame_*.png"))) == 3
