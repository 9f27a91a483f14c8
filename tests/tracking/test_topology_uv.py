"""The mesh topology and UV layout of the face model."""

from collections import Counter

import numpy as np

from dubstudio.tracking import topology as topo
from dubstudio.tracking.template import INTERIOR_REGION, SURFACE_REGION, load_template


def test_tessellation_has_852_triangles_over_478_landmarks():
    tris = topo.surface_triangles()
    assert tris.shape == (852, 3)
    assert tris.min() >= 0 and tris.max() < 468  # iris points are not part of the surface
    assert all(len(set(t)) == 3 for t in tris)


def test_shipped_triangles_are_mediapipes_tessellation():
    """resources/face_triangles.npy (what runs, even without mediapipe's .py sources) is what the
    installed mediapipe's source lists, in the same order and winding."""
    assert np.array_equal(topo.surface_triangles(), topo.triangles_from_mediapipe())


def test_all_triangles_are_consistently_wound_and_close_the_mouth():
    tris = topo.all_triangles()
    directed = Counter()
    for a, b, c in tris:
        for e in ((a, b), (b, c), (c, a)):
            directed[e] += 1
    # A consistently oriented manifold uses each directed edge at most once.
    assert max(directed.values()) == 1
    # Every inner-lip edge is now shared by a surface and an interior triangle.
    undirected = Counter(tuple(sorted(e)) for e in directed)
    for lip in (topo.UPPER_INNER_LIP, topo.LOWER_INNER_LIP):
        for a, b in zip(lip[:-1], lip[1:]):
            assert undirected[tuple(sorted((a, b)))] == 2
    assert tris.max() == topo.n_model_vertices() - 1


def test_uv_layout_separates_surface_and_mouth_interior():
    t = load_template()
    assert t.tri_uv.shape == topo.all_triangles().shape
    uv = t.uv[t.tri_uv]
    assert np.all((uv >= 0) & (uv <= 1))
    n_surface = len(topo.surface_triangles())
    s_uv, i_uv = uv[:n_surface].reshape(-1, 2), uv[n_surface:].reshape(-1, 2)
    assert s_uv[:, 1].max() <= SURFACE_REGION[3] + 1e-6
    assert i_uv[:, 1].min() >= INTERIOR_REGION[1] - 1e-6
    # No surface triangle is folded over in UV space (same winding sign for all).
    a, b, c = (uv[:n_surface, k] for k in range(3))
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    assert (np.sign(cross) == np.sign(np.median(cross))).mean() > 0.97


def test_template_is_canonical():
    v = load_template().vertices
    a, b = topo.OUTER_EYE_CORNERS
    assert np.isclose(np.linalg.norm(v[a] - v[b]), 1.0, atol=1e-5)
    assert v[topo.CHIN, 1] > v[topo.NOSE_TIP, 1] > v[topo.FOREHEAD, 1]  # y points down
    assert v[topo.NOSE_TIP, 2] < v[234, 2]  # the nose is nearer the camera than the ears
