"""Compositing generated crops into full frames, the background post-process, and the render job."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from dubstudio.core.errors import DubStudioError
from dubstudio.eval.metrics import masked_psnr, psnr
from dubstudio.io.video import VideoReader
from dubstudio.rendering.background import BackgroundKeeper, BackgroundSettings, keep_background
from dubstudio.rendering.composite import CompositeSettings, Compositor, blend_crop
from dubstudio.rendering.crop_io import extract_crop
from dubstudio.rendering.render_job import CropRenderer, RenderSettings, output_kind, render_range
from dubstudio.core.controls import CONTROL_NAMES, JAW

pytestmark = pytest.mark.media

R = 256


@pytest.fixture(scope="module")
def shot(talk_b_shot):
    return talk_b_shot


class RealCrops:
    """The perfect renderer: the real crop of every frame (optionally a different frame's)."""

    def __init__(self, tracking, clip: Path, resolution: int = R, offset: int = 0, gain=None) -> None:
        self.tracking, self.clip, self.resolution = tracking, clip, resolution
        self.offset, self.gain = offset, gain
        self.calls: list[list[int]] = []

    def render_crops(self, indices, controls=None):
        self.calls.append([int(i) for i in indices])
        out = []
        with VideoReader(self.clip) as r:
            for i in indices:
                j = int(i) - self.offset
                c = extract_crop(r.frame(j), self.tracking.crop[j], self.resolution)
                if self.gain is not None:
                    c = np.clip(c * np.asarray(self.gain), 0, 255).astype(np.uint8)
                out.append(c)
        return np.stack(out)


def box_slices(box, h, w):
    cx, cy, side = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(cx - side / 2))), max(0, int(np.floor(cy - side / 2)))
    x1, y1 = min(w, int(np.ceil(cx + side / 2)) + 1), min(h, int(np.ceil(cy + side / 2)) + 1)
    return slice(y0, y1), slice(x0, x1)


def without_face(tracking, frames):
    has = tracking.has_face.copy()
    has[list(frames)] = False
    return dataclasses.replace(tracking, has_face=has)


# -- composite ---------------------------------------------------------------------------------


def test_perfect_renderer_reproduces_the_frame(shot):
    project, tracking, clip = shot
    assert isinstance(RealCrops(tracking, clip), CropRenderer)
    comp = Compositor(tracking, R)
    with VideoReader(clip) as r:
        for i in (150, 185):
            frame = r.frame(i)
            crop = RealCrops(tracking, clip).render_crops([i])[0]
            out = comp.composite(frame, i, crop)
            rows, cols = box_slices(tracking.crop[i], *frame.shape[:2])
            assert psnr(out[rows, cols], frame[rows, cols]) > 40
            changed = np.any(out != frame, axis=2)
            assert masked_psnr(out, frame, changed) > 30  # resampling 373 px -> 256 -> 373 px
            outside = np.ones(frame.shape[:2], bool)
            outside[rows, cols] = False
            assert np.array_equal(out[outside], frame[outside])  # bit-identical outside the box
            # Only the lower face changes: nothing above the nose tip's row band at the eyes.
            m = comp.masks([i])[0]
            assert m.alpha.max() == 1.0 and m.alpha[: R // 3].max() == 0.0
            assert m.mouth.sum() > 200


def test_no_face_frames_pass_through(shot):
    project, tracking, clip = shot
    t = without_face(tracking, [150])
    comp = Compositor(t, R)
    with VideoReader(clip) as r:
        frame = r.frame(150)
    grey = np.full((R, R, 3), 128, np.uint8)
    out = comp.composite(frame, 150, grey)
    assert out is frame and np.array_equal(out, frame)
    m = comp.masks([150])[0]
    assert not m.has_face and m.alpha.max() == 0
    assert np.array_equal(blend_crop(grey, grey * 0, m, comp.settings), grey)


def test_edited_controls_extend_the_alpha(shot):
    _, tracking, _ = shot
    comp = Compositor(tracking, R)
    i = 170
    opened = tracking.controls[i].copy()
    opened[JAW] = 1.5
    tracked = comp.masks([i])[0]
    edited = comp.masks([i], opened[None])[0]
    assert (edited.alpha >= tracked.alpha - 1e-6).all()  # the union: never less than the tracked mask
    assert (edited.alpha > 0).sum() > (tracked.alpha > 0).sum()
    assert np.array_equal(edited.mouth, tracked.mouth)  # metrics use the tracked mouth
    assert len(CONTROL_NAMES) == tracking.controls.shape[1]


def test_colour_matching_removes_a_colour_cast(shot):
    _, tracking, clip = shot
    idx = [155, 175]
    real = RealCrops(tracking, clip).render_crops(idx)
    cast = RealCrops(tracking, clip, gain=(1.12, 0.97, 0.9)).render_crops(idx)
    scores = {}
    for method in ("none", "meanstd", "lowfreq"):
        s = CompositeSettings(colour=method)
        masks = Compositor(tracking, R, s).masks(idx)
        scores[method] = np.mean([psnr(blend_crop(c, g, m, s), c) for c, g, m in zip(real, cast, masks)])
    assert scores["lowfreq"] > scores["none"] + 8
    assert scores["meanstd"] > scores["none"] + 8
    # and a perfect render is left alone by the matching
    s = CompositeSettings()
    m = Compositor(tracking, R, s).masks([155])[0]
    assert psnr(blend_crop(real[0], real[0], m, s), real[0]) > 50


def test_colour_matching_leaves_the_pixels_taken_from_the_footage(shot):
    """A crop whose mouth is the shot's own pixels (a mouth-detail reference) and whose face is a
    render with a cast: the gain fixes the face and leaves the footage's share of the mouth."""
    _, tracking, clip = shot
    i = 160
    real = RealCrops(tracking, clip).render_crops([i])[0]
    cast = RealCrops(tracking, clip, gain=(1.12, 0.97, 0.9)).render_crops([i])[0]
    s = CompositeSettings()
    plain = Compositor(tracking, R, s).masks([i])[0]
    mouth = plain.mouth
    gen = np.where(mouth[..., None], real, cast)  # the mouth from the footage, the rest cast
    share = mouth.astype(np.float32)
    kept = Compositor(tracking, R, s).masks([i], footage=share[None])[0]
    with_share, without = blend_crop(real, gen, kept, s), blend_crop(real, gen, plain, s)
    assert masked_psnr(with_share, real, mouth) > 45  # the footage's mouth untouched
    assert masked_psnr(with_share, real, mouth) > masked_psnr(without, real, mouth) + 10  # the gain shifted it
    face = (plain.alpha > 0.99) & ~cv2.dilate(mouth.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert masked_psnr(with_share, real, face) > masked_psnr(gen, real, face) + 8  # the cast still goes
    # a share of 0 is the plain matching, bit for bit
    none = Compositor(tracking, R, s).masks([i], footage=np.zeros((1, R, R), np.float32))[0]
    assert np.array_equal(blend_crop(real, gen, none, s), without)


def test_settings_are_validated():
    with pytest.raises(ValueError):
        CompositeSettings(colour="magic")
    with pytest.raises(ValueError):
        CompositeSettings(regions=(0,))


# -- background post-process -------------------------------------------------------------------


GREEN = np.array([0, 200, 0], np.uint8)
SKIN = np.array([200, 150, 120], np.uint8)


def green_is_background(rgb: np.ndarray) -> np.ndarray:
    """A stand-in segmenter: green-ish pixels are background, everything else is a person."""
    g = rgb.astype(int)
    return ((g[..., 1] < 150) | (g[..., 0] > 60) | (g[..., 2] > 60)).astype(np.float32)


def test_background_is_restored_where_both_frames_say_background():
    h = w = 120
    original = np.tile(GREEN, (h, w, 1))
    cv2.circle(original, (60, 50), 30, SKIN.tolist(), -1)  # the "person"
    comp = original.copy()
    comp[20:40, 5:25] = (20, 230, 30)  # stuck pixels: still background to the segmenter
    comp[78:95, 45:75] = SKIN  # a lower chin: person in the composite only
    comp[45:55, 50:70] = (90, 40, 40)  # changed inside the person
    with BackgroundKeeper(BackgroundSettings(context=0), segmenter=green_is_background) as keeper:
        out = keeper.apply(original, comp, None)
    assert np.array_equal(out[20:40, 5:25], original[20:40, 5:25])  # restored exactly
    assert np.array_equal(out[78:95, 45:75], comp[78:95, 45:75])  # new chin kept
    assert np.array_equal(out[45:55, 50:70], comp[45:55, 50:70])  # edit inside the person kept
    untouched = np.all(comp == original, axis=2)
    assert np.array_equal(out[untouched], original[untouched])
    # the share each pixel took back from the original, for the watermark's "rendered" area
    with BackgroundKeeper(BackgroundSettings(context=0), segmenter=green_is_background) as keeper:
        again, (rows, cols, kept) = keeper.apply_weighted(original, comp, None)
    assert np.array_equal(again, out) and kept.shape == (h, w)
    assert kept[20:40, 5:25].min() == 1.0 and kept[78:95, 45:75].max() == 0.0 and kept[45:55, 50:70].max() == 0.0


def test_the_rendered_share_is_the_alpha_less_what_the_background_took_back():
    from dubstudio.rendering.render_job import _less_kept

    w = np.full((10, 20), 0.8, np.float32)
    kept = np.zeros((30, 30), np.float32)
    kept[:, 20:] = 1.0  # the post-process gave back the window's right third
    y0, x0, out = _less_kept((5, 12, w), (slice(0, 30), slice(0, 30), kept))
    assert (y0, x0) == (5, 12) and np.allclose(out[:, :8], 0.8) and np.allclose(out[:, 8:18], 0.0)
    assert np.allclose(out[:, 18:], 0.8)  # past the segmented window: not post-processed
    assert np.allclose(w, 0.8)  # the caller's array is not changed
    assert _less_kept((5, 12, w), None)[2] is w and _less_kept(None, (slice(0, 1), slice(0, 1), kept)) is None


def test_keep_background_is_exact_where_nothing_changed():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    p = rng.random((32, 32)).astype(np.float32)
    assert np.array_equal(keep_background(a, a.copy(), p, 1 - p), a)


def test_mediapipe_segmentation_restores_real_background(shot):
    _, tracking, clip = shot
    i = 160
    with VideoReader(clip) as r:
        frame = r.frame(i)
    comp = frame.copy()
    rows, cols = box_slices(tracking.crop[i], *frame.shape[:2])
    # Wall in the top-left corner of the face box (background) and the cheek (person), both changed.
    comp[rows.start : rows.start + 20, cols.start : cols.start + 20] = np.clip(comp[rows.start : rows.start + 20, cols.start : cols.start + 20].astype(int) + 25, 0, 255)
    cy, cx = int(tracking.crop[i][1]), int(tracking.crop[i][0])
    comp[cy : cy + 20, cx : cx + 20] = 0
    with BackgroundKeeper() as keeper:
        out = keeper.apply(frame, comp, tracking.crop[i])
    corner = (slice(rows.start, rows.start + 20), slice(cols.start, cols.start + 20))
    assert np.abs(out[corner].astype(int) - frame[corner].astype(int)).mean() < 3
    assert np.array_equal(out[cy : cy + 20, cx : cx + 20], comp[cy : cy + 20, cx : cx + 20])


# -- render job --------------------------------------------------------------------------------


def test_render_range_writes_a_video_at_the_shots_rate(shot, tmp_path):
    project, tracking, clip = shot
    fake = RealCrops(tracking, clip)
    out = tmp_path / "render.mp4"
    res = render_range(project, tracking, fake, range(150, 162), out, settings=RenderSettings(batch_size=5))
    assert res["frames"] == 12 and res["kind"] == "video"
    assert [len(c) for c in fake.calls] == [5, 5, 2]  # streamed in small batches
    with VideoReader(out) as r:
        assert r.n_frames == 12
        assert r.fps == tracking.fps
        assert (r.width, r.height) == (tracking.width, tracking.height)
        with VideoReader(clip) as src:
            assert psnr(r.frame(6), src.frame(156)) > 30  # H.264 at crf 18
    assert not list(tmp_path.glob(".*partial*"))


def test_render_range_png_sequence_and_no_face_frames(shot, tmp_path):
    project, tracking, clip = shot
    t = without_face(tracking, [141])
    fake = RealCrops(t, clip, offset=30)  # a "shifted mouth": the crop of 30 frames earlier
    folder = tmp_path / "frames"
    res = render_range(project, t, fake, range(140, 144), folder)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(140, 144)]
    assert res["frames"] == 4 and res["frames_with_face"] == 3
    assert all(141 not in c for c in fake.calls)  # never asked to render a no-face frame
    with VideoReader(clip) as r:
        for i in range(140, 144):
            got = cv2.cvtColor(cv2.imread(str(folder / f"frame_{i:05d}.png")), cv2.COLOR_BGR2RGB)
            orig = r.frame(i)
            if i == 141:
                assert np.array_equal(got, orig)  # bit-identical pass-through
                continue
            rows, cols = box_slices(t.crop[i], *orig.shape[:2])
            outside = np.ones(orig.shape[:2], bool)
            outside[rows, cols] = False
            assert np.array_equal(got[outside], orig[outside])
            assert psnr(got[rows, cols], orig[rows, cols]) < 40  # the mouth did change
    pattern = tmp_path / "seq" / "f%03d.png"
    render_range(project, t, fake, range(150, 152), pattern, settings=RenderSettings(background=None))
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["f150.png", "f151.png"]


def test_output_kinds_and_bad_requests(shot, tmp_path):
    project, tracking, clip = shot
    assert output_kind(tmp_path / "a.mp4")[0] == "video"
    assert output_kind(tmp_path)[0] == "png"
    assert output_kind(tmp_path / "x" / "%05d.png") == ("png", str(tmp_path / "x" / "%05d.png"))
    with pytest.raises(DubStudioError, match="video name"):
        output_kind(tmp_path / "a.gif")
    with pytest.raises(DubStudioError, match="outside the shot"):
        render_range(project, tracking, RealCrops(tracking, clip), range(190, 260), tmp_path / "a.mp4")
    with pytest.raises(DubStudioError, match="controls"):
        render_range(project, tracking, RealCrops(tracking, clip), range(0, 3), tmp_path / "a.mp4", controls=np.zeros((5, 7)))


def test_colour_ring_leaves_out_where_an_edit_moved_the_outline(shot):
    """Closing an open jaw: below the new chin the render shows neck where the original shows
    chin. Matching colours there would brighten the whole lower face (seen on talk_b + German)."""
    _, tracking, clip = shot
    i = int(np.argmax(tracking.controls[:, JAW]))  # the widest-open frame
    closed = tracking.controls[i].copy()
    closed[JAW] = -0.2
    comp = Compositor(tracking, R)
    m = comp.masks([i], closed[None])[0]
    moved = comp._raster([i], None)[0] != comp._raster([i], closed[None])[0]
    assert moved.sum() > 200 and m.ring.sum() > 200
    assert not (m.ring & moved).any()
    real = RealCrops(tracking, clip).render_crops([i])[0]
    gen = real.copy()
    gen[moved] = (gen[moved] * 0.5).astype(np.uint8)  # the dark neck the closed jaw uncovers
    out = blend_crop(real, gen, m, CompositeSettings()).astype(float)
    keep = (m.alpha > 0.5) & ~cv2.dilate(moved.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert np.abs(out[keep] - real[keep].astype(float)).mean() < 1.0  # the rest keeps its colour


def test_detail_pass_restores_the_frames_fine_detail_but_not_on_the_mouth(shot):
    """``detail`` (frequency separation): a crop at 128 px of a 373 px face loses its fine detail; the
    detail pass takes the low band from the render and the high band from the original, so a perfect
    renderer's composite comes much closer to the frame than without it. Nothing is added on the
    mouth, whose content an edit replaces."""
    from dubstudio.rendering.composite import detail_layer
    from dubstudio.rendering.crop_io import crop_region

    project, tracking, clip = shot
    r = 128
    off = Compositor(tracking, r, CompositeSettings(detail=0.0))
    on = Compositor(tracking, r, CompositeSettings(detail=1.0))
    with VideoReader(clip) as v:
        frame = v.frame(185)
    crop = RealCrops(tracking, clip, resolution=r).render_crops([185])[0]
    m = off.masks([185])[0]
    rows, cols = box_slices(tracking.crop[185], *frame.shape[:2])
    layer = detail_layer(frame, tracking.crop[185], crop, m, on.settings)
    x0, y0, x1, y1, _ = crop_region(frame.shape, tracking.crop[185], r)
    skin = np.zeros(frame.shape[:2], bool)  # the pasted skin, away from the mouth
    skin[y0:y1, x0:x1] = np.abs(layer).sum(axis=2) > 0
    skin &= np.any(off.composite(frame, 185, crop, m) != frame, axis=2)
    p_off = masked_psnr(off.composite(frame, 185, crop, m), frame, skin)
    p_on = masked_psnr(on.composite(frame, 185, crop, m), frame, skin)
    assert p_on > p_off + 2, (p_off, p_on)
    mx, my = tracking.landmarks_image(185)[[13, 14], :2].mean(axis=0)  # between the inner lips
    assert np.all(layer[int(my) - y0 - 2 : int(my) - y0 + 3, int(mx) - x0 - 2 : int(mx) - x0 + 3] == 0)
    assert np.abs(layer).mean() > 0.5


def test_an_edit_carries_the_detail_along(shot):
    """The flow that moves the original's detail onto the edited face is zero where nothing is edited
    and points from the edited chin back up to where the tracked chin was when the jaw opens more."""
    project, tracking, clip = shot
    r = 128
    comp = Compositor(tracking, r)
    i = 185
    same = comp.masks([i], tracking.controls[i][None])[0]
    assert np.abs(same.flow).max() < 1e-3
    opened = tracking.controls[i].copy()
    opened[JAW] += 0.4
    m = comp.masks([i], opened[None])[0]
    moved = np.abs(m.flow[..., 1]) > 1.0
    assert moved.sum() > 100
    assert np.median(m.flow[..., 1][moved]) < 0  # the edited chin is lower: its detail comes from above
    assert comp.masks([i])[0].flow is None
