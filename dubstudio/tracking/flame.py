"""Loader and numpy forward model for a user-supplied FLAME head model.

FLAME (Li et al. 2017, https://flame.is.tue.mpg.de) is licensed per user, so
DubStudio never ships it: the user points us at their own ``generic_model.pkl``
/ ``flame2023.pkl``.  That file is a Python-2 era pickle of a dict:

    v_template (V,3)  f (F,3)  shapedirs (V,3,K: shape then 100 expression)
    posedirs (V,3,9*(J-1))  J_regressor (J,V) scipy.sparse  weights (V,J)
    kintree_table (2,J)  [bs_style='lbs', bs_type='lrotmin']

Some arrays are chumpy ``Ch`` objects.  We unpickle them WITHOUT chumpy: a
restricted ``Unpickler`` maps chumpy classes to a stand-in holding the pickled
``__dict__`` and we take the array from its ``'x'`` entry.  The unpickler
only admits the numpy / scipy.sparse / builtin names such files use, so a
hostile pickle cannot run code.

The forward model is written from the FLAME/SMPL papers (own implementation):
blendshapes, pose correctives from ``(R_j - I)`` of the non-root joints,
joints regressed from the shaped mesh, and linear blend skinning.
"""

from __future__ import annotations

import codecs
import copyreg
import importlib
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dubstudio.core.errors import DubStudioError

JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")
DEFAULT_N_EXPR = 100
_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")


class FlameModelError(DubStudioError):
    """A FLAME model (or landmark embedding) file is missing, unreadable or malformed."""


# --------------------------------------------------------------------------- unpickling

class _ChumpyStandIn:
    """Placeholder for a chumpy object; keeps the pickled state only."""

    chumpy_class = "chumpy.?"

    def __setstate__(self, state):
        self.state = state

    def to_array(self) -> np.ndarray:
        state = getattr(self, "state", None)
        if not isinstance(state, dict) or "x" not in state:
            raise FlameModelError(
                f"The FLAME file contains a chumpy '{self.chumpy_class}' object that cannot be read "
                "without chumpy (only plain chumpy.ch.Ch arrays are supported). Re-save the model "
                "with plain numpy arrays, or use the official FLAME2020/FLAME2023 pickle.")
        return _plain(state["x"])


_stand_ins: dict[str, type] = {}

_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}
_BUILTIN_NAMES = {"object", "set", "frozenset", "list", "dict", "tuple", "slice",
                  "int", "float", "complex", "bool", "str", "bytes", "bytearray"}
_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix"}


class _FlameUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        root = module.split(".")[0]
        if root == "chumpy":
            key = f"{module}.{name}"
            if key not in _stand_ins:
                _stand_ins[key] = type(name, (_ChumpyStandIn,), {"chumpy_class": key})
            return _stand_ins[key]
        if root == "scipy" and module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
            return getattr(sp, name)  # old files say scipy.sparse.csc.csc_matrix
        if root == "numpy" and name in _NUMPY_NAMES:
            for mod in (module, module.replace("numpy._core", "numpy.core")):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
        if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
                              ("copyreg", "__newobj__")}:
            return getattr(copyreg, name)
        if (module, name) == ("_codecs", "encode"):  # bytes written by Python 3 at protocol <= 2
            return codecs.encode
        if module in ("__builtin__", "builtins") and name in _BUILTIN_NAMES:
            return super().find_class(module, name)
        raise FlameModelError(
            f"The FLAME file refers to '{module}.{name}', which a FLAME model never contains; "
            "refusing to load it (is this really a FLAME .pkl?).")


def _plain(obj):
    """Turn chumpy stand-ins (possibly nested) into ndarrays; leave the rest alone."""
    if isinstance(obj, _ChumpyStandIn):
        return obj.to_array()
    if sp.issparse(obj):
        return obj
    return np.asarray(obj)


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FlameModelError(f"FLAME model file not found: {path}. Download FLAME from "
                              "https://flame.is.tue.mpg.de and point DubStudio at generic_model.pkl.")
    try:
        with path.open("rb") as fh:
            data = _FlameUnpickler(fh, encoding="latin1").load()
    except FlameModelError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, ... from garbage input
        raise FlameModelError(f"{path} is not a readable FLAME pickle ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(data, dict):
        raise FlameModelError(f"{path} is a pickle of {type(data).__name__}, not a FLAME model dict.")
    return data


# --------------------------------------------------------------------------- math

def rodrigues(rotvecs: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (N,3) -> rotation matrices (N,3,3)."""
    r = np.asarray(rotvecs, dtype=np.float64).reshape(-1, 3)
    theta = np.linalg.norm(r, axis=1)
    safe = np.where(theta < 1e-12, 1.0, theta)
    k = r / safe[:, None]
    kx = np.zeros((len(r), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx = kx - kx.transpose(0, 2, 1)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3) + s * kx + (1.0 - c) * (kx @ kx)


class FlameModel:
    """FLAME head model in float64 numpy. Build with :func:`load_flame`."""

    def __init__(self, v_template, faces, shapedirs, posedirs, j_regressor, weights, parents,
                 n_expr: int = DEFAULT_N_EXPR):
        self.v_template = v_template
        self._faces = faces
        self.shapedirs = shapedirs
        self.posedirs = posedirs
        self.j_regressor = j_regressor  # (J,V)
        self.weights = weights
        self.parents = parents
        self._n_expr = n_expr
        self.lmk_face_idx: np.ndarray | None = None
        self.lmk_b_coords: np.ndarray | None = None
        self.landmark_indices: np.ndarray | None = None

    n_vertices = property(lambda self: self.v_template.shape[0])
    faces = property(lambda self: self._faces)
    n_joints = property(lambda self: len(self.parents))
    n_expr = property(lambda self: self._n_expr)
    n_shape = property(lambda self: self.shapedirs.shape[2] - self._n_expr)

    def _coeffs(self, values, n: int, what: str) -> np.ndarray:
        out = np.zeros(n)
        if values is not None:
            v = np.asarray(values, dtype=np.float64).ravel()
            if v.size > n:
                raise FlameModelError(f"{v.size} {what} parameters given but the model has {n}.")
            out[:v.size] = v
        return out

    def shaped(self, shape=None, expression=None) -> np.ndarray:
        """Template plus shape and expression blendshapes, (V,3)."""
        coeffs = np.concatenate([self._coeffs(shape, self.n_shape, "shape"),
                                 self._coeffs(expression, self.n_expr, "expression")])
        return self.v_template + self.shapedirs @ coeffs

    def joints(self, shape=None, expression=None) -> np.ndarray:
        """Rest-pose joint locations (J,3) regressed from the shaped mesh."""
        return self.j_regressor @ self.shaped(shape, expression)

    def forward(self, shape=None, expression=None, pose=None, translation=None) -> np.ndarray:
        """Posed vertices (V,3).

        shape (<=n_shape,), expression (<=n_expr,): zero-padded coefficients.
        pose (3*J,) or (J,3): axis-angles for global, neck, jaw, eye_left, eye_right.
        translation (3,): added last.
        """
        v_shaped = self.shaped(shape, expression)
        joints = self.j_regressor @ v_shaped
        n_j = self.n_joints
        p = np.zeros(3 * n_j) if pose is None else np.asarray(pose, dtype=np.float64).ravel()
        if p.size != 3 * n_j:
            raise FlameModelError(f"pose must have {3 * n_j} values ({n_j} axis-angles), got {p.size}.")
        rots = rodrigues(p)
        v_posed = v_shaped + self.posedirs @ (rots[1:] - np.eye(3)).ravel()

        world = np.zeros((n_j, 4, 4))  # joint -> world transform, chained down the tree
        for j in range(n_j):
            local = np.eye(4)
            local[:3, :3] = rots[j]
            parent = self.parents[j]
            local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0.0)
            world[j] = local if parent < 0 else world[parent] @ local
        skin = world.copy()  # rest-pose -> posed transform per joint
        skin[:, :3, 3] -= np.einsum("jab,jb->ja", world[:, :3, :3], joints)

        per_vertex = np.einsum("vj,jab->vab", self.weights, skin)
        out = np.einsum("vab,vb->va", per_vertex[:, :3, :3], v_posed) + per_vertex[:, :3, 3]
        if translation is not None:
            out = out + np.asarray(translation, dtype=np.float64).reshape(3)
        return out

    def jaw_open(self, angle_rad: float, shape=None, expression=None) -> np.ndarray:
        """Vertices with the jaw rotated by ``angle_rad`` about its x axis (positive opens)."""
        pose = np.zeros(3 * self.n_joints)
        pose[6] = angle_rad
        return self.forward(shape, expression, pose)

    # ----------------------------------------------------------------- landmarks

    def load_landmark_embedding(self, npz_path) -> tuple[np.ndarray, np.ndarray]:
        """Read a mediapipe->FLAME embedding (lmk_face_idx, lmk_b_coords, landmark_indices)."""
        path = Path(npz_path)
        if not path.is_file():
            raise FlameModelError(f"Landmark embedding file not found: {path}.")
        try:
            with np.load(path, allow_pickle=False) as z:
                face_idx = np.asarray(z["lmk_face_idx"], dtype=np.int64).ravel()
                bary = np.asarray(z["lmk_b_coords"], dtype=np.float64)
                mp_idx = np.asarray(z["landmark_indices"], dtype=np.int64).ravel() \
                    if "landmark_indices" in z.files else np.arange(len(face_idx))
        except KeyError as exc:
            raise FlameModelError(f"{path} lacks key {exc}; expected lmk_face_idx and lmk_b_coords.") from exc
        except Exception as exc:
            raise FlameModelError(f"{path} is not a readable landmark embedding .npz ({exc}).") from exc
        n = len(face_idx)
        if bary.shape != (n, 3) or len(mp_idx) != n:
            raise FlameModelError(f"{path}: lmk_b_coords must be ({n},3) and landmark_indices ({n},).")
        if n and (face_idx.min() < 0 or face_idx.max() >= len(self._faces)):
            raise FlameModelError(f"{path}: face index out of range for a mesh with {len(self._faces)} faces.")
        self.lmk_face_idx, self.lmk_b_coords, self.landmark_indices = face_idx, bary, mp_idx
        return face_idx, bary

    def landmarks(self, vertices: np.ndarray) -> np.ndarray:
        """Embedded landmark positions (L,3) on a posed mesh from :meth:`forward`."""
        if self.lmk_face_idx is None:
            raise FlameModelError("No landmark embedding loaded; call load_landmark_embedding first.")
        tri = np.asarray(vertices)[self._faces[self.lmk_face_idx]]  # (L,3 corners,3)
        return np.einsum("lk,lkc->lc", self.lmk_b_coords, tri)


# --------------------------------------------------------------------------- loading

def load_flame(path, n_expr: int = DEFAULT_N_EXPR) -> FlameModel:
    """Load a FLAME ``.pkl``. The last ``n_expr`` shapedirs are expression, the rest shape."""
    path = Path(path)
    data = _read_pickle(path)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise FlameModelError(f"{path} is missing FLAME keys {missing}; is it a FLAME model file?")
    if str(data.get("bs_style", "lbs")) != "lbs" or str(data.get("bs_type", "lrotmin")) != "lrotmin":
        raise FlameModelError(f"{path}: unsupported blend style {data.get('bs_style')}/{data.get('bs_type')}.")

    def arr(key, dtype=np.float64):
        try:
            return np.asarray(_plain(data[key]), dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise FlameModelError(f"{path}: '{key}' is not a numeric array ({exc}).") from exc

    def need(ok: bool, what: str):
        if not ok:
            raise FlameModelError(f"{path}: malformed FLAME model, {what}.")

    v_template = arr("v_template")
    need(v_template.ndim == 2 and v_template.shape[1] == 3, f"v_template has shape {v_template.shape}")
    n_v = v_template.shape[0]
    faces = arr("f", np.int64)
    need(faces.ndim == 2 and faces.shape[1] == 3, f"f has shape {faces.shape}")
    need(faces.size == 0 or (faces.min() >= 0 and faces.max() < n_v), "f indexes past the vertices")
    shapedirs = arr("shapedirs")
    need(shapedirs.ndim == 3 and shapedirs.shape[:2] == (n_v, 3), f"shapedirs has shape {shapedirs.shape}")
    need(0 <= n_expr <= shapedirs.shape[2], f"shapedirs has {shapedirs.shape[2]} components, n_expr={n_expr}")
    kintree = arr("kintree_table", np.int64)
    need(kintree.ndim == 2 and kintree.shape[0] == 2 and kintree.shape[1] >= 1,
         f"kintree_table has shape {kintree.shape}")
    n_j = kintree.shape[1]
    order = kintree[1]
    need(np.array_equal(order, np.arange(n_j)), "kintree_table row 1 is not 0..J-1")
    parents = kintree[0].copy()
    parents[0] = -1  # the root is stored as 2**32-1 (or -1)
    need(all(0 <= parents[j] < j for j in range(1, n_j)), "kintree_table parents are not in tree order")
    posedirs = arr("posedirs")
    need(posedirs.shape == (n_v, 3, 9 * (n_j - 1)), f"posedirs has shape {posedirs.shape}")
    weights = arr("weights")
    need(weights.shape == (n_v, n_j), f"weights has shape {weights.shape}, expected ({n_v}, {n_j})")
    try:  # a scipy.sparse matrix in the real file; tiny (J x V), so keep it dense
        jreg = data["J_regressor"]
        jreg = np.asarray(jreg.toarray() if sp.issparse(jreg) else _plain(jreg), dtype=np.float64)
    except (TypeError, ValueError, AttributeError) as exc:
        raise FlameModelError(f"{path}: 'J_regressor' is not a numeric matrix ({exc}).") from exc
    need(jreg.shape == (n_j, n_v), f"J_regressor has shape {jreg.shape}, expected ({n_j}, {n_v})")
    return FlameModel(v_template, faces, shapedirs, posedirs, jreg, weights, parents, n_expr)
