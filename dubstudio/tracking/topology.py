"""Mesh topology of the face model: mediapipe FaceMesh's 478 landmarks as vertices.

The 852 surface triangles come from mediapipe's own tessellation. ``FACEMESH_TESSELATION``
is published as a frozenset of edges, but its source lists the edges as (a,b),(b,c),(c,a)
triples; reading them in source order gives consistently wound triangles (ENVIRONMENT.md).
They ship as ``resources/face_triangles.npy`` (read from the installed module's source with
``ast`` by ``python -m dubstudio.tracking.topology``; a test checks the file against it), so a
packaged app whose mediapipe has no ``.py`` sources still has its mesh.

The tessellation has holes at the eyes and the mouth. The mouth is closed by our own
*interior* vertices: ``INTERIOR_ROWS`` rows interpolated between the upper and lower inner
lip contours (pushed back into the head), so the mouth cavity (teeth, tongue) gets its own
region of the UV layout instead of a sliver between the lips.
"""

from __future__ import annotations

import ast
import functools
import inspect

import numpy as np

from dubstudio.core import paths

N_LANDMARKS = 478  # 468 mesh + 10 iris (refine_landmarks=True)
N_TESSELATION_TRIANGLES = 852

# Inner lip contours from corner 78 (image left) to corner 308 (image right).
UPPER_INNER_LIP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER_LIP = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# Outer lip contours from corner 61 to corner 291.
UPPER_OUTER_LIP = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER_LIP = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
MOUTH_CORNERS = [61, 291, 78, 308]
LIP_CONTOURS = sorted(set(UPPER_INNER_LIP + LOWER_INNER_LIP + UPPER_OUTER_LIP + LOWER_OUTER_LIP))
# mediapipe's FACEMESH_FACE_OVAL, as vertex ids.
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
             54, 103, 67, 109]
INNER_LIP_MID = (13, 14)  # upper / lower inner lip at the centre: the "lip opening"

RIGHT_EYE_CORNERS = (33, 133)  # subject's right eye (image left): outer, inner
LEFT_EYE_CORNERS = (263, 362)  # subject's left eye (image right): outer, inner
OUTER_EYE_CORNERS = (33, 263)  # inter-ocular distance is measured between these
IRIS = list(range(468, 478))
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10

INTERIOR_ROWS = 4  # rows of interior vertices strictly between the upper and lower lip


def _tessellation_edges_in_source_order() -> list[tuple[int, int]]:
    from mediapipe.python.solutions import face_mesh_connections as fmc

    tree = ast.parse(inspect.getsource(fmc))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "FACEMESH_TESSELATION" for t in node.targets
        ):
            call = node.value
            assert isinstance(call, ast.Call) and isinstance(call.args[0], ast.List)
            return [tuple(ast.literal_eval(e)) for e in call.args[0].elts]
    raise RuntimeError("mediapipe's face_mesh_connections has no FACEMESH_TESSELATION list")


TRIANGLES_FILE = paths.RESOURCES / "face_triangles.npy"


@functools.lru_cache(maxsize=1)
def surface_triangles() -> np.ndarray:
    """(852, 3) int32 triangles over the 478 landmark vertices, consistently wound."""
    try:
        tris = np.load(TRIANGLES_FILE)
    except OSError as e:
        raise RuntimeError(f"the face mesh's triangles are missing ({TRIANGLES_FILE}); reinstall DubStudio") from e
    if tris.shape != (N_TESSELATION_TRIANGLES, 3) or tris.min() < 0 or tris.max() >= N_LANDMARKS:
        raise RuntimeError(f"{TRIANGLES_FILE} is not the face mesh's {N_TESSELATION_TRIANGLES} triangles; reinstall DubStudio")
    return tris.astype(np.int32)


def triangles_from_mediapipe() -> np.ndarray:
    """The surface triangles read from the installed mediapipe's source (see the module doc)."""
    edges = _tessellation_edges_in_source_order()
    if len(edges) % 3:
        raise RuntimeError("FACEMESH_TESSELATION is not a list of edge triples")
    tris = []
    for i in range(0, len(edges), 3):
        (a, b), (b2, c), (c2, a2) = edges[i : i + 3]
        if not (b == b2 and c == c2 and a == a2):
            raise RuntimeError(f"edge triple {i // 3} does not form a triangle")
        tris.append((a, b, c))
    tris = np.asarray(tris, dtype=np.int32)
    if len(tris) != N_TESSELATION_TRIANGLES:
        raise RuntimeError(f"expected {N_TESSELATION_TRIANGLES} triangles, got {len(tris)}")
    return tris


def interior_weights() -> tuple[np.ndarray, np.ndarray]:
    """How interior vertices are made from the inner-lip vertices.

    Returns ``(alpha, cols)``: interior vertex ``(r, i)`` (row r = 1..INTERIOR_ROWS, column i
    along the lip) lies at ``(1 - alpha[r]) * upper[i] + alpha[r] * lower[i]`` (plus a push
    into the head done by the face model). Columns 0 and 10 are the mouth corners where both
    contours meet, so only columns 1..9 get interior vertices.
    """
    alpha = np.arange(1, INTERIOR_ROWS + 1) / (INTERIOR_ROWS + 1)
    cols = np.arange(1, len(UPPER_INNER_LIP) - 1)
    return alpha, cols


def n_interior_vertices() -> int:
    alpha, cols = interior_weights()
    return len(alpha) * len(cols)


def interior_vertex_index(row: int, col: int) -> int:
    """Index (in the full model vertex array) of interior vertex at row 1..R, column 1..9."""
    alpha, cols = interior_weights()
    return N_LANDMARKS + (row - 1) * len(cols) + (col - 1)


@functools.lru_cache(maxsize=1)
def interior_triangles() -> np.ndarray:
    """Triangles that close the mouth: a grid from the upper inner lip to the lower one."""
    alpha, cols = interior_weights()
    n_cols = len(UPPER_INNER_LIP)
    rows = len(alpha) + 2  # upper lip row, interior rows, lower lip row

    def vid(r: int, c: int) -> int:
        if c == 0:
            return UPPER_INNER_LIP[0]
        if c == n_cols - 1:
            return UPPER_INNER_LIP[-1]
        if r == 0:
            return UPPER_INNER_LIP[c]
        if r == rows - 1:
            return LOWER_INNER_LIP[c]
        return interior_vertex_index(r, c)

    tris = []
    for r in range(rows - 1):
        for c in range(n_cols - 1):
            a, b = vid(r, c), vid(r, c + 1)
            d, e = vid(r + 1, c), vid(r + 1, c + 1)
            # (a, d, b) walks the upper-lip edge as (b, a): the reverse of the surface
            # triangle sharing it, so the winding stays consistent (checked in tests).
            if a != d:
                tris.append((a, d, b))
            if b != e:
                tris.append((b, d, e))
    tris = np.asarray([t for t in tris if len(set(t)) == 3], dtype=np.int32)
    return tris


@functools.lru_cache(maxsize=1)
def all_triangles() -> np.ndarray:
    """Surface triangles followed by the mouth-interior triangles."""
    return np.concatenate([surface_triangles(), interior_triangles()])


def n_model_vertices() -> int:
    return N_LANDMARKS + n_interior_vertices()


if __name__ == "__main__":  # rebuild resources/face_triangles.npy from the installed mediapipe
    np.save(TRIANGLES_FILE, triangles_from_mediapipe())
    print(f"wrote {TRIANGLES_FILE}")
