"""Mask edits in UV space: strokes follow the face across poses, erase/restore, per-range
overrides, bit-exact undo, grow/shrink, project storage, and the compositor with and without a mask.

A synthetic tracking of the template face (no media needed): frame 0 frontal, frame 1 turned
25° and rolled 10° at another scale and place, frame 2 frontal with the jaw open.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.core.edits import EditHistory
from dubstudio.core.errors import ProjectError
from dubstudio.project.store import Project
from dubstudio.masks import ClearMask, Footprint, MaskLayer, MaskStore, PaintStroke, SetGrow
from dubstudio.rendering.composite import frame_user_mask
from dubstudio.masks.evaluate import sample_delta
from dubstudio.masks.mapping import crop_vertices, frame_uv
from dubstudio.masks.store import AUTOSAVE_FILE, MASK_FILE
from dubstudio.tracking.crops import raw_crop_boxes
from dubstudio.core.controls import CONTROL_NAMES, JAW
from dubstudio.tracking.face_model import FaceModel, Pose
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.template import load_template

R = 256
CORNER = 61  # outer mouth corner (mediapipe id)
CHEEK = 50  # on the cheek, above the lower-face region
FOREHEAD = 10


def _rot(yaw_deg: float, roll_deg: float) -> np.ndarray:
    y, r = np.radians(yaw_deg), np.radians(roll_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry


@pytest.fixture(scope="module")
def tracking() -> Tracking:
    ident = load_template().vertices.astype(np.float64)
    n, k = 3, 0
    model = FaceModel(ident, np.zeros((k, *ident.shape)))
    scale = np.array([110.0, 90.0, 110.0])
    rot = np.stack([_rot(0, 0), _rot(25, 10), _rot(0, 0)])
    trans = np.array([[320.0, 230.0, 0.0], [290.0, 260.0, 0.0], [320.0, 230.0, 0.0]])
    controls = np.zeros((n, len(CONTROL_NAMES)))
    controls[2, JAW] = 0.6
    has = np.ones(n, bool)
    poses = [Pose(scale[i], rot[i], trans[i]) for i in range(n)]
    crop = raw_crop_boxes(model, poses, has, 0.12)
    return Tracking(
        fps=Fraction(25), width=640, height=480, landmarks=np.full((n, 478, 3), np.nan, np.float32), has_face=has,
        identity=ident, residual_basis=np.zeros((k, *ident.shape)), residual_var=np.zeros(k), scale=scale,
        rotation=rot, translation=trans, controls=controls, residual=np.zeros((n, k)), crop=crop,
    )


def at(mask: np.ndarray, xy: np.ndarray) -> float:
    x, y = (int(np.floor(v)) for v in xy)
    return float(mask[y, x])


def vertex(tracking, i: int, v: int) -> np.ndarray:
    return crop_vertices(tracking, i, R)[v, :2]


def dot(tracking, frame: int, v: int, value: float, radius: float = 7.0, frames=None, feather: float = 0.3) -> PaintStroke:
    """A one-dab stroke on vertex ``v`` of ``frame``."""
    fp = frame_uv(tracking, frame, R).stroke_footprint(vertex(tracking, frame, v)[None], radius, feather)
    return PaintStroke(fp, value, frames)


def test_mapping_matches_the_torch_rasterizer(tracking):
    from dubstudio.rendering.rasterizer import rasterize_frame

    for i in range(3):
        m = frame_uv(tracking, i, R)
        ref = rasterize_frame(tracking, i, R)
        uv = ref.uv[0].numpy()
        both = (uv[..., 0] >= 0) & (m.uv[..., 0] >= 0)
        assert both.sum() > 0.95 * (uv[..., 0] >= 0).sum()
        assert np.percentile(np.abs(uv[both] - m.uv[both]), 99) < 0.01
        assert (ref.regions[0].numpy() == m.regions).mean() > 0.99
        # texels land where their UV is shown: the crop pixel under a texel shows (nearly) that texel
        s = m.size
        ys, xs = np.nonzero(np.isfinite(m.texel_xy[..., 0]))
        p = m.texel_xy[ys, xs]
        inside = (p >= 0).all(axis=1) & (p < R).all(axis=1)
        back = m.uv[p[inside, 1].astype(int), p[inside, 0].astype(int)]
        err = np.abs(back - np.stack([(xs[inside] + 0.5) / s, (ys[inside] + 0.5) / s], axis=1)).max(axis=1) * s
        assert np.median(err[back[:, 0] >= 0]) < 1.5


def test_a_stroke_follows_the_face_to_another_pose(tracking):
    layer = MaskLayer(n_frames=3)
    corner1, cheek1, top1 = (vertex(tracking, 1, v) for v in (CORNER, CHEEK, FOREHEAD))
    before = frame_user_mask(layer, tracking, 1, R)
    assert at(before, corner1) == pytest.approx(1.0) and at(before, cheek1) == 0.0
    # erase the mouth corner and paint the cheek, both on the frontal frame 0
    dot(tracking, 0, CORNER, -1.0).apply(layer)
    dot(tracking, 0, CHEEK, +1.0).apply(layer)
    assert not layer.is_empty
    after = frame_user_mask(layer, tracking, 1, R)
    assert at(after, corner1) < 0.05  # the same face point, turned and moved: erased
    assert at(after, cheek1) > 0.95
    assert at(after, top1) == 0.0
    # far from both dabs nothing changed
    far = (np.abs(after - before) > 1e-6)
    ys, xs = np.nonzero(far)
    d = np.minimum(np.hypot(xs - corner1[0], ys - corner1[1]), np.hypot(xs - cheek1[0], ys - cheek1[1]))
    assert d.max() < 25  # 7 px dabs (scaled by the pose) + the soft edge
    # and on frame 2 (jaw open) too
    m2 = frame_user_mask(layer, tracking, 2, R)
    assert at(m2, vertex(tracking, 2, CHEEK)) > 0.95 and at(m2, vertex(tracking, 2, CORNER)) < 0.05


def test_erase_removes_paint_and_restore_returns_to_automatic(tracking):
    layer = MaskLayer()
    auto = frame_user_mask(layer, tracking, 0, R)
    cheek = vertex(tracking, 0, CHEEK)
    dot(tracking, 0, CHEEK, +1.0).apply(layer)
    assert at(frame_user_mask(layer, tracking, 0, R), cheek) > 0.95
    dot(tracking, 0, CHEEK, -1.0, radius=9).apply(layer)
    assert at(frame_user_mask(layer, tracking, 0, R), cheek) == 0.0
    dot(tracking, 0, CHEEK, 0.0, radius=12, feather=0.0).apply(layer)  # restore = automatic again
    restored = frame_user_mask(layer, tracking, 0, R)
    assert np.abs(restored - auto).max() < 1e-5


def test_range_overrides_apply_inside_their_range_and_later_ranges_win(tracking):
    layer = MaskLayer(n_frames=3)
    cheek = [vertex(tracking, i, CHEEK) for i in range(3)]
    dot(tracking, 0, CHEEK, +1.0, frames=(1, 3)).apply(layer)  # frames 1-2 only
    got = [at(frame_user_mask(layer, tracking, i, R), cheek[i]) for i in range(3)]
    assert got[0] == 0.0 and got[1] > 0.95 and got[2] > 0.95
    dot(tracking, 1, CHEEK, -1.0, radius=10, frames=(2, 3)).apply(layer)  # a later range on frame 2
    got = [at(frame_user_mask(layer, tracking, i, R), cheek[i]) for i in range(3)]
    assert got[0] == 0.0 and got[1] > 0.95 and got[2] == 0.0
    assert [r.frames for r in layer.ranges] == [(1, 3), (2, 3)]
    # a range layer overrides the base where it is painted, and only there
    dot(tracking, 0, CORNER, -1.0).apply(layer)  # base: erase the corner everywhere
    corner = [at(frame_user_mask(layer, tracking, i, R), vertex(tracking, i, CORNER)) for i in range(3)]
    assert max(corner) < 0.05
    with pytest.raises(ValueError, match="past the shot"):
        dot(tracking, 0, CHEEK, 1.0, frames=(2, 9)).apply(layer)


def test_undo_restores_bit_identically_and_redo_reproduces(tracking):
    layer = MaskLayer(n_frames=3)
    dot(tracking, 0, CHEEK, 1.0).apply(layer)
    start = layer.copy()
    history = EditHistory(layer)
    edits = [
        dot(tracking, 1, CORNER, -1.0, radius=9),
        dot(tracking, 0, CHEEK, 0.5, frames=(0, 2)),
        dot(tracking, 2, CHEEK, -1.0, frames=(0, 2)),  # into the same range layer
        SetGrow(3.0),
        dot(tracking, 1, FOREHEAD, 1.0, radius=20, feather=1.0),
        ClearMask((0, 2)),
        ClearMask(),
        PaintStroke.from_uv([[0.5, 0.5], [0.55, 0.52]], 0.02, 0.5, 1.0, frames=(1, 2)),
    ]
    states = [layer.copy()]
    for e in edits:
        history.push(e)
        states.append(layer.copy())
    assert not states[-1].equals(start)
    for k in range(len(edits), 0, -1):
        history.undo()
        assert layer.equals(states[k - 1]), f"undo of {edits[k - 1]!r}"
    assert layer.equals(start)
    for k in range(1, len(edits) + 1):
        history.redo()
        assert layer.equals(states[k]), f"redo of {edits[k - 1]!r}"


def test_changed_events_and_grow_shrink(tracking):
    layer = MaskLayer(n_frames=3)
    seen = []
    layer.changed.connect(seen.append)
    auto = frame_user_mask(layer, tracking, 0, R)
    e = SetGrow(4.0)
    e.apply(layer)
    grown = frame_user_mask(layer, tracking, 0, R)
    SetGrow(-4.0).apply(layer)
    shrunk = frame_user_mask(layer, tracking, 0, R)
    assert (grown >= auto - 1e-6).all() and grown.sum() > auto.sum() * 1.1
    assert (shrunk <= auto + 1e-6).all() and shrunk.sum() < auto.sum() * 0.9
    assert e.merge(SetGrow(2.0)) and e.px == 2.0  # spin-box steps merge into one undo step
    dot(tracking, 0, CHEEK, 1.0, frames=(1, 2)).apply(layer)
    assert seen == [None, None, (1, 2)]
    with pytest.raises(ValueError):
        SetGrow(1e6).apply(layer)


def test_footprints_and_uv_strokes():
    a = Footprint.from_full(np.pad(np.ones((2, 3), np.float32), ((4, 10), (5, 8))))
    assert (a.y0, a.x0, a.weights.shape) == (4, 5, (2, 3))
    b = Footprint(5, 7, np.full((3, 2), 0.5, np.float32))
    u = a.union(b)
    assert (u.y0, u.x0, u.weights.shape) == (4, 5, (4, 4))
    assert u.weights[1, 2] == 1.0 and u.weights[3, 3] == 0.5 and u.weights[3, 0] == 0.0
    s = PaintStroke.from_uv([[0.25, 0.5]], 0.05, feather=0.0, size=64)
    w = np.zeros((64, 64), np.float32)
    w[s.footprint.slices] = s.footprint.weights
    assert w[32, 16] == 1.0 and w[32, 40] == 0.0
    assert abs(w.sum() - np.pi * (0.05 * 64) ** 2) < 4  # a disc of that area
    with pytest.raises(ValueError):
        PaintStroke(s.footprint, 2.0)
    with pytest.raises(ValueError):
        PaintStroke(s.footprint, 1.0, frames=(5, 5))


def test_sampling_reads_the_layer_through_the_uv_buffer():
    layer = MaskLayer(size=32)
    layer.base.premul[8:24, 0:16] = 1.0  # left half of the middle rows
    uv = np.full((4, 4, 2), -1.0, np.float32)
    uv[0, 0] = (0.25, 0.5)
    uv[0, 1] = (0.75, 0.5)
    d = sample_delta(layer, 0, uv)
    assert d[0, 0] == 1.0 and d[0, 1] == 0.0 and d[1, 1] == 0.0


# -- storage -------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> Project:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    return Project.create(tmp_path / "p.dubstudio", video)


def test_save_load_round_trip_autosave_and_recovery(tracking, project):
    store = MaskStore(project)
    assert not store.exists() and store.load(3).is_empty
    layer = MaskLayer(n_frames=3)
    dot(tracking, 0, CHEEK, 1.0).apply(layer)
    dot(tracking, 1, CORNER, -0.7, frames=(1, 3)).apply(layer)
    SetGrow(-2.5).apply(layer)
    path = store.save(layer)
    assert path == project.path(MASK_FILE)
    d = json.loads(path.read_text())
    assert d["schema_version"] == 1 and d["kind"] == "dubstudio.mask" and d["ranges"] == [{"start": 1, "stop": 3}]
    back = store.load(3)
    assert back.equals(layer)
    assert np.array_equal(frame_user_mask(back, tracking, 1, R), frame_user_mask(layer, tracking, 1, R))

    # an autosave newer than the save is offered, and recovered bit for bit
    assert not store.recovery_available()
    dot(tracking, 2, FOREHEAD, 1.0).apply(layer)
    store.autosave(layer)
    assert store.recovery_available()
    assert store.recover(3).equals(layer)
    assert not store.load(3).equals(layer)  # the save is untouched
    files = sorted(p.name for p in project.path("edits").glob("mask-*.npz"))
    assert len(files) == 2  # the saved and the autosaved content
    store.save(layer)
    assert not project.path(AUTOSAVE_FILE).exists() and not store.recovery_available()
    assert len(list(project.path("edits").glob("mask-*.npz"))) == 1  # garbage collected
    store.autosave(layer)
    store.discard_autosave()
    assert not store.recovery_available()


def test_damaged_files_give_a_clear_error(tracking, project):
    store = MaskStore(project)
    layer = MaskLayer(n_frames=3)
    dot(tracking, 0, CHEEK, 1.0).apply(layer)
    store.save(layer)
    path = project.path(MASK_FILE)
    good = path.read_text()
    npz = project.path("edits") / json.loads(good)["file"]

    path.write_text("{ not json")
    with pytest.raises(ProjectError, match="damaged.*delete it"):
        store.load(3)
    path.write_text(json.dumps({"kind": "something else", "schema_version": 1}))
    with pytest.raises(ProjectError, match="not a DubStudio mask file"):
        store.load(3)
    path.write_text(good.replace('"schema_version": 1', '"schema_version": 99'))
    with pytest.raises(ProjectError, match="newer DubStudio"):
        store.load(3)
    path.write_text(good)
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError, match="missing or damaged"):
        store.load(3)
    npz.unlink()
    with pytest.raises(ProjectError, match="missing or damaged"):
        store.load(3)
    # a damaged autosave is never offered as a recovery that fails
    project.path(AUTOSAVE_FILE).write_text('{"saved_ns": 99999999999999999999, "kind": "dubstudio.mask"}')
    assert store.recovery_available() and store.recover(3) is None


# -- compositing ---------------------------------------------------------------------------------


def test_compositor_without_a_mask_is_unchanged_and_uses_one_when_given(tracking):
    from dubstudio.rendering.composite import Compositor

    plain = Compositor(tracking, R).masks([0, 1, 2])
    layer = MaskLayer(n_frames=3)
    same = Compositor(tracking, R, user_mask=layer).masks([0, 1, 2])  # an empty layer: nothing changes
    for a, b in zip(plain, same):
        assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.ring, b.ring)
        assert np.array_equal(a.regions, b.regions)

    dot(tracking, 0, CHEEK, 1.0, radius=9).apply(layer)
    dot(tracking, 0, CORNER, -1.0).apply(layer)
    comp = Compositor(tracking, R, user_mask=layer)
    edited = comp.masks([0, 1, 2])
    for i, (a, b) in enumerate(zip(plain, edited)):
        cheek, corner = vertex(tracking, i, CHEEK), vertex(tracking, i, CORNER)
        assert at(a.alpha, cheek) == 0.0 and at(b.alpha, cheek) > 0.95
        assert at(a.alpha, corner) == 1.0 and at(b.alpha, corner) < 0.05
        assert b.alpha.dtype == np.float32 and 0.0 <= b.alpha.min() and b.alpha.max() <= 1.0
    # edited controls: still the user's edits, on the union of tracked and edited regions
    ctrl = tracking.controls.copy()
    ctrl[:, JAW] = 0.8
    with_ctrl = comp.masks([0, 1], ctrl[:2])
    assert at(with_ctrl[1].alpha, vertex(tracking, 1, CHEEK)) > 0.95
    # the generated limit still applies
    gen = np.zeros((3, R, R), bool)
    limited = comp.masks([0, 1, 2], generated=gen)
    assert all(m.alpha.max() == 0.0 for m in limited)
