"""Named expression controls: each moves the face as its name says, in the same units for anyone."""

import numpy as np
import pytest

from dubstudio.tracking import topology as topo
from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.tracking.face_model import FaceModel
from dubstudio.tracking.template import load_template


def _model(seed=None, scale=1.0):
    v = load_template().vertices.astype(np.float64)
    if seed is not None:  # another "person": smooth random shape change
        rng = np.random.default_rng(seed)
        v = v * np.array([1 + rng.normal(0, 0.05), 1 + rng.normal(0, 0.08), 1 + rng.normal(0, 0.08)])
        v[:, 1] += 0.05 * np.sin(v[:, 0] * 3 + rng.normal())
    return FaceModel(v * scale)


def _c(**kw):
    c = np.zeros(len(CONTROL_NAMES))
    for k, val in kw.items():
        c[CONTROL_NAMES.index(k)] = val
    return c


def opening(v):
    return v[14, 1] - v[13, 1]


def test_jaw_opens_mouth_and_lowers_chin_leaving_upper_face():
    m = _model()
    rest, op = m.landmarks(_c()), m.landmarks(_c(jaw_open=0.6))
    assert opening(op) - opening(rest) > 0.15
    assert op[topo.CHIN, 1] - rest[topo.CHIN, 1] > 0.05  # chin down
    assert op[13, 1] < rest[13, 1]  # upper lip rises a little with the jaw
    upper_face = [10, 151, 9, 33, 263, 168, 6, 1]
    np.testing.assert_allclose(op[upper_face], rest[upper_face], atol=2e-3)
    # Monotonic in the control.
    steps = [opening(m.landmarks(_c(jaw_open=j))) for j in np.linspace(0, 1, 6)]
    assert np.all(np.diff(steps) > 0)


def test_jaw_mesh_stays_plausible():
    """Opening the jaw must not tear or fold the lower face: no triangle flips in the image plane."""
    m = _model()
    tris = topo.surface_triangles()

    def signs(v):
        a, b, c = (v[tris[:, k], :2] for k in range(3))
        return np.sign((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])

    rest = m.landmarks(_c())
    base = signs(rest)
    a, b, c = (rest[tris[:, k], :2] for k in range(3))
    area = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]) / 2
    for j in (0.3, 0.6, 1.0):
        flipped = signs(m.landmarks(_c(jaw_open=j))) != base
        # Only slivers at the corners of a smiling template may fold: < 0.1% of the face area.
        assert area[flipped].sum() < 1e-3 * area.sum()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_controls_mean_the_same_on_different_people(seed):
    a, b = _model(), _model(seed, scale=1.0)
    for name in ("jaw_open", "lower_lip_depress", "upper_lip_raise"):
        da = opening(a.landmarks(_c(**{name: 0.5}))) - opening(a.landmarks(_c()))
        db = opening(b.landmarks(_c(**{name: 0.5}))) - opening(b.landmarks(_c()))
        assert db == pytest.approx(da, rel=0.25), name


def test_each_named_control_moves_its_feature():
    m = _model()
    rest = m.landmarks(_c())
    width = lambda v: v[291, 0] - v[61, 0]  # noqa: E731
    lip_thickness = lambda v: (v[13, 1] - v[0, 1]) + (v[17, 1] - v[14, 1])  # noqa: E731
    assert width(m.landmarks(_c(mouth_width=0.5))) > width(rest) + 0.05
    puck = m.landmarks(_c(lip_pucker=0.5))
    assert width(puck) < width(rest) - 0.03 and puck[0, 2] < rest[0, 2] - 0.02
    assert m.landmarks(_c(upper_lip_raise=0.5))[0, 1] < rest[0, 1] - 0.02
    assert m.landmarks(_c(lower_lip_depress=0.5))[17, 1] > rest[17, 1] + 0.02
    assert lip_thickness(m.landmarks(_c(lip_press=0.5))) < lip_thickness(rest) - 0.02
    smile = m.landmarks(_c(smile=0.5))
    assert smile[61, 1] < rest[61, 1] - 0.02 and smile[291, 1] < rest[291, 1] - 0.02


def test_interior_vertices_follow_the_lips():
    m = _model()
    closed, opened = m.vertices(_c()), m.vertices(_c(jaw_open=0.8))
    assert len(closed) == topo.n_model_vertices()
    interior = slice(topo.N_LANDMARKS, None)
    # The cavity lies between the lips in y and behind them in z.
    ys = opened[interior, 1]
    assert ys.min() >= opened[topo.UPPER_INNER_LIP, 1].min() - 1e-6
    assert ys.max() <= opened[topo.LOWER_INNER_LIP, 1].max() + 1e-6
    assert opened[interior, 2].mean() > opened[topo.UPPER_INNER_LIP + topo.LOWER_INNER_LIP, 2].mean()
