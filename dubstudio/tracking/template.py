"""The canonical face template and our own UV layout.

The template is mediapipe FaceMesh's 478-point reconstruction of a public-domain portrait
shipped inside scikit-image (NASA astronaut Eileen Collins), put into a canonical frame:
origin between the outer eye corners, x to the image right, y down, z into the screen
(right-handed), inter-ocular distance (outer eye corners) = 1. No test media is involved.
``python -m dubstudio.tracking.template`` rebuilds ``resources/face_template.npz``.

The UV layout is per triangle corner (like an OBJ's ``vt`` indices): the surface gets a
cylindrical unwrap in the top of the atlas, the mouth interior a rectangle of its own at the
bottom, so the lip vertices that border both get two UVs.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dubstudio.core import paths
from dubstudio.tracking import topology as topo

TEMPLATE_FILE = paths.RESOURCES / "face_template.npz"

# Atlas regions (u, v in [0, 1], v down).
SURFACE_REGION = (0.02, 0.02, 0.98, 0.78)  # u0, v0, u1, v1
INTERIOR_REGION = (0.10, 0.82, 0.90, 0.98)


@dataclass(frozen=True)
class Template:
    vertices: np.ndarray  # (478, 3) canonical
    uv: np.ndarray  # (n_uv, 2) atlas coordinates
    tri_uv: np.ndarray  # (n_triangles, 3) indices into uv, aligned with topology.all_triangles()


def canonical_frame(points: np.ndarray) -> np.ndarray:
    """Express 478 landmarks (any similarity frame) in the canonical frame described above."""
    p = np.asarray(points, dtype=np.float64)
    a, b = p[topo.OUTER_EYE_CORNERS[0]], p[topo.OUTER_EYE_CORNERS[1]]
    origin = (a + b) / 2
    x = (b - a) / np.linalg.norm(b - a)
    down = p[topo.CHIN] - origin
    y = down - x * (down @ x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    rot = np.stack([x, y, z])  # rows: new axes
    return (p - origin) @ rot.T / np.linalg.norm(b - a)


def _uv_layout(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_surface = topo.N_LANDMARKS
    v = vertices
    # Cylinder around a vertical axis behind the nose; the unwrap angle spans ~±100°.
    axis_z = v[topo.NOSE_TIP, 2] + 1.1
    theta = np.arctan2(v[:, 0], axis_z - v[:, 2])
    u = theta / np.deg2rad(200) + 0.5
    vv = v[:, 1]
    u0, v0, u1, v1 = SURFACE_REGION
    u = u0 + (u - u.min()) / (u.max() - u.min()) * (u1 - u0)
    vv = v0 + (vv - vv.min()) / (vv.max() - vv.min()) * (v1 - v0)
    surface_uv = np.stack([u, vv], axis=1)

    # Interior grid: one UV per (row, column), rows 0 (upper lip) .. R+1 (lower lip).
    n_cols = len(topo.UPPER_INNER_LIP)
    rows = topo.INTERIOR_ROWS + 2
    iu0, iv0, iu1, iv1 = INTERIOR_REGION
    grid = np.array(
        [
            [iu0 + c / (n_cols - 1) * (iu1 - iu0), iv0 + r / (rows - 1) * (iv1 - iv0)]
            for r in range(rows)
            for c in range(n_cols)
        ]
    )
    uv = np.concatenate([surface_uv, grid])

    # Map each interior triangle's vertex ids back to (row, col) grid UVs.
    vid_to_rc: dict[int, tuple[int, int]] = {}
    for c, vid in enumerate(topo.UPPER_INNER_LIP):
        vid_to_rc.setdefault(vid, (0, c))
    for c, vid in enumerate(topo.LOWER_INNER_LIP[1:-1], start=1):
        vid_to_rc[vid] = (rows - 1, c)
    for r in range(1, rows - 1):
        for c in range(1, n_cols - 1):
            vid_to_rc[topo.interior_vertex_index(r, c)] = (r, c)
    # Corners sit between the rows: put them at mid height of the interior region.
    corner_uv_rows = {topo.UPPER_INNER_LIP[0]: 0, topo.UPPER_INNER_LIP[-1]: n_cols - 1}
    extra = []
    for vid, c in corner_uv_rows.items():
        extra.append([iu0 + c / (n_cols - 1) * (iu1 - iu0), (iv0 + iv1) / 2])
    uv = np.concatenate([uv, np.asarray(extra)])
    corner_uv_index = {
        vid: len(uv) - len(extra) + k for k, vid in enumerate(corner_uv_rows)
    }

    tri_surface = topo.surface_triangles()
    tri_interior = topo.interior_triangles()
    tri_uv_int = np.zeros_like(tri_interior)
    for t, tri in enumerate(tri_interior):
        for k, vid in enumerate(tri):
            if vid in corner_uv_index:
                tri_uv_int[t, k] = corner_uv_index[vid]
            else:
                r, c = vid_to_rc[int(vid)]
                tri_uv_int[t, k] = n_surface + r * n_cols + c
    tri_uv = np.concatenate([tri_surface, tri_uv_int]).astype(np.int32)
    return uv.astype(np.float32), tri_uv


def build_template() -> Template:
    """Run FaceMesh on the bundled public-domain portrait and canonicalise the result."""
    import mediapipe as mp
    from skimage import data

    img = data.astronaut()
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1
    ) as mesh:
        result = mesh.process(img)
    if not result.multi_face_landmarks:
        raise RuntimeError("FaceMesh found no face in the template portrait")
    pts = np.array([[p.x * w, p.y * h, p.z * w] for p in result.multi_face_landmarks[0].landmark])
    vertices = canonical_frame(pts)
    uv, tri_uv = _uv_layout(vertices)
    return Template(vertices.astype(np.float32), uv, tri_uv)


def save_template(t: Template, path: Path = TEMPLATE_FILE) -> None:
    from dubstudio.io.atomic import atomic_save_npz

    atomic_save_npz(path, vertices=t.vertices, uv=t.uv, tri_uv=t.tri_uv)


@functools.lru_cache(maxsize=1)
def load_template(path: Path = TEMPLATE_FILE) -> Template:
    if not Path(path).exists():
        raise FileNotFoundError(
            f"{path} is missing; rebuild it with `python -m dubstudio.tracking.template`"
        )
    with np.load(path) as z:
        return Template(z["vertices"], z["uv"], z["tri_uv"])


if __name__ == "__main__":
    tpl = build_template()
    save_template(tpl)
    print(f"wrote {TEMPLATE_FILE}: {tpl.vertices.shape[0]} vertices, {len(tpl.uv)} uvs", file=sys.stderr)
