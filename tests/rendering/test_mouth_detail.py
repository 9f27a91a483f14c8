"""Mouth detail from the actor's own frames (issue 21): the band split, the warp, the bank, and a
soft renderer made sharp again on real footage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dubstudio.eval.metrics import masked_psnr
from dubstudio.io.video import VideoReader
from dubstudio.rendering.crop_io import extract_crop
from dubstudio.rendering.mouth_detail import (DetailedRenderer, DetailSettings, ReferenceBank, detail_resolution, fuse,
                                              morph, warp_to)
from dubstudio.rendering.rasterizer import crop_vertices, rasterize_frames
from dubstudio.tracking.crops import MASK_MOUTH


def _grad(img: np.ndarray, mask: np.ndarray) -> float:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))[mask].mean())


# -- the band split --------------------------------------------------------------------------------


def test_fuse_takes_the_low_band_from_the_render_and_the_detail_from_the_reference():
    rng = np.random.default_rng(0)
    truth = np.clip(rng.normal(128, 40, (64, 64, 3)), 0, 255).astype(np.float32)
    truth = cv2.GaussianBlur(truth, (0, 0), 0.7)
    soft = cv2.GaussianBlur(truth, (0, 0), 3.0)  # a renderer that lost the detail
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1.0
    out = fuse(soft, [truth], [1.0], mask, sigma=3.0)
    inside = mask > 0
    err_soft = np.abs(soft[inside] - truth[inside]).mean()
    err_out = np.abs(out[inside].astype(np.float32) - truth[inside]).mean()
    assert err_out < 0.5 * err_soft
    assert np.array_equal(out[~inside], np.clip(soft[~inside] + 0.5, 0, 255).astype(np.uint8))  # untouched outside
    # a reference of another colour lends its detail, not its colour
    tinted = truth + 60.0
    out2 = fuse(soft, [tinted], [1.0], mask, sigma=3.0).astype(np.float32)
    assert abs(out2[inside].mean() - soft[inside].mean()) < 2.0
    # low_mix 1 takes the colour too
    out3 = fuse(soft, [tinted], [1.0], mask, sigma=3.0, low_mix=1.0).astype(np.float32)
    assert out3[inside].mean() > soft[inside].mean() + 40


def _bars(x0: int) -> np.ndarray:
    """Four 4 px 'teeth' starting at column x0, on a dark interior."""
    a = np.full((64, 96, 3), 40, np.float32)
    for k in range(4):
        a[20:44, x0 + 10 * k : x0 + 10 * k + 4] = 220
    return cv2.GaussianBlur(a, (0, 0), 0.8)


def test_morph_sums_two_references_whose_teeth_sit_apart_into_one_set_of_teeth():
    a, b = _bars(20), _bars(26)  # the same teeth, 6 px apart
    first = lambda img: int(np.argmax(img[32, 15:35, 0])) + 15  # noqa: E731
    plain = 0.5 * a + 0.5 * b
    half = morph([a, b], [0.5, 0.5])
    mixed = 0.5 * half[0] + 0.5 * half[1]
    assert plain[32].max() < 140  # unaligned, the teeth cancel into two faint rows
    assert mixed[32].max() > 200  # aligned, they keep their contrast
    assert first(half[0]) == first(half[1]) == first(a) + 3  # both moved halfway
    # the layout follows the weights, so a change of nearest reference slides instead of jumping
    assert first(morph([a, b], [1.0, 0.0])[0]) == first(a)
    assert first(morph([a, b], [0.2, 0.8])[0]) in (first(a) + 4, first(a) + 5)
    # off leaves the references as they are
    assert all(np.array_equal(x, y) for x, y in zip(morph([a, b], [0.5, 0.5], amount=0.0), [a, b]))


# -- on a real shot --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shot(talk_b_shot):
    return talk_b_shot


class SoftCrops:
    """A renderer that gets the mouth right but soft: the real 128 px crop, blurred (sigma 1.5 px)."""

    resolution = 128

    def __init__(self, tracking, clip: Path) -> None:
        self.tracking, self.clip = tracking, clip

    def render_crops(self, indices, controls=None):
        with VideoReader(self.clip) as r:
            return np.stack([cv2.GaussianBlur(extract_crop(r.frame(int(i)), self.tracking.crop[int(i)], 128), (0, 0), 1.5)
                             for i in indices])


@pytest.mark.media
def test_warp_onto_its_own_mesh_is_the_crop(shot):
    project, tracking, clip = shot
    r = 256
    with VideoReader(clip) as rd:
        crop = extract_crop(rd.frame(120), tracking.crop[120], r)
    fr = rasterize_frames(tracking, [120], r)
    out, cover = warp_to(fr.fragments, 0, crop_vertices(tracking, 120, r), crop)
    assert cover.mean() > 0.2
    assert np.abs(out[cover] - crop[cover].astype(np.float32)).mean() < 1.0
    # straight from the frame (one resampling, as the references and the warped copy do): the same
    from dubstudio.eval.copy_baseline import CopyBaseline, warp_region

    with VideoReader(clip) as rd:
        region, affine = CopyBaseline(tracking, rd, [120], r, warp=True).region(120)
    direct = warp_region(tracking, 120, 120, region, affine, r)
    assert np.abs(direct[cover].astype(np.float32) - crop[cover].astype(np.float32)).mean() < 1.0


@pytest.mark.media
def test_detail_resolution_follows_the_footage(shot):
    _, tracking, _ = shot
    box = float(np.median(np.asarray(tracking.crop)[:, 2]))
    r = detail_resolution(tracking, 128, DetailSettings())
    assert abs(r - box) <= 8 and r % 8 == 0
    assert detail_resolution(tracking, 128, DetailSettings(max_resolution=160)) == 160
    assert detail_resolution(tracking, 512, DetailSettings()) == 512  # never below the render's own


@pytest.mark.media
def test_bank_spreads_over_the_expressions(shot):
    _, tracking, clip = shot
    with VideoReader(clip) as rd:
        bank = ReferenceBank(tracking, rd, range(0, 100), 64, DetailSettings(bank_size=10))
    assert len(bank.frames) == len(bank.sources) == 10 and bank.crop(0).shape == (64, 64, 3)
    jaw = np.asarray(tracking.controls)[:100, 0]
    assert int(np.argmax(jaw)) in bank.frames.tolist()  # the widest opening is kept
    assert np.std(bank.crop(0)) > 10  # decoded, not blank
    with VideoReader(clip) as rd:  # every frame while they fit, else as many as the memory allows
        assert len(ReferenceBank(tracking, rd, range(0, 100), 64, DetailSettings()).frames) == 100
        capped = ReferenceBank(tracking, rd, range(0, 100), 64, DetailSettings(bank_mb=7 * 64 * 64 * 3 / 1e6))
    assert len(capped.frames) == 7 and int(np.argmax(jaw)) in capped.frames.tolist()
    # kept as the frame region under the box (resampled once, later), unless the crop is much smaller
    assert bank.affines[0] is None and bank.sources[0].shape == (64, 64, 3)  # this box is ~6x 64 px: area-shrunk
    with VideoReader(clip) as rd:
        near = ReferenceBank(tracking, rd, range(0, 100), 320, DetailSettings(bank_size=3))
    assert near.affines[0] is not None and abs(near.sources[0].shape[0] - tracking.crop[int(near.frames[0])][2]) < 3
    with VideoReader(clip) as rd:
        real = extract_crop(rd.frame(int(near.frames[0])), tracking.crop[int(near.frames[0])], 320)
    assert np.abs(near.crop(0).astype(int) - real.astype(int)).mean() < 1.0  # the same crop, looked at
    idx, w, d = bank.nearest(np.asarray(tracking.controls)[[150, 160]], k=3)
    assert idx.shape == (2, 3) and np.allclose(w.sum(1), 1.0) and (w[:, 0] >= w[:, 1]).all()
    # a reference's own expression is at distance 0 (full trust); one far outside the shot's gets none
    far = bank.controls[:1] + 10 * bank.scale * bank.settings.match_none
    _, _, d2 = bank.nearest(np.concatenate([bank.controls[:1], far]))
    assert d2[0] == 0 and np.array_equal(bank.trust(d2), [1.0, 0.0])


@pytest.mark.media
def test_a_soft_renderer_gets_its_mouth_detail_back(shot):
    """Held-out frames (150:170) of a renderer as soft as a 1.5 px blur, with detail from frames 0:100."""
    _, tracking, clip = shot
    base = SoftCrops(tracking, clip)
    with VideoReader(clip) as rd:
        det = DetailedRenderer.over(base, rd, range(0, 100))
    r = det.resolution
    assert r > base.resolution
    idx = list(range(150, 170))
    out, gen = det.render_crops(idx, return_masks=True)
    assert out.shape == (len(idx), r, r, 3) and gen.shape == (len(idx), r, r) and gen.all()
    mouth = rasterize_frames(tracking, idx, r).regions.numpy() == MASK_MOUTH
    with VideoReader(clip) as rd:
        real = [extract_crop(rd.frame(i), tracking.crop[i], r) for i in idx]
    soft = [cv2.resize(c, (r, r), interpolation=cv2.INTER_CUBIC) for c in base.render_crops(idx)]
    ratio_soft = np.median([_grad(s, m) / _grad(a, m) for s, a, m in zip(soft, real, mouth)])
    ratio_det = np.median([_grad(o, m) / _grad(a, m) for o, a, m in zip(out, real, mouth)])
    assert ratio_soft < 0.5  # the soft renderer really is soft (at the footage's density)
    assert ratio_soft + 0.3 < ratio_det < 1.15, (ratio_soft, ratio_det)  # most detail back, none invented
    psnr_soft = np.median([masked_psnr(s, a, m) for s, a, m in zip(soft, real, mouth)])
    psnr_det = np.median([masked_psnr(o, a, m) for o, a, m in zip(out, real, mouth)])
    assert psnr_det > psnr_soft - 0.5, (psnr_soft, psnr_det)
    # away from the mouth the render is only upsampled
    away = ~(cv2.dilate(mouth.any(0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    assert np.abs(out[0][away].astype(int) - soft[0][away].astype(int)).max() <= 1
    # the fingerprint names the references (a resumed export must not mix two)
    with VideoReader(clip) as rd:
        other = DetailedRenderer.over(base, rd, range(0, 90))
    assert other.fingerprint() != det.fingerprint()


@pytest.mark.media
def test_the_detail_reports_the_share_it_took_from_the_footage(shot):
    """``low_mix`` of the mouth's low band comes from the references: that share is reported, so
    the composite's colour matching (made for the render) leaves it alone; none elsewhere."""
    from dubstudio.rendering.render_job import render_with_masks

    _, tracking, clip = shot
    base = SoftCrops(tracking, clip)
    idx = [150, 160]
    with VideoReader(clip) as rd:
        det = DetailedRenderer.over(base, rd, range(0, 100), DetailSettings(low_mix=0.4))
    r = det.resolution
    crops, gen, share = render_with_masks(det, idx, None, footage=True)
    assert crops.shape == (2, r, r, 3) and gen.shape == share.shape == (2, r, r)
    mouth = rasterize_frames(tracking, idx, r).regions.numpy() == MASK_MOUTH
    trust = det.bank.trust(det.bank.nearest(tracking.controls[idx])[2])
    assert trust.max() > 0
    for b in range(2):  # in full inside the mouth, as far as the nearest reference is trusted
        assert np.median(share[b][mouth[b]]) == pytest.approx(0.4 * trust[b], abs=0.01)
    away = ~(cv2.dilate(mouth.any(0).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0)
    assert share[:, away].max() == 0.0
    # the default takes only the detail (high band) from the references: nothing to report
    plain = DetailedRenderer(base, det.bank.with_settings(DetailSettings()))
    assert render_with_masks(plain, idx, None, footage=True)[2].max() == 0.0
    # a renderer that cannot say reports None
    assert render_with_masks(base, idx, None, footage=True)[2] is None
