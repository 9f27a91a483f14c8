"""A small triangle rasterizer of our own: per-pixel deferred buffers for a face crop.

pytorch3d and nvdiffrast do not install here (docs/ENVIRONMENT.md), and a neural texture only
needs a per-pixel UV map for ``torch.nn.functional.grid_sample``. So this module turns crop-space
vertices into the buffers the renderer needs:

- ``face_id`` (B, R, R) long: the visible triangle per pixel, -1 for background,
- ``bary``    (B, R, R, 3): barycentric weights of the pixel centre in that triangle (0 on background),
- ``depth``   (B, R, R): interpolated z (smaller z = nearer the camera), +inf on background.

Conventions. Pixel (row y, column x) has its centre at (x + 0.5, y + 0.5) in crop pixel
coordinates (the same coordinates ``crops.to_crop`` produces). A pixel is covered by a triangle
when its centre lies inside or on the triangle's border (a tiny tolerance closes cracks between
neighbours); the z-buffer keeps the smallest interpolated z, ties going to the lower triangle
index. The projection is the tracker's scaled orthographic pose, so screen-space linear
interpolation of z and UV is exact (no perspective correction needed).

Backends. Two interchangeable backends give the same buffers (up to float rounding and exact z
ties); both also clamp the weights of border pixels into their triangle:

- ``"torch"``: device-agnostic and fully vectorised, the path for CUDA. Every triangle's clamped
  bounding box is expanded into exactly its (triangle, pixel) candidates (``repeat_interleave``,
  no padding; batches are chunked to bound memory), barycentrics and z are planes evaluated at
  integer offsets from the box's first pixel centre, and one ``scatter_reduce(amin)`` over a
  64-bit key (order-preserving float32 z bits << 32 | triangle index) resolves the z-buffer.
- ``"numba"``: a serial loop over each triangle's bounding box for CPU tensors, ~9x faster than
  the torch path on CPU (benchmarks/raster_bench.py); chosen by "auto" for CPU tensors when numba
  imports (librosa already depends on it). Compiled once and cached on disk (``cache=True``).

Nothing here is differentiable w.r.t. the vertices; the UV lookup built on these buffers is
differentiable w.r.t. the texture through ``grid_sample``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from dubstudio.tracking import topology as topo
from dubstudio.tracking.crops import to_crop, triangle_groups
from dubstudio.tracking.face_model import FaceModel
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.template import load_template

__all__ = [
    "Fragments",
    "FrameRaster",
    "rasterize",
    "interpolate",
    "interpolate_uv",
    "uv_to_grid",
    "sample_texture",
    "region_masks",
    "rasterize_frame",
    "rasterize_frames",
    "crop_vertices",
    "mesh_tables",
    "numba_available",
]

# Barycentric tolerance for "on the border": shared edges are covered by both neighbours (the
# z-buffer picks one) rather than by neither because of rounding.
_EPS = 1e-5
_INT64_MAX = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """Deferred buffers of one rasterization (see the module docstring for conventions)."""

    face_id: torch.Tensor  # (B, R, R) long, -1 = background
    bary: torch.Tensor  # (B, R, R, 3) float, 0 on background
    depth: torch.Tensor  # (B, R, R) float, +inf on background
    triangles: torch.Tensor  # (F, 3) long, the triangle list face_id indexes

    @property
    def n_faces(self) -> int:
        return int(self.triangles.shape[0])

    @property
    def mask(self) -> torch.Tensor:
        """(B, R, R) bool coverage."""
        return self.face_id >= 0

    @property
    def resolution(self) -> int:
        return int(self.face_id.shape[-1])


# --------------------------------------------------------------------------------------------
# Rasterization


def rasterize(verts_xy_z: torch.Tensor, triangles: torch.Tensor, resolution: int, backend: str = "auto") -> Fragments:
    """Rasterize (B, V, 3) crop-pixel vertices (x, y, z) with (F, 3) triangles into R x R buffers.

    ``backend``: "auto" (numba for CPU tensors when available, else torch), "torch" or "numba".
    Triangles with a non-finite vertex or (near) zero area are skipped; either winding is fine.
    The device and float dtype come from ``verts_xy_z`` (float64 stays float64, else float32).
    """
    if verts_xy_z.ndim != 3 or verts_xy_z.shape[-1] != 3:
        raise ValueError(f"verts_xy_z must be (B, V, 3), got {tuple(verts_xy_z.shape)}")
    triangles = torch.as_tensor(triangles, device=verts_xy_z.device).long()
    if triangles.ndim != 2 or triangles.shape[-1] != 3:
        raise ValueError(f"triangles must be (F, 3), got {tuple(triangles.shape)}")
    resolution = int(resolution)
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    dtype = torch.float64 if verts_xy_z.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        tri = verts_xy_z.detach().to(dtype)[:, triangles]  # (B, F, 3 corners, 3 xyz)
        if backend == "auto":
            backend = "numba" if tri.device.type == "cpu" and numba_available() else "torch"
        if backend == "torch":
            face_id, bary, depth = _raster_torch(tri, resolution)
        elif backend == "numba":
            if tri.device.type != "cpu":
                raise ValueError("the numba backend needs CPU tensors; use backend='torch' on other devices")
            if not numba_available():
                raise RuntimeError("numba is not installed; use backend='torch'")
            face_id, bary, depth = _raster_numba(tri, resolution)
        else:
            raise ValueError(f"unknown backend {backend!r} (auto, torch, numba)")
    return Fragments(face_id=face_id, bary=bary, depth=depth, triangles=triangles)


def _edge(ax, ay, bx, by, px, py):
    """Twice the signed area of (a, b, p): > 0 when p is left of a->b in a y-down frame."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _bboxes(tri: torch.Tensor, resolution: int):
    """Clamped integer pixel ranges [x0, x1] x [y0, y1] whose centres can lie in each triangle."""
    xy = tri[..., :2]
    finite = torch.isfinite(tri).all(dim=-1).all(dim=-1)  # (B, F)
    xy = torch.where(finite[..., None, None], xy, torch.zeros_like(xy))
    lo = torch.ceil(xy.amin(dim=-2) - 0.5).clamp(0, resolution).long()  # (B, F, 2)
    hi = torch.floor(xy.amax(dim=-2) - 0.5).clamp(-1, resolution - 1).long()
    size = (hi - lo + 1).clamp(min=0)
    size = torch.where(finite[..., None], size, torch.zeros_like(size))
    return lo, size


# Candidate (triangle, pixel) pairs processed at once by the torch backend (bounds memory: ~100 B each).
_MAX_PAIRS = 1 << 22


def _raster_torch(tri: torch.Tensor, resolution: int):
    """face_id, raw barycentrics and depth of the nearest covering triangle per pixel (torch)."""
    b, f = tri.shape[:2]
    r = resolution
    lo, size = _bboxes(tri, r)
    coef, ok = _plane_coefficients(tri, lo)
    count = torch.where(ok, size[..., 0] * size[..., 1], torch.zeros_like(size[..., 0]))  # (B, F)
    per_item = count.sum(dim=1).tolist()
    face_id = torch.full((b, r, r), -1, dtype=torch.int64, device=tri.device)
    bary = torch.zeros((b, r, r, 3), dtype=tri.dtype, device=tri.device)
    depth = torch.full((b, r, r), float("inf"), dtype=tri.dtype, device=tri.device)
    start = 0
    while start < b:  # batch chunks of at most _MAX_PAIRS candidates (at least one item)
        stop, pairs = start + 1, per_item[start]
        while stop < b and pairs + per_item[stop] <= _MAX_PAIRS:
            pairs += per_item[stop]
            stop += 1
        if pairs > 0:
            sl = slice(start, stop)
            _raster_torch_chunk(coef[:, sl], lo[sl], size[sl, :, 0], count[sl], int(pairs), r, face_id[sl], bary[sl], depth[sl])
        start = stop
    return face_id, bary, depth


def _plane_coefficients(tri: torch.Tensor, lo: torch.Tensor):
    """(9, B, F) coefficients of w0, w1 and z as planes a*dx + b*dy + c in integer pixel offsets
    (dx, dy) from each bounding box's first pixel centre (small numbers: no cancellation), and
    the (B, F) mask of finite, non-degenerate triangles."""
    x0, y0, z0 = tri[..., 0, 0], tri[..., 0, 1], tri[..., 0, 2]
    x1, y1, z1 = tri[..., 1, 0], tri[..., 1, 1], tri[..., 1, 2]
    x2, y2, z2 = tri[..., 2, 0], tri[..., 2, 1], tri[..., 2, 2]
    area = _edge(x0, y0, x1, y1, x2, y2)
    ok = torch.isfinite(tri).all(dim=-1).all(dim=-1) & (area.abs() > 1e-9)
    inv = torch.where(ok, 1.0 / torch.where(ok, area, torch.ones_like(area)), torch.zeros_like(area))
    ox = lo[..., 0].to(tri.dtype) + 0.5
    oy = lo[..., 1].to(tri.dtype) + 0.5
    a0, b0, c0 = -(y2 - y1) * inv, (x2 - x1) * inv, _edge(x1, y1, x2, y2, ox, oy) * inv
    a1, b1, c1 = -(y0 - y2) * inv, (x0 - x2) * inv, _edge(x2, y2, x0, y0, ox, oy) * inv
    dz0, dz1 = z0 - z2, z1 - z2
    az, bz, cz = a0 * dz0 + a1 * dz1, b0 * dz0 + b1 * dz1, z2 + c0 * dz0 + c1 * dz1
    coef = torch.stack([a0, b0, c0, a1, b1, c1, az, bz, cz])
    coef = torch.where(ok, coef, torch.zeros_like(coef))  # NaN-free for skipped triangles
    return coef, ok


def _raster_torch_chunk(coef, lo, width, count, total, r, face_id, bary, depth) -> None:
    """One batch chunk: expand bounding boxes into (triangle, pixel) pairs, z-test, write winners
    into the chunk's (b, R, R[, 3]) output views."""
    b, f = lo.shape[:2]
    dev = lo.device
    item = torch.arange(b, device=dev)[:, None]
    origin = (item * r + lo[..., 1]) * r + lo[..., 0]  # flat index of each bounding box's first pixel
    count = count.reshape(-1)
    tid = torch.repeat_interleave(torch.arange(b * f, device=dev), count, output_size=total)
    first = torch.cumsum(count, 0) - count
    local = torch.arange(total, device=dev) - first.index_select(0, tid)
    wt = width.reshape(-1).index_select(0, tid)
    dy = torch.div(local, wt, rounding_mode="floor")
    dx = local - dy * wt
    pix = origin.reshape(-1).index_select(0, tid) + dy * r + dx
    c = coef.reshape(9, -1).index_select(1, tid)  # (9, N), contiguous rows
    fx, fy = dx.to(c.dtype), dy.to(c.dtype)
    w0 = c[0] * fx + c[1] * fy + c[2]
    w1 = c[3] * fx + c[4] * fy + c[5]
    w2 = 1.0 - w0 - w1
    z = c[6] * fx + c[7] * fy + c[8]
    inside = (w0 >= -_EPS) & (w1 >= -_EPS) & (w2 >= -_EPS)
    # z-buffer in one scatter: key = order-preserving int32 image of float32 z << 32 | triangle.
    bits = z.to(torch.float32).view(torch.int32).to(torch.int64)
    key = (torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits) << 32) | (tid % f)
    key = torch.where(inside, key, torch.full_like(key, _INT64_MAX))
    best = torch.full((b * r * r,), _INT64_MAX, dtype=torch.int64, device=dev)
    best.scatter_reduce_(0, pix, key, reduce="amin", include_self=True)
    win = ((best.index_select(0, pix) == key) & inside).nonzero().squeeze(1)  # one per pixel
    wp = pix.index_select(0, win)
    w = _clamp_bary(torch.stack([w0.index_select(0, win), w1.index_select(0, win), w2.index_select(0, win)], dim=1))
    face_id.view(-1).index_copy_(0, wp, tid.index_select(0, win) % f)
    bary.view(-1, 3).index_copy_(0, wp, w)
    depth.view(-1).index_copy_(0, wp, z.index_select(0, win))


def _clamp_bary(w: torch.Tensor) -> torch.Tensor:
    """Border pixels (inside by the tolerance only) get weights clamped into the triangle."""
    w = w.clamp(0.0, 1.0)
    return w / w.sum(dim=-1, keepdim=True).clamp(min=1e-12)


# --------------------------------------------------------------------------------------------
# numba backend (CPU)


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except Exception:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _numba_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=False)
    def kernel(tri, r, eps, face_id, bary, zbuf):  # pragma: no cover - compiled
        nb, nf = tri.shape[0], tri.shape[1]
        for b in range(nb):
            for f in range(nf):
                x0, y0, z0 = tri[b, f, 0, 0], tri[b, f, 0, 1], tri[b, f, 0, 2]
                x1, y1, z1 = tri[b, f, 1, 0], tri[b, f, 1, 1], tri[b, f, 1, 2]
                x2, y2, z2 = tri[b, f, 2, 0], tri[b, f, 2, 1], tri[b, f, 2, 2]
                if not (np.isfinite(x0) and np.isfinite(y0) and np.isfinite(z0) and np.isfinite(x1) and np.isfinite(y1)
                        and np.isfinite(z1) and np.isfinite(x2) and np.isfinite(y2) and np.isfinite(z2)):
                    continue
                area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
                if abs(area) <= 1e-9:
                    continue
                inv = 1.0 / area
                # Clamp in float first so far-off vertices cannot overflow the int conversion.
                xa = int(np.ceil(min(max(min(x0, x1, x2) - 0.5, 0.0), r)))
                xb = int(np.floor(max(min(max(x0, x1, x2) - 0.5, r - 1.0), -1.0)))
                ya = int(np.ceil(min(max(min(y0, y1, y2) - 0.5, 0.0), r)))
                yb = int(np.floor(max(min(max(y0, y1, y2) - 0.5, r - 1.0), -1.0)))
                for py in range(ya, yb + 1):
                    cy = py + 0.5
                    for px in range(xa, xb + 1):
                        cx = px + 0.5
                        w0 = ((x2 - x1) * (cy - y1) - (y2 - y1) * (cx - x1)) * inv
                        if w0 < -eps:
                            continue
                        w1 = ((x0 - x2) * (cy - y2) - (y0 - y2) * (cx - x2)) * inv
                        if w1 < -eps:
                            continue
                        w2 = 1.0 - w0 - w1
                        if w2 < -eps:
                            continue
                        z = w0 * z0 + w1 * z1 + w2 * z2
                        if z < zbuf[b, py, px]:
                            zbuf[b, py, px] = z
                            face_id[b, py, px] = f
                            # Border pixels: clamp the weights into the triangle (as _clamp_bary).
                            w0, w1, w2 = min(max(w0, 0.0), 1.0), min(max(w1, 0.0), 1.0), min(max(w2, 0.0), 1.0)
                            s = max(w0 + w1 + w2, 1e-12)
                            bary[b, py, px, 0] = w0 / s
                            bary[b, py, px, 1] = w1 / s
                            bary[b, py, px, 2] = w2 / s

    return kernel


def _raster_numba(tri: torch.Tensor, resolution: int):
    b = tri.shape[0]
    arr = np.ascontiguousarray(tri.numpy())
    face_id = np.full((b, resolution, resolution), -1, np.int64)
    bary = np.zeros((b, resolution, resolution, 3), arr.dtype)
    zbuf = np.full((b, resolution, resolution), np.inf, arr.dtype)
    _numba_kernel()(arr, resolution, _EPS, face_id, bary, zbuf)
    return torch.from_numpy(face_id), torch.from_numpy(bary), torch.from_numpy(zbuf)


# --------------------------------------------------------------------------------------------
# Attribute interpolation and masks


def interpolate(fragments: Fragments, corner_attrs: torch.Tensor, background: float = 0.0) -> torch.Tensor:
    """Interpolate per-triangle-corner attributes (F, 3, C) -> (B, R, R, C); ``background`` where uncovered."""
    fid = fragments.face_id.reshape(-1)
    f, _, c = corner_attrs.shape
    attrs = corner_attrs.to(device=fid.device, dtype=fragments.bary.dtype).reshape(f, 3 * c)
    covered = (fid >= 0).nonzero().squeeze(1)
    g = attrs.index_select(0, fid.index_select(0, covered)).view(-1, 3, c)
    w = fragments.bary.reshape(-1, 3).index_select(0, covered)
    out = torch.full((fid.numel(), c), background, dtype=attrs.dtype, device=fid.device)
    out.index_copy_(0, covered, w[:, 0:1] * g[:, 0] + w[:, 1:2] * g[:, 1] + w[:, 2:3] * g[:, 2])
    return out.view(*fragments.face_id.shape, c)


def interpolate_uv(fragments: Fragments, tri_uv: torch.Tensor, uv: torch.Tensor, background: float = -1.0) -> torch.Tensor:
    """(B, R, R, 2) per-pixel atlas UV in [0, 1] (u right, v down); ``background`` where uncovered.

    ``tri_uv`` (F, 3) indexes ``uv`` (n_uv, 2) per triangle corner (``template.tri_uv``). The
    background value -1 maps outside [-1, 1] under ``uv_to_grid``, so ``grid_sample`` with zero
    padding returns 0 there; ``fragments.mask`` is the coverage mask.
    """
    dev = fragments.face_id.device
    tri_uv = torch.as_tensor(tri_uv, device=dev).long()
    uv = torch.as_tensor(uv, device=dev)
    return interpolate(fragments, uv[tri_uv], background)


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """Atlas UV in [0, 1] -> ``grid_sample`` coordinates in [-1, 1] (use ``align_corners=False``).

    u = 0 / 1 are the left / right edges of the texture, v = 0 / 1 its top / bottom edges
    (row 0 of the texture tensor is v = 0), matching ``template.uv``.
    """
    return uv * 2.0 - 1.0


def sample_texture(texture: torch.Tensor, uv: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Look up a (B or 1, C, H, W) neural texture at (B, R, R, 2) UVs -> (B, C, R, R), 0 on background."""
    grid = uv_to_grid(uv).to(texture.dtype)
    if texture.shape[0] == 1 and grid.shape[0] > 1:
        texture = texture.expand(grid.shape[0], -1, -1, -1)
    return torch.nn.functional.grid_sample(texture, grid, mode=mode, padding_mode="zeros", align_corners=False)


def region_masks(fragments: Fragments, lower_tris, mouth_tris) -> torch.Tensor:
    """(B, R, R) uint8 by visible triangle: 0 background / other face, 1 lower face, 2 mouth.

    ``lower_tris`` / ``mouth_tris`` are what ``crops.triangle_groups`` returns, (N, 3) arrays of
    vertex indices, or 1-D arrays of indices into the rasterized triangle list. Same values as
    ``crops.rasterize_mask`` (mouth wins over lower face), but decided by the z-buffer's visible
    triangle, so a region hidden behind other geometry is not marked.
    """
    dev = fragments.face_id.device
    lut = torch.zeros(fragments.n_faces + 1, dtype=torch.uint8, device=dev)  # last slot: background
    lut[torch.as_tensor(face_indices(fragments.triangles, lower_tris), device=dev)] = 1
    lut[torch.as_tensor(face_indices(fragments.triangles, mouth_tris), device=dev)] = 2
    idx = fragments.face_id.reshape(-1).remainder(fragments.n_faces + 1)  # -1 (background) -> last slot
    return lut.index_select(0, idx).view(fragments.face_id.shape)


def face_indices(triangles, subset) -> np.ndarray:
    """Indices into ``triangles`` (F, 3) of ``subset``: 1-D indices as they are, or (N, 3) triangles
    matched by their vertex sets (any corner order)."""
    sub = np.asarray(subset.cpu() if isinstance(subset, torch.Tensor) else subset)
    if sub.ndim == 1:
        return sub.astype(np.int64)
    if sub.ndim != 2 or sub.shape[1] != 3:
        raise ValueError(f"expected triangle indices (N,) or triangles (N, 3), got shape {sub.shape}")
    tris = np.asarray(triangles.cpu() if isinstance(triangles, torch.Tensor) else triangles, dtype=np.int64)
    n = int(max(tris.max(initial=0), sub.max(initial=0))) + 1

    def keys(t: np.ndarray) -> np.ndarray:
        t = np.sort(t.astype(np.int64), axis=1)
        return (t[:, 0] * n + t[:, 1]) * n + t[:, 2]

    all_keys = keys(tris)
    order = np.argsort(all_keys, kind="stable")
    sub_keys = keys(sub)
    pos = np.searchsorted(all_keys[order], sub_keys)
    pos = np.minimum(pos, len(order) - 1)
    found = all_keys[order][pos] == sub_keys if len(order) else np.zeros(len(sub_keys), bool)
    if not found.all():
        raise ValueError(f"{int((~found).sum())} of {len(sub)} triangles are not in the rasterized mesh")
    return order[pos]


# --------------------------------------------------------------------------------------------
# Convenience: tracked frames


@dataclass
class FrameRaster:
    """Everything the renderer needs from the mesh of some tracked frames (batch B)."""

    fragments: Fragments
    uv: torch.Tensor  # (B, R, R, 2) atlas UV, -1 on background
    regions: torch.Tensor  # (B, R, R) uint8: 0, 1 lower face, 2 mouth
    verts: torch.Tensor  # (B, V, 3) crop-space vertices used (z in crop pixels, NaN without a face)

    @property
    def mask(self) -> torch.Tensor:
        """(B, R, R) bool: pixels the mesh covers."""
        return self.fragments.mask


@functools.lru_cache(maxsize=1)
def mesh_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all_triangles (F, 3), tri_uv (F, 3), uv (n_uv, 2)) of the face model and its atlas."""
    t = load_template()
    return topo.all_triangles(), t.tri_uv, t.uv


def crop_vertices(tracking: Tracking, i: int, resolution: int, controls: np.ndarray | None = None, model: FaceModel | None = None) -> np.ndarray:
    """(V, 3) frame-i model vertices (incl. mouth interior) in its R x R crop's pixels.

    z is scaled like x and y (crop pixels; smaller = nearer). NaN everywhere without a face.
    """
    v = tracking.vertices_image(i, controls=controls, model=model)
    box = tracking.crop[i]
    xy = to_crop(v[:, :2], box, resolution)
    z = v[:, 2] * (resolution / box[2])
    out = np.concatenate([xy, z[:, None]], axis=1)
    if not tracking.has_face[i]:
        out[:] = np.nan
    return out


def rasterize_frames(
    tracking: Tracking,
    indices,
    resolution: int,
    controls: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    model: FaceModel | None = None,
    backend: str = "auto",
) -> FrameRaster:
    """Rasterize frames ``indices`` of a Tracking into their crops as one batch.

    ``controls`` (n_controls,) or (len(indices), n_controls) overrides the tracked expression
    (e.g. driven by audio). Frames without a face give empty buffers (face_id -1 everywhere).
    """
    indices = [int(i) for i in np.atleast_1d(indices)]
    model = model or tracking.model()
    ctrl = [None] * len(indices) if controls is None else np.broadcast_to(controls, (len(indices), np.shape(controls)[-1]))
    verts = np.stack([crop_vertices(tracking, i, resolution, c, model) for i, c in zip(indices, ctrl)])
    tris, tri_uv, uv = mesh_tables()
    vt = torch.as_tensor(verts, dtype=torch.float32, device=device)
    frags = rasterize(vt, torch.as_tensor(tris, device=vt.device), resolution, backend=backend)
    lower, mouth = triangle_groups(model.identity)
    return FrameRaster(
        fragments=frags,
        uv=interpolate_uv(frags, torch.as_tensor(tri_uv), torch.as_tensor(uv)),
        regions=region_masks(frags, lower, mouth),
        verts=vt,
    )


def rasterize_frame(
    tracking: Tracking,
    i: int,
    resolution: int,
    controls: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    model: FaceModel | None = None,
    backend: str = "auto",
) -> FrameRaster:
    """Rasterize frame ``i`` into its crop: a FrameRaster with batch size 1 (see rasterize_frames)."""
    return rasterize_frames(tracking, [i], resolution, None if controls is None else np.asarray(controls)[None], device, model, backend)
