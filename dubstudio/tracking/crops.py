"""Jaw-independent, temporally stable face crops and per-frame mouth / lower-face masks.

Crop (paper, supplementary 7.2): project the actor's neutral mesh with the jaw closed and
fully open under each frame's head pose, take the union's bounding box, make it square with a
margin, and smooth centre and size over time. Using the neutral mesh (not the frame's
expression) makes the box depend on the head only, so the renderer cannot infer the mouth
state from the crop.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from dubstudio.tracking import topology as topo
from dubstudio.core.controls import CONTROL_NAMES, JAW
from dubstudio.tracking.face_model import FaceModel, with_interior
from dubstudio.tracking.smoothing import fill_gaps, gaussian

MASK_NONE, MASK_LOWER_FACE, MASK_MOUTH = 0, 1, 2


def raw_crop_boxes(model: FaceModel, poses: list, has_face: np.ndarray, margin: float) -> np.ndarray:
    """(N, 3) centre x, centre y, side from the jaw-closed / jaw-open union per frame."""
    closed = np.zeros(len(CONTROL_NAMES))
    opened = closed.copy()
    opened[JAW] = 1.0
    shape = np.concatenate([model.landmarks(closed), model.landmarks(opened)])
    out = np.full((len(has_face), 3), np.nan)
    for i, pose in enumerate(poses):
        if not has_face[i] or pose is None:
            continue
        p = pose.apply(shape)[:, :2]
        lo, hi = p.min(axis=0), p.max(axis=0)
        side = float((hi - lo).max()) * (1 + margin)
        out[i] = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, side)
    return out


def stabilise_crops(raw: np.ndarray, has_face: np.ndarray, fps: float, centre_s: float, size_s: float) -> np.ndarray:
    """Smooth the centre over ``centre_s`` and the size over ``size_s`` seconds (Gaussian sigma)."""
    out = raw.copy()
    out[:, :2] = gaussian(raw[:, :2], has_face, centre_s * fps)
    out[:, 2] = gaussian(raw[:, 2], has_face, size_s * fps)
    return fill_gaps(out, has_face)


@functools.lru_cache(maxsize=8)
def _triangle_groups(identity_key: bytes, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    identity = np.frombuffer(identity_key).reshape(shape)
    from dubstudio.tracking.face_model import compute_regions

    regions = compute_regions(identity)
    surf = topo.surface_triangles()
    inner = topo.interior_triangles()
    lips_tri = surf[(regions.lips[surf] >= 1.0).all(axis=1)]
    mouth = np.concatenate([lips_tri, inner])
    # Lower face: everything whose centre lies below the base of the nose.
    y_nose = identity[2, 1]
    centre_y = identity[surf][:, :, 1].mean(axis=1)
    lower = np.concatenate([surf[centre_y > y_nose], inner])
    return lower, mouth


def triangle_groups(identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower_face_triangles, mouth_triangles) over the model's vertex array."""
    ident = np.ascontiguousarray(identity, dtype=np.float64)
    return _triangle_groups(ident.tobytes(), ident.shape)


def to_crop(points_xy: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
    cx, cy, side = box
    return (points_xy - np.array([cx - side / 2, cy - side / 2])) * (resolution / side)


def rasterize_mask(vertices_xy: np.ndarray, lower: np.ndarray, mouth: np.ndarray, resolution: int | tuple[int, int]) -> np.ndarray:
    """uint8 mask: 0 outside, 1 lower face, 2 mouth (lips + interior).

    ``resolution`` is R for an (R, R) crop, or (height, width) to rasterize in image space.
    """
    shape = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    mask = np.zeros(shape, np.uint8)
    shift = 4
    pts = np.round(vertices_xy * (1 << shift)).astype(np.int32)
    # One convex fill per triangle: fillPoly over many polygons would XOR their overlaps.
    for value, tris in ((MASK_LOWER_FACE, lower), (MASK_MOUTH, mouth)):
        for tri in pts[tris]:
            cv2.fillConvexPoly(mask, tri, value, lineType=cv2.LINE_8, shift=shift)
    return mask


def frame_mask(tracking, i: int, resolution: int, controls: np.ndarray | None = None, model: FaceModel | None = None) -> np.ndarray:
    """The mask of frame i in its crop (zeros where there is no face)."""
    if not tracking.has_face[i]:
        return np.zeros((resolution, resolution), np.uint8)
    m = model or tracking.model()
    c = tracking.controls[i] if controls is None else controls
    verts = tracking.pose(i).apply(with_interior(m.landmarks(c, tracking.residual[i])))
    lower, mouth = triangle_groups(m.identity)
    return rasterize_mask(to_crop(verts[:, :2], tracking.crop[i], resolution), lower, mouth, resolution)
