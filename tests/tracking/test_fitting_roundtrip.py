"""The fitter recovers known pose and expression from synthetic landmarks."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dubstudio.tracking import fitting
from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.tracking.face_model import FaceModel, Pose
from dubstudio.tracking.template import load_template


def _synth(model, rng, jaw, noise_px=0.3):
    c = np.zeros(len(CONTROL_NAMES))
    c[0] = jaw
    c[1:] = rng.normal(0, 0.1, len(c) - 1)
    rot = Rotation.from_euler("xyz", rng.normal(0, 8, 3), degrees=True).as_matrix()
    pose = Pose(120.0, rot, np.array([256.0, 240.0, 0.0]))
    pts = pose.apply(model.landmarks(c)) + rng.normal(0, noise_px, (478, 3))
    return pts, pose, c


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3))
    rot = Rotation.from_rotvec([0.2, -0.3, 0.1]).as_matrix()
    dst = 3.0 * src @ rot.T + np.array([1, 2, 3])
    p = fitting.umeyama(src, dst, np.ones(50))
    assert p.scale == pytest.approx(3.0)
    np.testing.assert_allclose(p.rotation, rot, atol=1e-9)


@pytest.mark.parametrize("jaw", [0.0, 0.3, 0.7])
def test_fit_recovers_jaw_and_pose(jaw):
    rng = np.random.default_rng(int(jaw * 10))
    model = FaceModel(load_template().vertices)
    pts, pose, c = _synth(model, rng, jaw)
    fit = fitting.Fitter(model).fit(pts, iters=3)
    assert fit.controls[0] == pytest.approx(jaw, abs=0.04)
    assert fit.pose.scale == pytest.approx(pose.scale, rel=0.02)
    angle = np.linalg.norm(Rotation.from_matrix(fit.pose.rotation @ pose.rotation.T).as_rotvec())
    assert np.degrees(angle) < 1.5
    pred = fit.pose.apply(model.landmarks(fit.controls, fit.residual))
    iod = np.linalg.norm(pts[33, :2] - pts[263, :2])
    assert np.sqrt(np.mean(np.sum((pred[:, :2] - pts[:, :2]) ** 2, 1))) / iod < 0.01


def test_identity_is_solved_from_closed_mouth_frames():
    rng = np.random.default_rng(5)
    model = FaceModel(load_template().vertices)
    frames = [_synth(model, rng, j, noise_px=0.2)[0] for j in [0.0, 0.0, 0.0, 0.5, 0.8, 0.6, 0.4, 0.7, 0.9, 0.3]]
    ident = fitting.solve_identity(frames, load_template().vertices, closed_fraction=0.3)
    # Closed-mouth frames have random small lip controls, so the mean opening stays small.
    assert fitting.mouth_opening(ident) < fitting.mouth_opening(model.landmarks(np.r_[0.3, np.zeros(6)]))
