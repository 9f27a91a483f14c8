"""Per-shot mesh geometry the viewer draws: edges, triangle groups, grey-face shading (Qt-free).

Everything slow (the face model's regions, mediapipe's topology) is computed once per shot in
``MeshGeometry.build``, which the GUI runs in a worker thread; the per-frame functions below are
a few hundred microseconds, so the viewer can follow every edit and every playhead move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dubstudio.tracking import topology as topo
from dubstudio.tracking.crops import triangle_groups
from dubstudio.tracking.face_model import FaceModel
from dubstudio.tracking.result import Tracking

# Direction *towards* the light in image space (x right, y down, z into the screen): from the
# camera, a little up and to the left, like a key light.
LIGHT = np.array([-0.35, -0.45, -1.0]) / np.linalg.norm([-0.35, -0.45, -1.0])
AMBIENT = 0.18


def warm_topology() -> None:
    """Parse mediapipe's tessellation once (about 0.1 s, most of it holding the GIL)."""
    topo.all_triangles()


@dataclass
class MeshGeometry:
    """What the viewer needs to draw one tracked shot's face model on any frame."""

    model: FaceModel
    triangles: np.ndarray  # (T, 3) int32: surface triangles, then the mouth interior
    n_surface: int
    edges: np.ndarray  # (E, 2) unique edges of all triangles
    lower: np.ndarray  # (L, 3) lower-face triangles (mask region 1)
    mouth: np.ndarray  # (M, 3) lips + mouth interior (mask region 2)

    @classmethod
    def build(cls, tracking: Tracking) -> MeshGeometry:
        model = tracking.model()
        tris = topo.all_triangles()
        e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
        edges = np.unique(np.sort(e, axis=1), axis=0)
        lower, mouth = triangle_groups(model.identity)
        return cls(model, tris, len(topo.surface_triangles()), edges, lower, mouth)

    def vertices(self, tracking: Tracking, i: int, controls: np.ndarray | None = None) -> np.ndarray:
        """(514, 3) image-space vertices of frame ``i`` with the given (edited) controls."""
        return tracking.vertices_image(i, controls=controls, model=self.model)


def shade_triangles(verts: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat Lambert shading for a painter's-algorithm draw of ``triangles``.

    Returns ``(order, shade)``: triangle indices from far to near (by mean depth, z into the
    screen) and a brightness in [0, 1] per triangle (same indexing as ``triangles``). Normals
    are turned towards the camera, so the result does not depend on the winding.
    """
    p = verts[triangles]  # (T, 3, 3)
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    norm = np.linalg.norm(n, axis=1)
    n = n / np.where(norm > 0, norm, 1.0)[:, None]
    n *= np.where(n[:, 2] > 0, -1.0, 1.0)[:, None]  # face the camera (z points away from it)
    lambert = np.clip(n @ LIGHT, 0.0, 1.0)
    shade = AMBIENT + (1.0 - AMBIENT) * lambert
    order = np.argsort(-p[:, :, 2].mean(axis=1), kind="stable")
    return order, shade
