"""The tracking job end to end on real media: no-face pass-through, resume after a kill,
stage caching, the jaw-independent crop and the mouth / lower-face masks."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from media_helpers import write_clip

from dubstudio.core.jobs import CancelToken, Progress
from dubstudio.core.errors import Cancelled
from dubstudio.project.store import Project
from dubstudio.io.video import VideoReader
from dubstudio.tracking.crops import (
    MASK_LOWER_FACE,
    MASK_MOUTH,
    MASK_NONE,
    frame_mask,
    raw_crop_boxes,
    stabilise_crops,
)
from dubstudio.core.controls import CONTROL_NAMES, JAW
from dubstudio.tracking.overlay import draw_overlay
from dubstudio.tracking.track import TrackSettings, track

pytestmark = pytest.mark.media

SETTINGS = TrackSettings(chunk_frames=50)  # talk_b (200 frames) -> 4 landmark chunks
N_GREY = 15


def _chunk_files(project: Project) -> dict[str, int]:
    """Landmark chunk file name -> mtime (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in sorted(project.cache_dir("landmarks").glob("chunk_*.npz"))}


@pytest.fixture(scope="module")
def talk_b(media: Path) -> Path:
    return media / "talk_b.mp4"


@pytest.fixture(scope="module")
def tracked_b(talk_b: Path, tmp_path_factory):
    """talk_b tracked once, uninterrupted, with SETTINGS: (project, tracking, metrics)."""
    project = Project.create(tmp_path_factory.mktemp("tracked_b") / "proj", talk_b)
    tracking, metrics = track(talk_b, project, SETTINGS)
    return project, tracking, metrics


@pytest.fixture(scope="module")
def grey_then_face(talk_b: Path, tmp_path_factory):
    """A 60-frame 25 fps clip: 15 flat grey frames, then 45 real frames of talk_b; tracked.

    Returns (clip path, tracking, metrics)."""
    with VideoReader(talk_b) as r:
        real = [rgb for _, rgb in r.iter_frames(0, 60 - N_GREY)]
    grey = np.full_like(real[0], 128)
    d = tmp_path_factory.mktemp("grey_then_face")
    clip = write_clip(d / "grey_then_face.mp4", [grey] * N_GREY + real, fps=25)
    project = Project.create(d / "proj", clip)
    tracking, metrics = track(clip, project, SETTINGS)
    return clip, tracking, metrics


# -- frames without a face ---------------------------------------------------------------


def test_no_face_frames_are_marked_and_passed_through(grey_then_face):
    clip, t, metrics = grey_then_face
    assert t.n_frames == 60
    assert metrics["frames"] == 60
    assert not t.has_face[:N_GREY].any(), "a face was 'found' in flat grey frames"
    assert t.has_face[N_GREY:].mean() >= 0.9, f"face found in only {t.has_face[N_GREY:].sum()} of 45 real frames"
    assert metrics["frames_with_face"] == int(t.has_face.sum())
    # Landmarks are NaN where there is no face, finite where there is.
    assert np.isnan(t.landmarks[:N_GREY]).all()
    assert np.isfinite(t.landmarks[t.has_face]).all()
    # Crops exist for every frame (gap-filled from the nearest face), so later stages can index them.
    assert t.crop.shape == (60, 3)
    assert np.isfinite(t.crop).all()
    assert (t.crop[:, 2] > 0).all()
    np.testing.assert_allclose(t.crop[:N_GREY], np.repeat(t.crop[N_GREY : N_GREY + 1], N_GREY, axis=0), rtol=0.05)
    # Every other per-frame array is finite too (no NaN leaking from the no-face frames).
    for name in ("scale", "rotation", "translation", "controls", "residual"):
        assert np.isfinite(getattr(t, name)).all(), name


def test_overlay_on_a_no_face_frame(grey_then_face):
    clip, t, _ = grey_then_face
    with VideoReader(clip) as r:
        grey, face = r.frame(0), r.frame(N_GREY + 10)
    model = t.model()
    grey_before = grey.copy()
    out = draw_overlay(grey, t, 0, model)
    assert out.shape == grey.shape and out.dtype == np.uint8
    assert not np.array_equal(out, grey), "a no-face frame should carry a 'no face' label"
    # Only the label is drawn: the bulk of the frame is passed through untouched.
    assert np.mean(np.all(out == grey, axis=2)) > 0.9
    assert np.array_equal(grey, grey_before)  # the input frame is not modified
    i = N_GREY + 10
    assert t.has_face[i]
    out_face = draw_overlay(face, t, i, model)
    assert out_face.shape == face.shape
    assert np.mean(np.any(out_face != face, axis=2)) > 0.05  # mesh, tint and box drawn


def test_mask_of_a_no_face_frame_is_empty(grey_then_face):
    _, t, _ = grey_then_face
    m = frame_mask(t, 0, 256)
    assert m.shape == (256, 256) and m.dtype == np.uint8
    assert not m.any()


# -- resume after a kill -------------------------------------------------------------------


def test_resume_after_cancel_reuses_finished_chunks(talk_b: Path, tracked_b, tmp_path: Path):
    project = Project.create(tmp_path / "proj", talk_b)
    token = CancelToken()
    seen = []

    def cb(ev):
        seen.append((ev.stage, ev.done))
        if ev.stage == "landmarks" and ev.done >= 120:
            token.cancel()

    with pytest.raises(Cancelled):
        track(talk_b, project, SETTINGS, Progress(cb, token))
    assert max(d for s, d in seen if s == "landmarks") == 120  # cancelled at the very next frame
    assert project.stage_record("track") is None  # nothing recorded as finished

    before = _chunk_files(project)
    assert sorted(before) == ["chunk_00000.npz", "chunk_00001.npz"], before
    assert not list(project.cache_dir("landmarks").glob(".*.tmp"))  # no half-written chunk left

    # "Restart the program": a new Project object and a fresh Progress.
    project = Project.create(tmp_path / "proj", talk_b)
    resumed = []
    tracking, metrics = track(
        talk_b, project, SETTINGS, Progress(lambda ev: resumed.append((ev.stage, ev.done)))
    )
    assert metrics["cached"] is False
    assert metrics["frames"] == 200
    # The resumed landmark pass starts after the finished chunks.
    lm_done = [d for s, d in resumed if s == "landmarks"]
    assert lm_done and min(lm_done) == 101 and max(lm_done) == 200

    after = _chunk_files(project)
    assert sorted(after) == [f"chunk_{i:05d}.npz" for i in range(4)]
    for name, mtime in before.items():
        assert after[name] == mtime, f"{name} was rewritten on resume"

    _, fresh, fresh_metrics = tracked_b
    assert np.array_equal(tracking.landmarks, fresh.landmarks, equal_nan=True)
    assert np.array_equal(tracking.has_face, fresh.has_face)
    assert metrics["frames_with_face"] == fresh_metrics["frames_with_face"]
    np.testing.assert_allclose(tracking.crop, fresh.crop, rtol=1e-6, atol=1e-6)


# -- stage cache -------------------------------------------------------------------------------


def test_changed_setting_invalidates_cache_unchanged_does_not(talk_b: Path, tracked_b, tmp_path: Path):
    src_project, base, _ = tracked_b
    shutil.copytree(src_project.root, tmp_path / "proj")
    project = Project.create(tmp_path / "proj", talk_b)
    chunks = _chunk_files(project)
    assert len(chunks) == 4

    same, m_same = track(talk_b, project, SETTINGS)
    assert m_same["cached"] is True
    assert np.array_equal(same.crop, base.crop)

    wider = dataclasses.replace(SETTINGS, crop_margin=0.30)
    t_wide, m_wide = track(talk_b, project, wider)
    assert m_wide["cached"] is False
    ratio = t_wide.crop[:, 2] / base.crop[:, 2]
    np.testing.assert_allclose(ratio, 1.30 / (1 + SETTINGS.crop_margin), rtol=1e-3)
    # The margin does not affect landmark detection: its chunks are reused, not recomputed.
    assert _chunk_files(project) == chunks

    assert track(talk_b, project, wider)[1]["cached"] is True
    assert track(talk_b, project, SETTINGS)[1]["cached"] is False  # back to the old margin: recomputed
    assert track(talk_b, project, SETTINGS, force=True)[1]["cached"] is False


# -- the crop -------------------------------------------------------------------------------------


def _recompute_crops(t, settings: TrackSettings, controls: np.ndarray) -> np.ndarray:
    """Crops of tracking ``t`` recomputed with the product's crop functions, given the controls."""
    t2 = dataclasses.replace(t, controls=controls)
    model = t2.model()
    poses = [t2.pose(i) if t2.has_face[i] else None for i in range(t2.n_frames)]
    raw = raw_crop_boxes(model, poses, t2.has_face, settings.crop_margin)
    return stabilise_crops(raw, t2.has_face, float(t2.fps), settings.crop_centre_smooth_s, settings.crop_size_smooth_s)


def test_crop_is_jaw_independent_and_stable(tracked_b):
    _, t, metrics = tracked_b
    jaw = t.controls[:, JAW]
    assert jaw.max() - jaw.min() > 0.2, "talk_b should have visible mouth motion"

    tracked_crop = _recompute_crops(t, SETTINGS, t.controls)
    np.testing.assert_allclose(tracked_crop, t.crop, rtol=1e-9, atol=1e-6)
    closed = t.controls.copy()
    closed[:, JAW] = 0.0
    np.testing.assert_array_equal(_recompute_crops(t, SETTINGS, closed), tracked_crop)

    # Size is steady and does not follow the mouth.
    size = t.crop[:, 2]
    assert size.std() / size.mean() <= 0.02
    assert metrics["crop_size_cv"] <= 0.02
    assert abs(np.corrcoef(size, jaw)[0, 1]) < 0.5

    # The box holds the whole face with the jaw fully open, on every frame.
    model = t.model()
    opened = t.controls.copy()
    opened[:, JAW] = 1.0
    for i in range(t.n_frames):
        p = t.landmarks_image(i, controls=opened[i], model=model)[:, :2]
        cx, cy, side = t.crop[i]
        assert (np.abs(p - [cx, cy]) <= side / 2).all(), f"frame {i}: open-jaw face leaves the crop"


# -- masks ------------------------------------------------------------------------------------------


def test_masks_have_mouth_and_lower_face_and_follow_the_jaw(tracked_b):
    _, t, _ = tracked_b
    model = t.model()
    i = int(np.argmin(t.controls[:, JAW]))  # the most closed mouth
    m = frame_mask(t, i, 256, model=model)
    assert m.shape == (256, 256) and m.dtype == np.uint8
    assert set(np.unique(m)) <= {MASK_NONE, MASK_LOWER_FACE, MASK_MOUTH}
    n_mouth, n_lower = int((m == MASK_MOUTH).sum()), int((m == MASK_LOWER_FACE).sum())
    assert n_mouth > 50, n_mouth
    assert n_lower > n_mouth, (n_lower, n_mouth)
    assert (m == MASK_NONE).sum() > 0.2 * m.size  # the crop is not all face
    # The mouth lies in the lower half of the crop, inside the lower-face region's extent.
    ys, _ = np.nonzero(m == MASK_MOUTH)
    assert ys.mean() > 128

    c = t.controls[i].copy()
    assert c.shape == (len(CONTROL_NAMES),)
    c[JAW] = t.controls[i, JAW] + 0.8
    m_open = frame_mask(t, i, 256, controls=c, model=model)
    n_open = int((m_open == MASK_MOUTH).sum())
    assert n_open > 1.2 * n_mouth, (n_open, n_mouth)
    # The default is the frame's own tracked controls.
    np.testing.assert_array_equal(frame_mask(t, i, 256, controls=t.controls[i], model=model), m)
