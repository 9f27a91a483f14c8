"""Tracking correction on the tracked built-in sample: a landmark drag re-fits its frame and
blends into the neighbours, nudges, exact undo, storage, and curve edits surviving a correction."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dubstudio.core.curves import ControlCurves, Key
from dubstudio.core.edits import SetDriven, SetKey
from dubstudio.core.errors import NoFaceError, ProjectError
from dubstudio.project.store import Project
from dubstudio.tracking.correction import HANDLE_LANDMARKS, CorrectionSettings, FrameCorrection, TrackingCorrector
from dubstudio.tracking.correction_edits import CorrectLandmarks, NudgePose, ResetTracking
from dubstudio.shot.tracking import load_tracking as corrected_tracking
from dubstudio.tracking.correction_store import CORRECTIONS_FILE, CorrectionStore
from dubstudio.core.controls import JAW
from dubstudio.tracking.result import Tracking

FIELDS = ("scale", "rotation", "translation", "controls", "residual")
F = 25  # the corrected frame (the sample has 50 frames, all with a face)
N = 4  # default blend_frames


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple[Project, Tracking]:
    from dubstudio.app.sample import build_sample
    from dubstudio.tracking.track import track

    d = tmp_path_factory.mktemp("correction")
    clip = build_sample(d, seconds=2)
    project = Project.create(d / "proj", clip)
    tracking, _ = track(clip, project)
    return project, tracking


@pytest.fixture
def corrector(tracked) -> TrackingCorrector:
    return TrackingCorrector(tracked[1])


def _snapshot(t: Tracking) -> dict[str, np.ndarray]:
    return {k: np.array(getattr(t, k), copy=True) for k in FIELDS}


def _same(t: Tracking, snap: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(getattr(t, k), snap[k]) for k in FIELDS)


def _lower_lip_drag(c: TrackingCorrector, frame: int = F, px: float | None = None) -> tuple[np.ndarray, dict]:
    lm = c.landmarks(frame)
    iod = np.linalg.norm(lm[33, :2] - lm[263, :2])
    target = lm[14, :2] + [0.0, px if px is not None else 0.12 * iod]
    return lm, {14: target}


def test_drag_refits_the_frame_towards_the_target(corrector):
    c = corrector
    before, pts = _lower_lip_drag(c)
    target = pts[14]
    moved = np.linalg.norm(target - before[14, :2])
    CorrectLandmarks(c, F, pts).apply(None)
    after = c.landmarks(F)
    # the dragged point went most of the way; the jaw opened to do it (not one bent vertex)
    assert np.linalg.norm(after[14, :2] - target) < 0.25 * moved
    assert c.tracking.controls[F, JAW] > c.original.controls[F, JAW] + 0.1
    # the whole lower lip followed, the upper lip barely moved, the eyes did not
    lower = [87, 14, 317]
    assert np.all(after[lower, 1] - before[lower, 1] > 0.4 * moved)
    assert abs(after[13, 1] - before[13, 1]) < 0.25 * moved
    assert np.abs(after[[33, 263, 133, 362], :2] - before[[33, 263, 133, 362], :2]).max() < 0.1 * moved
    assert c.is_corrected(F) and c.correction(F).targets == {14: tuple(target)}


def test_neighbours_blend_smoothly_and_far_frames_do_not_change(corrector):
    c = corrector
    orig = c.original
    _, pts = _lower_lip_drag(c)
    CorrectLandmarks(c, F, pts).apply(None)
    change = np.array([np.abs(c.tracking.controls[f, JAW] - orig.controls[f, JAW]) for f in range(orig.n_frames)])
    near = change[F - N : F + N + 1]
    assert change[F] == near.max()
    assert np.all(np.diff(change[F : F + N + 2]) < 0) and np.all(np.diff(change[F - N - 1 : F + 1]) > 0)
    assert np.all(np.diff(change[F - N - 1 : F + N + 2], 2) < 0.6 * change[F])  # no pop between frames
    far = np.r_[0 : F - N, F + N + 1 : orig.n_frames]
    for k in FIELDS:
        assert np.array_equal(getattr(c.tracking, k)[far], getattr(orig, k)[far]), k


def test_revert_and_redo_are_exact_and_curves_follow(corrector):
    c = corrector
    curves = ControlCurves(c.tracking.controls)
    snap = _snapshot(c.tracking)
    base0 = curves.tracked.copy()
    seen = []
    c.changed.connect(lambda a, b: seen.append((a, b)))
    _, pts = _lower_lip_drag(c)
    e = CorrectLandmarks(c, F, pts)
    e.apply(curves)
    after = _snapshot(c.tracking)
    assert not _same(c.tracking, snap)
    assert np.array_equal(curves.tracked, c.tracking.controls)  # the curves' base follows
    assert seen and seen[-1][0] <= F - N and seen[-1][1] >= F + N + 1
    e.revert(curves)
    assert _same(c.tracking, snap) and np.array_equal(curves.tracked, base0)
    assert not c.is_corrected(F)
    e.apply(curves)  # redo
    assert _same(c.tracking, after)
    ResetTracking(c, F).apply(curves)
    assert _same(c.tracking, snap) and np.array_equal(curves.tracked, base0)


def test_pose_nudge_moves_the_head_and_jaw_nudge_adds(corrector):
    c = corrector
    pivot = c.model.identity[1]  # the neutral nose tip is the pivot of nudges
    nose0, lm0 = c.tracking.pose(F).apply(pivot), c.landmarks(F)[1]
    NudgePose(c, F, d_translation=(3.0, -2.0)).apply(None)
    nose1, lm1 = c.tracking.pose(F).apply(pivot), c.landmarks(F)[1]
    assert np.allclose(nose1[:2] - nose0[:2], [3.0, -2.0], atol=1e-6)
    assert np.allclose(lm1[:2] - lm0[:2], [3.0, -2.0], atol=0.3)  # the re-fitted expression barely pulls back
    roll = np.deg2rad(2.0)
    NudgePose(c, F, d_rotation=(0.0, 0.0, roll)).apply(None)
    lm = c.landmarks(F)
    eyes = lm[263, :2] - lm[33, :2]
    eyes0 = c.original.landmarks_image(F, model=c.model)
    eyes0 = eyes0[263, :2] - eyes0[33, :2]
    angle = np.arctan2(eyes[1], eyes[0]) - np.arctan2(eyes0[1], eyes0[0])
    assert angle == pytest.approx(roll, abs=0.01)
    jaw = c.tracking.controls[F, JAW]
    NudgePose(c, F, d_jaw=0.1).apply(None)
    assert c.tracking.controls[F, JAW] == pytest.approx(jaw + 0.1, abs=1e-9)
    corr = c.correction(F)
    assert corr.translation[:2] == pytest.approx((3.0, -2.0)) and corr.jaw == pytest.approx(0.1)


def test_nudges_with_one_token_merge_into_one_step(corrector):
    c = corrector
    snap = _snapshot(c.tracking)
    a = NudgePose(c, F, d_translation=(1.0, 0.0), token="keys")
    a.apply(None)
    b = NudgePose(c, F, d_translation=(1.0, 0.0), token="keys")
    b.apply(None)
    assert a.merge(b)
    assert not a.merge(NudgePose(c, F + 1, d_translation=(1.0, 0.0), token="keys"))
    assert c.correction(F).translation[0] == pytest.approx(2.0)
    after = _snapshot(c.tracking)
    a.revert(None)
    assert _same(c.tracking, snap) and not c.is_corrected(F)
    a.apply(None)  # redo of the merged step reproduces both nudges
    assert all(np.allclose(getattr(c.tracking, k), after[k], atol=1e-9) for k in FIELDS)


def test_two_close_corrections_interpolate_and_each_frame_is_exact(tracked):
    _, t = tracked
    alone = {}
    for f in (F, F + 6):
        c = TrackingCorrector(t)
        NudgePose(c, f, d_jaw=0.2 if f == F else -0.2).apply(None)
        alone[f] = c.tracking.controls[f, JAW] - t.controls[f, JAW]
    c = TrackingCorrector(t)
    NudgePose(c, F, d_jaw=0.2).apply(None)
    NudgePose(c, F + 6, d_jaw=-0.2).apply(None)
    d = c.tracking.controls[:, JAW] - t.controls[:, JAW]
    assert d[F] == pytest.approx(alone[F]) and d[F + 6] == pytest.approx(alone[F + 6])
    inner = d[F : F + 7]
    assert np.all(np.diff(inner) < 0)  # from one correction to the other, no dip back to 0
    assert d[F - N - 1] == 0 and d[F + 6 + N + 1] == 0


def test_blending_stops_at_frames_without_a_face(tracked):
    _, t = tracked
    has_face = t.has_face.copy()
    has_face[F + 2] = False
    gap = dataclasses.replace(t, has_face=has_face)
    c = TrackingCorrector(gap)
    NudgePose(c, F, d_jaw=0.3).apply(None)
    d = c.tracking.controls[:, JAW] - t.controls[:, JAW]
    assert d[F + 1] > 0 and d[F + 2] == 0 and d[F + 3] == 0
    with pytest.raises(NoFaceError):
        CorrectLandmarks(c, F + 2, {14: (10.0, 10.0)}).apply(None)
    assert c.corrected_frames() == [F]


def test_curve_edits_survive_a_correction(corrector):
    c = corrector
    curves = ControlCurves(c.tracking.controls)
    SetKey("jaw_open", Key(F, 0.15, mode="offset")).apply(curves)
    SetKey("jaw_open", Key(F + 3, 0.5, mode="replace")).apply(curves)
    SetKey("smile", Key(F - 2, 0.3, mode="offset")).apply(curves)
    driven = np.full(10, 0.05)
    SetDriven("lip_press", driven, start=F - 5, weight=1.0, source="audio:test").apply(curves)
    _, pts = _lower_lip_drag(c)
    e = CorrectLandmarks(c, F, pts)
    e.apply(curves)
    base = c.tracking.controls
    assert [k.frame for k in curves.keys("jaw_open")] == [F, F + 3]
    assert curves.evaluate("jaw_open")[F] == pytest.approx(base[F, JAW] + 0.15)  # offset rides on it
    assert curves.evaluate("jaw_open")[F + 3] == pytest.approx(0.5)  # replace keeps its value
    assert curves.evaluate("lip_press")[F] == pytest.approx(0.05)  # driven at weight 1 still wins
    assert curves.driven_source("lip_press") == "audio:test"
    before = curves.copy()
    e.revert(curves)
    e.apply(curves)
    for name in curves.names:
        assert np.array_equal(curves.evaluate(name), before.evaluate(name))


def test_save_load_round_trip_and_downstream_tracking(tracked, tmp_path):
    import shutil

    project, t = tracked
    root = tmp_path / "proj"
    shutil.copytree(project.root, root)
    p = Project.open(root)
    store = CorrectionStore(p)
    c = store.load(t)
    assert c.corrections == {} and corrected_tracking(p).controls.tolist() == t.controls.tolist()
    _, pts = _lower_lip_drag(c)
    CorrectLandmarks(c, F, pts).apply(None)
    NudgePose(c, F + 10, d_rotation=(0.0, 0.01, 0.0), d_translation=(1.5, 0.0, 0.0), d_jaw=-0.05).apply(None)
    path = store.save(c)
    assert path == root / CORRECTIONS_FILE
    d = json.loads(path.read_text())
    assert d["schema_version"] == 1 and d["kind"] == "dubstudio.tracking_corrections"
    assert [e["frame"] for e in d["frames"]] == [F, F + 10]
    assert d["settings"]["blend_frames"] == N
    tracking_file = p.path(p.stage_record("track")["outputs"]["tracking"])
    assert np.array_equal(Tracking.load(tracking_file).controls, t.controls)  # never overwritten

    loaded = CorrectionStore(Project.open(root)).load(t)
    assert loaded.corrections == c.corrections
    for k in FIELDS:
        assert np.allclose(getattr(loaded.tracking, k), getattr(c.tracking, k), rtol=0, atol=1e-12), k
    down = corrected_tracking(Project.open(root))
    assert np.allclose(down.controls, c.tracking.controls, atol=1e-12)
    # every downstream stage reads it: training/rendering (tracking_of, with a key that changes
    # so caches and adaptations notice) and the curves' tracked base
    from dubstudio.shot.curve_store import tracked_controls
    from dubstudio.shot.tracking import tracking_of

    plain, plain_key = tracking_of(p, corrected=False)
    fixed, fixed_key = tracking_of(Project.open(root))
    assert np.array_equal(plain.controls, t.controls) and fixed_key != plain_key
    assert np.allclose(fixed.controls, c.tracking.controls, atol=1e-12)
    assert np.allclose(tracked_controls(Project.open(root)), c.tracking.controls, atol=1e-12)

    # reset to tracker and save: the file goes away, downstream is the tracker's result again
    ResetTracking(c, 0, t.n_frames).apply(None)
    assert store.save(c) is None and not path.exists()
    assert np.array_equal(corrected_tracking(Project.open(root)).controls, t.controls)


def test_damaged_or_newer_files_are_refused_clearly(tracked, tmp_path):
    import shutil

    project, t = tracked
    shutil.copytree(project.root, tmp_path / "proj")
    p = Project.open(tmp_path / "proj")
    f = p.path(CORRECTIONS_FILE)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("{not json")
    with pytest.raises(ProjectError, match="damaged"):
        CorrectionStore(p).load(t)
    f.write_text(json.dumps({"schema_version": 99, "kind": "dubstudio.tracking_corrections"}))
    with pytest.raises(ProjectError, match="newer DubStudio"):
        CorrectionStore(p).load(t)
    f.write_text(json.dumps({"schema_version": 1, "kind": "dubstudio.tracking_corrections", "n_frames": 7, "frames": []}))
    with pytest.raises(ProjectError, match="re-tracked"):
        CorrectionStore(p).load(t)


def test_settings_and_inputs_are_validated(tracked):
    with pytest.raises(ValueError):
        CorrectionSettings(blend_frames=-1)
    with pytest.raises(ValueError):
        FrameCorrection(points=((999, 1.0, 2.0),))
    with pytest.raises(ValueError):
        FrameCorrection(points=((14, float("nan"), 2.0),))
    c = TrackingCorrector(tracked[1], settings=CorrectionSettings(blend_frames=0))
    NudgePose(c, F, d_jaw=0.2).apply(None)
    d = c.tracking.controls[:, JAW] - tracked[1].controls[:, JAW]
    assert d[F] != 0 and d[F - 1] == 0 and d[F + 1] == 0  # no blending asked for
    assert len(set(HANDLE_LANDMARKS)) == len(HANDLE_LANDMARKS) < 60
