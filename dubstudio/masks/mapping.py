"""Where the face's UV texels are on one frame, and what UV each crop pixel shows.

``frame_uv(tracking, i, R)`` rasterizes frame i's mesh twice, both with OpenCV and numpy only
(no torch: the editor calls this on the GUI thread, per frame, and caches it):

- into its R x R crop (painter's algorithm, far triangles first): per pixel the visible
  triangle, atlas UV, depth and region (0 / 1 lower face / 2 mouth, as ``region_masks``);
- into the S x S UV atlas: per texel the crop position (x, y) and depth of the surface point
  it belongs to on this frame, NaN where the texel is on no triangle or hidden on this frame
  (behind the nose on a turned head, say; the mouth interior always counts as visible, so
  erasing a closed mouth also erases its inside).

A brush stroke on the frame is then exact and hole-free in UV space: every texel's weight is
the brush profile at the distance between its crop position and the stroke
(``stroke_footprint``), so what is painted is exactly the circle the user saw, and it follows
the face to every other frame. Texels just outside the triangles (2 texels) copy their
nearest covered texel, so bilinear sampling at chart edges reads painted values.

Pixel conventions follow ``rendering.rasterizer``: crop pixel (row y, column x) has its centre at
(x + 0.5, y + 0.5) in the crop coordinates of ``crops.to_crop``; texel (y, x) at
((x + 0.5) / S, (y + 0.5) / S) in UV.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dubstudio.masks.layer import DEFAULT_UV_SIZE, Footprint, brush_profile, distance_to_segment
from dubstudio.tracking import topology as topo
from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH, to_crop, triangle_groups
from dubstudio.tracking.face_model import FaceModel
from dubstudio.tracking.template import load_template

PAD_TEXELS = 2
_SHIFT = 4  # sub-pixel bits for cv2.fillConvexPoly
VISIBLE_TOLERANCE = 0.03  # of the crop resolution: depth slack for "visible on this frame"


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    t = load_template()
    return topo.all_triangles().astype(np.int64), t.tri_uv.astype(np.int64), t.uv.astype(np.float64), len(topo.surface_triangles())


@functools.lru_cache(maxsize=8)
def _region_lut(identity_key: bytes, shape: tuple) -> np.ndarray:
    """(F + 1,) uint8 region value per triangle of ``topo.all_triangles()`` (last: background)."""
    identity = np.frombuffer(identity_key).reshape(shape)
    tris = _tables()[0]
    lower, mouth = triangle_groups(identity)
    index = {tuple(sorted(t)): k for k, t in enumerate(tris.tolist())}
    lut = np.zeros(len(tris) + 1, np.uint8)
    for value, group in ((MASK_LOWER_FACE, lower), (MASK_MOUTH, mouth)):
        lut[[index[tuple(sorted(t))] for t in np.asarray(group).tolist()]] = value
    return lut


def region_lut(model: FaceModel) -> np.ndarray:
    ident = np.ascontiguousarray(model.identity, dtype=np.float64)
    return _region_lut(ident.tobytes(), ident.shape)


def _fill_ids(pts: np.ndarray, order: Sequence[int], shape: tuple[int, int]) -> np.ndarray:
    """int32 image of the triangle index last drawn at each pixel (-1 = none). ``pts`` (F, 3, 2)
    in pixel-centre coordinates (the pixel (y, x) centre is at (x + 0.5, y + 0.5))."""
    ids = np.full(shape, -1, np.int32)
    fixed = np.round((pts - 0.5) * (1 << _SHIFT))
    ok = np.isfinite(fixed).all(axis=(1, 2)) & (np.abs(fixed) < 2**28).all(axis=(1, 2))
    fixed = np.where(ok[:, None, None], fixed, 0).astype(np.int32)
    for t in order:
        if ok[t]:
            cv2.fillConvexPoly(ids, fixed[t], int(t), lineType=cv2.LINE_8, shift=_SHIFT)
    return ids


def _barycentric(ids: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat covered pixel indices, their triangle ids, (n, 3) clamped barycentrics) of the
    pixel centres in their triangle (``corners`` (F, 3, 2))."""
    w = ids.shape[1]
    flat = np.flatnonzero(ids.ravel() >= 0)
    tid = ids.ravel()[flat]
    # w1, w2 are affine in the pixel centre: one (F, 6) table, one gather per pixel
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    inv = 1.0 / np.where(np.abs(den) < 1e-12, 1e-12, den)
    coef = np.stack([
        v1[:, 1] * inv, -v1[:, 0] * inv, (v1[:, 0] * a[:, 1] - v1[:, 1] * a[:, 0]) * inv,
        -v0[:, 1] * inv, v0[:, 0] * inv, (v0[:, 1] * a[:, 0] - v0[:, 0] * a[:, 1]) * inv,
    ], axis=1)
    k = coef[tid]
    px = (flat % w).astype(np.float64) + 0.5
    py = (flat // w).astype(np.float64) + 0.5
    w1 = k[:, 0] * px + k[:, 1] * py + k[:, 2]
    w2 = k[:, 3] * px + k[:, 4] * py + k[:, 5]
    bary = np.stack([1.0 - w1 - w2, w1, w2], axis=1)
    if (bary < 0).any() or (bary > 1).any():  # border pixels: clamp into the triangle
        np.clip(bary, 0.0, 1.0, out=bary)
        bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
    return flat, tid, bary


@dataclass
class FrameUV:
    """UV mapping of one frame (see the module docstring). Crop coordinates are pixels of the
    frame's R x R crop; ``box`` converts them to image pixels."""

    frame: int
    resolution: int
    box: np.ndarray  # (cx, cy, side) in image pixels
    uv: np.ndarray  # (R, R, 2) float32 atlas UV per crop pixel, -1 on background
    regions: np.ndarray  # (R, R) uint8: 0, 1 lower face, 2 mouth (visible triangle)
    texel_xy: np.ndarray  # (S, S, 2) float32 crop position per texel, NaN = not paintable here
    has_face: bool

    @property
    def size(self) -> int:
        return int(self.texel_xy.shape[0])

    @property
    def pixels_per_image_pixel(self) -> float:
        """Crop pixels per image pixel (the crop's scale)."""
        return self.resolution / float(self.box[2])

    def image_to_crop(self, xy: np.ndarray) -> np.ndarray:
        return to_crop(np.asarray(xy, np.float64), self.box, self.resolution)

    def crop_to_image(self, xy: np.ndarray) -> np.ndarray:
        cx, cy, side = (float(v) for v in self.box)
        return np.asarray(xy, np.float64) * (side / self.resolution) + np.array([cx - side / 2, cy - side / 2])

    def uv_at(self, x: float, y: float) -> tuple[float, float] | None:
        """Atlas UV under crop position (x, y), None off the face."""
        ix, iy = int(np.floor(x)), int(np.floor(y))
        if not (0 <= ix < self.resolution and 0 <= iy < self.resolution):
            return None
        u, v = (float(c) for c in self.uv[iy, ix])
        return None if u < 0 else (u, v)

    def stroke_footprint(self, points: np.ndarray, radius: float, feather: float = 0.5) -> Footprint:
        """Texel weights of a brush stroke through crop ``points`` (N, 2) with ``radius`` crop
        pixels (a dot for N = 1). Anti-aliased over one crop pixel when the brush is hard."""
        pts = np.atleast_2d(np.asarray(points, np.float64))
        r = float(radius)
        if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts) or not np.isfinite(pts).all():
            raise ValueError(f"stroke points must be a finite (N, 2) array, got {pts.shape}")
        tx, ty = self.texel_xy[..., 0], self.texel_xy[..., 1]
        lo, hi = pts.min(axis=0) - r - 1, pts.max(axis=0) + r + 1
        with np.errstate(invalid="ignore"):
            near = (tx >= lo[0]) & (tx <= hi[0]) & (ty >= lo[1]) & (ty <= hi[1])
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        if not len(rows):
            return Footprint(0, 0, np.zeros((0, 0), np.float32))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        sx, sy = tx[y0:y1, x0:x1].astype(np.float64), ty[y0:y1, x0:x1].astype(np.float64)
        sel = near[y0:y1, x0:x1]
        d = np.full(sx.shape, np.inf)
        if len(pts) == 1:
            d[sel] = np.hypot(sx[sel] - pts[0, 0], sy[sel] - pts[0, 1])
        else:
            for a, b in zip(pts[:-1], pts[1:]):
                d[sel] = np.minimum(d[sel], distance_to_segment(sx[sel], sy[sel], a, b))
        w = np.zeros(sx.shape, np.float32)
        w[sel] = brush_profile(d[sel], r, feather, aa=1.0)
        return Footprint.from_full(np.pad(w, ((y0, self.size - y1), (x0, self.size - x1))))


def crop_vertices(tracking, i: int, resolution: int, controls: np.ndarray | None = None, model: FaceModel | None = None) -> np.ndarray:
    """(V, 3) frame-i vertices in crop pixels (z scaled like x, y); as ``rasterizer.crop_vertices``
    without importing torch."""
    v = tracking.vertices_image(i, controls=controls, model=model)
    box = tracking.crop[i]
    xy = to_crop(v[:, :2], box, resolution)
    return np.concatenate([xy, (v[:, 2] * (resolution / box[2]))[:, None]], axis=1)


def frame_uv(
    tracking,
    i: int,
    resolution: int = 256,
    controls: np.ndarray | None = None,
    model: FaceModel | None = None,
    size: int = DEFAULT_UV_SIZE,
    texels: bool = True,
) -> FrameUV:
    """The UV mapping of frame ``i`` (its tracked expression, or ``controls``). ``texels=False``
    skips the atlas half (``texel_xy`` all NaN: the mask can be read but not painted), which
    is all compositing needs."""
    r, s = int(resolution), int(size)
    box = np.asarray(tracking.crop[i], np.float64).copy()
    if not tracking.has_face[i]:
        return FrameUV(i, r, box, np.full((r, r, 2), -1, np.float32), np.zeros((r, r), np.uint8),
                       np.full((s, s, 2), np.nan, np.float32), False)
    model = model or tracking.model()
    tris, tri_uv, uv, n_surface = _tables()
    verts = crop_vertices(tracking, i, r, controls, model)
    corners = verts[tris]  # (F, 3, 3) crop xyz per triangle corner

    # 1. the crop: nearest triangle per pixel (far to near), its UV, depth and region
    order = np.argsort(-corners[:, :, 2].mean(axis=1), kind="stable")
    ids = _fill_ids(corners[:, :, :2], order.tolist(), (r, r))
    flat, tid, bary = _barycentric(ids, corners[:, :, :2])
    uv_crop = np.full((r * r, 2), -1.0, np.float32)
    uv_crop[flat] = np.einsum("nk,nkc->nc", bary, uv[tri_uv[tid]])
    depth = np.full(r * r, np.inf)
    depth[flat] = np.einsum("nk,nk->n", bary, corners[tid, :, 2])
    regions = region_lut(model)[np.where(ids.ravel() >= 0, ids.ravel(), len(tris))].reshape(r, r)

    if not texels:
        return FrameUV(i, r, box, uv_crop.reshape(r, r, 2), regions, np.full((s, s, 2), np.nan, np.float32), True)

    # 2. the atlas: crop position and depth of every texel's surface point on this frame
    tflat, ttid, tbary, fill, src = _atlas(s)
    pos = np.einsum("nk,nkc->nc", tbary, corners[ttid])  # (n, 3) crop x, y, z
    xi, yi = np.floor(pos[:, 0]).astype(np.int64), np.floor(pos[:, 1]).astype(np.int64)
    inside = (xi >= 0) & (xi < r) & (yi >= 0) & (yi < r)
    front = np.full(len(pos), np.inf)
    front[inside] = depth[yi[inside] * r + xi[inside]]
    visible = (pos[:, 2] <= front + VISIBLE_TOLERANCE * r) | (ttid >= n_surface)
    texel = np.full((s * s, 2), np.nan, np.float32)
    texel[tflat[visible]] = pos[visible, :2]
    texel[fill] = texel[src]  # chart-edge bleed
    texel = texel.reshape(s, s, 2)
    return FrameUV(i, r, box, uv_crop.reshape(r, r, 2), regions, texel, True)


@functools.lru_cache(maxsize=4)
def _atlas(size: int) -> tuple[np.ndarray, ...]:
    """The atlas raster (pose-independent, computed once per size): covered texels (flat
    indices), their triangle and barycentrics, and the texels within PAD_TEXELS outside the
    charts with the covered texel each copies (its nearest)."""
    tris, tri_uv, uv, _ = _tables()
    uv_corners = uv[tri_uv] * size  # (F, 3, 2) texel coordinates
    tids = _fill_ids(uv_corners, range(len(tris)), (size, size))
    tflat, ttid, tbary = _barycentric(tids, uv_corners)
    covered = tids >= 0
    dist, labels = cv2.distanceTransformWithLabels((~covered).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    zeros = np.flatnonzero(covered.ravel())  # label k (1-based) is the k-th zero pixel in raster order
    fill = (~covered) & (dist <= PAD_TEXELS)
    out = (tflat, ttid, tbary, np.flatnonzero(fill.ravel()), zeros[labels[fill] - 1])
    for a in out:
        a.setflags(write=False)
    return out
