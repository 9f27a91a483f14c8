"""FLAME loader + forward model, on a tiny generated FLAME-format pickle (the real model is licensed)."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.transform import Rotation

from dubstudio.core.errors import DubStudioError
from dubstudio.tracking.flame import FlameModelError, load_flame

V, J = 20, 5
JAW = 2
# vertex groups fully skinned to one joint; vertices 16..19 get mixed weights
GROUPS = {0: range(0, 4), 1: range(4, 8), 2: range(8, 12), 3: range(12, 14), 4: range(14, 16)}


def make_arrays(posedirs_scale=0.0, seed=0):
    rng = np.random.default_rng(seed)
    weights = np.zeros((V, J))
    for j, idx in GROUPS.items():
        weights[list(idx), j] = 1.0
    weights[16:] = rng.dirichlet(np.ones(J), size=4)
    weights[16, JAW] = 0.0  # make sure one mixed vertex ignores the jaw
    weights[16] /= weights[16].sum()
    reg = np.zeros((J, V))
    for j, idx in GROUPS.items():
        reg[j, list(idx)] = 1.0 / len(idx)
    return {
        "v_template": rng.uniform(-1, 1, (V, 3)),
        "f": np.array([[i, i + 1, i + 2] for i in range(V - 2)], dtype=np.uint32),
        "shapedirs": rng.normal(0, 0.01, (V, 3, 400)),
        "posedirs": rng.normal(0, posedirs_scale, (V, 3, 36)) if posedirs_scale else np.zeros((V, 3, 36)),
        "J_regressor": sp.csc_matrix(reg),
        "weights": weights,
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


class FakeCh:
    """Pickles exactly like chumpy.ch.Ch: class reference + __dict__ state with the array in 'x'."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}


FakeCh.__module__, FakeCh.__name__, FakeCh.__qualname__ = "chumpy.ch", "Ch", "Ch"


def dump_with_fake_chumpy(obj, path, monkeypatch, protocol=2, extra_classes=()):
    """Pickle referencing chumpy.* classes, with fake chumpy modules present only while dumping."""
    with monkeypatch.context() as m:
        pkg, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
        ch.Ch = FakeCh
        m.setitem(sys.modules, "chumpy", pkg)
        m.setitem(sys.modules, "chumpy.ch", ch)
        for modname, cls in extra_classes:
            mod = types.ModuleType(modname)
            setattr(mod, cls.__name__, cls)
            m.setitem(sys.modules, modname, mod)
        path.write_bytes(pickle.dumps(obj, protocol=protocol))


@pytest.fixture
def flame_pkl(tmp_path):
    data = make_arrays()
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    return path, data


@pytest.fixture
def posed_pkl(tmp_path):
    data = make_arrays(posedirs_scale=0.05, seed=1)
    path = tmp_path / "posed.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path, data


def rest_joints(data):
    return data["J_regressor"].toarray() @ data["v_template"]


def test_loads_plain(flame_pkl):
    path, data = flame_pkl
    m = load_flame(path)
    assert (m.n_vertices, m.n_shape, m.n_expr, m.n_joints) == (V, 300, 100, 5)
    assert m.faces.shape == (V - 2, 3) and m.faces.dtype == np.int64
    assert list(m.parents) == [-1, 0, 1, 1, 1]


@pytest.mark.parametrize("protocol", [0, 2])
def test_loads_chumpy_without_chumpy(tmp_path, monkeypatch, protocol):
    data = make_arrays(posedirs_scale=0.05)
    wrapped = dict(data, **{k: FakeCh(data[k]) for k in ("v_template", "shapedirs", "posedirs", "weights")})
    path = tmp_path / "flame_chumpy.pkl"
    dump_with_fake_chumpy(wrapped, path, monkeypatch, protocol=protocol)
    assert b"chumpy.ch" in path.read_bytes()
    monkeypatch.setitem(sys.modules, "chumpy", None)  # any `import chumpy` now fails
    monkeypatch.setitem(sys.modules, "chumpy.ch", None)
    m = load_flame(path)
    np.testing.assert_array_equal(m.shapedirs, data["shapedirs"])
    np.testing.assert_array_equal(m.posedirs, data["posedirs"])
    np.testing.assert_allclose(m.forward(), data["v_template"])


def test_zero_params_give_template(flame_pkl):
    path, data = flame_pkl
    m = load_flame(path)
    out = m.forward(np.zeros(300), np.zeros(100), np.zeros(15), np.zeros(3))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, data["v_template"], atol=1e-12)
    np.testing.assert_allclose(m.forward(), data["v_template"], atol=1e-12)


def test_shape_and_expression_blendshapes_are_linear(flame_pkl):
    path, data = flame_pkl
    m = load_flame(path)
    rng = np.random.default_rng(5)
    beta, psi = rng.normal(size=10), rng.normal(size=7)  # short vectors are zero-padded
    sd = data["shapedirs"]
    np.testing.assert_allclose(m.forward(shape=beta), data["v_template"] + sd[:, :, :10] @ beta, atol=1e-12)
    np.testing.assert_allclose(m.forward(expression=psi), data["v_template"] + sd[:, :, 300:307] @ psi, atol=1e-12)
    both = m.forward(beta, psi) - data["v_template"]
    np.testing.assert_allclose(both, (m.forward(beta) - data["v_template"]) + (m.forward(None, psi) - data["v_template"]),
                               atol=1e-12)
    with pytest.raises(FlameModelError, match="shape"):
        m.forward(shape=np.zeros(301))


def test_jaw_rotation_moves_only_jaw_vertices(flame_pkl):
    path, data = flame_pkl
    m = load_flame(path)
    angle = 0.3
    out = m.jaw_open(angle)
    pose = np.zeros(15)
    pose[6] = angle
    np.testing.assert_allclose(out, m.forward(pose=pose))
    v, w = data["v_template"], data["weights"][:, JAW]
    rot = Rotation.from_rotvec([angle, 0, 0])
    jaw_j = rest_joints(data)[JAW]
    expected = w[:, None] * (rot.apply(v - jaw_j) + jaw_j) + (1 - w[:, None]) * v
    np.testing.assert_allclose(out, expected, atol=1e-12)
    still = w == 0
    assert still.sum() >= 13
    np.testing.assert_array_equal(out[still], v[still])
    assert np.all(np.linalg.norm(out[list(GROUPS[JAW])] - v[list(GROUPS[JAW])], axis=1) > 1e-6)


def test_neck_rotation_carries_the_jaw(flame_pkl):
    path, data = flame_pkl
    m = load_flame(path)
    rv = np.array([0.0, 0.4, 0.1])
    pose = np.zeros(15)
    pose[3:6] = rv
    out = m.forward(pose=pose)
    neck = rest_joints(data)[1]
    idx = list(GROUPS[JAW]) + list(GROUPS[1])
    v = data["v_template"][idx]
    np.testing.assert_allclose(out[idx], Rotation.from_rotvec(rv).apply(v - neck) + neck, atol=1e-12)


def test_pose_correctives_use_rotation_minus_identity(posed_pkl):
    path, data = posed_pkl
    m = load_flame(path)
    jaw_rv = np.array([0.25, -0.05, 0.02])
    pose = np.zeros(15)
    pose[6:9] = jaw_rv
    rmat = Rotation.from_rotvec(jaw_rv).as_matrix()
    feature = np.zeros(36)
    feature[9:18] = (rmat - np.eye(3)).ravel()  # joints 1..4, jaw is the 2nd block
    v_posed = data["v_template"] + np.einsum("vck,k->vc", data["posedirs"], feature)
    w = data["weights"][:, JAW][:, None]
    jaw_j = rest_joints(data)[JAW]
    expected = w * ((v_posed - jaw_j) @ rmat.T + jaw_j) + (1 - w) * v_posed
    np.testing.assert_allclose(m.forward(pose=pose), expected, atol=1e-12)


def test_global_rotation_rotates_everything_about_root(posed_pkl):
    path, data = posed_pkl
    m = load_flame(path)
    rv, t = np.array([0.2, -0.7, 0.35]), np.array([0.5, -1.0, 2.0])
    pose = np.zeros(15)
    pose[:3] = rv
    root = rest_joints(data)[0]
    expected = Rotation.from_rotvec(rv).apply(data["v_template"] - root) + root + t
    np.testing.assert_allclose(m.forward(pose=pose, translation=t), expected, atol=1e-12)
    np.testing.assert_allclose(m.forward(pose=pose.reshape(5, 3), translation=t), expected, atol=1e-12)
    with pytest.raises(FlameModelError, match="15"):
        m.forward(pose=np.zeros(12))


def test_landmark_embedding(flame_pkl, tmp_path):
    path, data = flame_pkl
    m = load_flame(path)
    face_idx = np.array([0, 5, 17])
    bary = np.array([[1, 0, 0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    npz = tmp_path / "mediapipe_landmark_embedding.npz"
    np.savez(npz, lmk_face_idx=face_idx, lmk_b_coords=bary, landmark_indices=np.array([1, 33, 263]))
    fi, bc = m.load_landmark_embedding(npz)
    np.testing.assert_array_equal(fi, face_idx)
    verts = m.jaw_open(0.2)
    tri = verts[data["f"][face_idx].astype(int)]
    np.testing.assert_allclose(m.landmarks(verts), (bary[:, :, None] * tri).sum(1))
    assert list(m.landmark_indices) == [1, 33, 263]
    np.savez(npz, lmk_face_idx=face_idx)
    with pytest.raises(FlameModelError, match="lmk_b_coords"):
        m.load_landmark_embedding(npz)


def test_error_missing_file(tmp_path):
    with pytest.raises(FlameModelError, match="not found"):
        load_flame(tmp_path / "nope.pkl")


@pytest.mark.parametrize("payload", [b"", b"this is not a pickle\x00\x01\x02", os.urandom(256)])
def test_error_garbage_file(tmp_path, payload):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(payload)
    with pytest.raises(DubStudioError):
        load_flame(path)


def test_error_not_a_dict_and_missing_keys(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(FlameModelError, match="not a FLAME model dict"):
        load_flame(path)
    data = make_arrays()
    del data["posedirs"], data["weights"]
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(FlameModelError, match="posedirs"):
        load_flame(path)


@pytest.mark.parametrize("key, bad", [("weights", np.ones((V, 4))), ("posedirs", np.zeros((V, 3, 35))),
                                      ("shapedirs", np.zeros((V + 1, 3, 400))), ("f", np.array([[0, 1, V]]))])
def test_error_shape_mismatch(tmp_path, key, bad):
    data = make_arrays()
    data[key] = bad
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(FlameModelError, match=key):
        load_flame(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_refuses_foreign_classes(tmp_path, monkeypatch):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(dict(make_arrays(), extra=_Evil())))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FlameModelError, match="system"):
        load_flame(path)
    assert not (tmp_path / "pwned").exists()


def test_unsupported_chumpy_class_is_named(tmp_path, monkeypatch):
    class add:  # a chumpy expression node: no 'x' in its state
        def __init__(self, a, b):
            self.a, self.b = a, b

    add.__module__, add.__qualname__ = "chumpy.ch_ops", "add"
    data = make_arrays()
    data["shapedirs"] = add(FakeCh(data["shapedirs"]), FakeCh(np.zeros_like(data["shapedirs"])))
    path = tmp_path / "ops.pkl"
    dump_with_fake_chumpy(data, path, monkeypatch, extra_classes=[("chumpy.ch_ops", add)])
    with pytest.raises(FlameModelError, match="chumpy.ch_ops.add"):
        load_flame(path)
