"""The crop rasterizer: coverage, barycentrics, z-buffer, UV lookup, region masks on a tracked shot."""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np
import pytest
import torch

from dubstudio.rendering import rasterizer as rast
from dubstudio.rendering.rasterizer import interpolate_uv, rasterize, region_masks, sample_texture, uv_to_grid

BACKENDS = ["torch"] + (["numba"] if rast.numba_available() else [])


def pixel_centres(r: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:r, 0:r].astype(np.float64) + 0.5
    return x, y


def edge(a, b, x, y):
    return (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])


def random_mesh(rng: np.random.Generator, r: int, n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """A jittered grid mesh over most of the crop with random depths (one batch item)."""
    g = np.linspace(0.1 * r, 0.9 * r, 8)
    xx, yy = np.meshgrid(g, g)
    xy = np.stack([xx.ravel(), yy.ravel()], 1) + rng.normal(0, 0.02 * r, (64, 2))
    z = rng.normal(0, 10, (64, 1))
    tris = []
    for i in range(7):
        for j in range(7):
            a, b, c, d = i * 8 + j, i * 8 + j + 1, (i + 1) * 8 + j, (i + 1) * 8 + j + 1
            tris += [(a, c, b), (b, c, d)]
    return torch.tensor(np.concatenate([xy, z], 1), dtype=torch.float32)[None], torch.tensor(tris)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("winding", [1, -1])
def test_single_triangle_covers_exactly_the_pixel_centres_inside(backend, winding):
    r = 40
    tri = np.array([[5.3, 3.7], [33.9, 12.2], [11.1, 36.4]])[::winding]
    verts = torch.tensor(np.concatenate([tri, np.full((3, 1), 2.0)], 1), dtype=torch.float32)[None]
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), r, backend=backend)
    x, y = pixel_centres(r)
    e = np.stack([edge(tri[0], tri[1], x, y), edge(tri[1], tri[2], x, y), edge(tri[2], tri[0], x, y)])
    e *= np.sign(edge(tri[0], tri[1], *tri[2]))
    inside = (e > 0).all(0)
    border = (np.abs(e) < 1e-3).any(0)  # centres on an edge: either answer is fine
    covered = frags.face_id[0].numpy() == 0
    assert inside.sum() > 300
    assert np.array_equal(covered[~border], inside[~border])
    assert (frags.face_id[0].numpy()[~covered] == -1).all()
    assert torch.isinf(frags.depth[0][~frags.mask[0]]).all()
    assert torch.allclose(frags.depth[0][frags.mask[0]], torch.tensor(2.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_barycentrics_reproduce_the_pixel_centres(backend):
    r = 64
    verts, tris = random_mesh(np.random.default_rng(0), r)
    frags = rasterize(verts, tris, r, backend=backend)
    m = frags.mask[0]
    corners = verts[0][tris][frags.face_id[0].clamp(min=0)]  # (R, R, 3, 3)
    pos = (frags.bary[0][..., None] * corners).sum(-2)
    x, y = pixel_centres(r)
    centre = torch.tensor(np.stack([x, y], -1), dtype=torch.float32)
    assert m.float().mean() > 0.5
    assert torch.allclose(pos[..., :2][m], centre[m], atol=1e-3)
    assert torch.allclose(pos[..., 2][m], frags.depth[0][m], atol=1e-4)
    assert (frags.bary[0][m] >= 0).all() and torch.allclose(frags.bary[0][m].sum(-1), torch.tensor(1.0))
    assert (frags.bary[0][~m] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("near_first", [True, False])
def test_zbuffer_keeps_the_nearer_triangle(backend, near_first):
    r = 32
    far_tri = np.array([[2.0, 2.0], [30.0, 2.0], [2.0, 30.0]])
    near_tri = np.array([[30.0, 30.0], [0.3, 12.1], [12.2, 0.4]])
    far_v = np.concatenate([far_tri, [[5.0], [5.0], [5.0]]], 1)
    near_v = np.concatenate([near_tri, [[1.0], [1.5], [0.5]]], 1)  # sloped, but nearer everywhere
    verts = np.concatenate([near_v, far_v] if near_first else [far_v, near_v])
    near, far = (0, 1) if near_first else (1, 0)
    frags = rasterize(torch.tensor(verts, dtype=torch.float32)[None], torch.tensor([[0, 1, 2], [3, 4, 5]]), r, backend=backend)
    fid = frags.face_id[0].numpy()
    x, y = pixel_centres(r)
    in_far, in_near = inside(far_tri, x, y), inside(near_tri, x, y)
    out_far, out_near = ~inside(far_tri, x, y, -0.01), ~inside(near_tri, x, y, -0.01)
    assert (in_far & in_near).sum() > 50 and (in_far & out_near).sum() > 50
    assert (fid[in_near] == near).all()
    assert (fid[in_far & out_near] == far).all()
    assert (fid[out_far & out_near] == -1).all()
    assert np.allclose(frags.depth[0].numpy()[in_far & out_near], 5.0)
    assert (frags.depth[0].numpy()[in_near] < 1.6).all()


def inside(tri: np.ndarray, x: np.ndarray, y: np.ndarray, margin: float = 0.01) -> np.ndarray:
    """Pixel centres at least ``margin`` (edge-function units) inside a triangle."""
    s = np.sign(edge(tri[0], tri[1], *tri[2]))
    return (s * edge(tri[0], tri[1], x, y) > margin) & (s * edge(tri[1], tri[2], x, y) > margin) & (s * edge(tri[2], tri[0], x, y) > margin)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quad_with_a_linear_uv_map_interpolates_exactly(backend):
    r = 64
    x0, y0, x1, y1 = 10.0, 20.0, 50.0, 60.0
    verts = torch.tensor([[[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]]], dtype=torch.float32)
    tris = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv = torch.tensor([[0.2, 0.1], [0.8, 0.1], [0.8, 0.9], [0.2, 0.9]])
    frags = rasterize(verts, tris, r, backend=backend)
    out = interpolate_uv(frags, tris, uv)[0]
    x, y = pixel_centres(r)
    inside = (x > x0) & (x < x1) & (y > y0) & (y < y1)
    m = frags.mask[0].numpy()
    assert np.array_equal(m, inside)  # no centre lies on the quad's border, none on a crack
    u = 0.2 + 0.6 * (x - x0) / (x1 - x0)
    v = 0.1 + 0.8 * (y - y0) / (y1 - y0)
    assert np.allclose(out[..., 0].numpy()[m], u[m], atol=1e-5)
    assert np.allclose(out[..., 1].numpy()[m], v[m], atol=1e-5)
    assert (out[~frags.mask[0]] == -1).all()


def test_texture_lookup_follows_the_uv_convention_and_is_differentiable_in_the_texture():
    r, w, h = 64, 32, 16
    verts = torch.tensor([[[0, 0, 0], [r, 0, 0], [r, r, 0], [0, r, 0]]], dtype=torch.float32)
    tris = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    frags = rasterize(verts, tris, r)
    px_uv = interpolate_uv(frags, tris, uv)
    # A texture whose texel centres hold their own (u, v): bilinear lookup returns the UV back.
    tu = (torch.arange(w) + 0.5) / w
    tv = (torch.arange(h) + 0.5) / h
    tex = torch.stack([tu[None, :].expand(h, w), tv[:, None].expand(h, w)])[None].clone().requires_grad_(True)
    got = sample_texture(tex, px_uv)
    inner = (px_uv[0, ..., 0] > 0.5 / w) & (px_uv[0, ..., 0] < 1 - 0.5 / w) & (px_uv[0, ..., 1] > 0.5 / h) & (px_uv[0, ..., 1] < 1 - 0.5 / h)
    assert torch.allclose(got[0].permute(1, 2, 0)[inner], px_uv[0][inner], atol=1e-5)
    got.sum().backward()
    assert tex.grad is not None and tex.grad.abs().sum() > 0
    assert torch.equal(uv_to_grid(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([-1.0, 0.0, 1.0]))
    # Background (uv = -1) samples zero.
    small = rasterize(verts * 0.5, tris, r)
    bg = sample_texture(tex, interpolate_uv(small, tris, uv))
    assert (bg[0][:, ~small.mask[0]] == 0).all()


def test_backends_agree_and_batches_match_single_items():
    if len(BACKENDS) < 2:
        pytest.skip("numba not installed")
    r = 96
    rng = np.random.default_rng(1)
    (v1, tris), (v2, _) = random_mesh(rng, r), random_mesh(rng, r)
    batch = torch.cat([v1, v2])
    a = rasterize(batch, tris, r, backend="torch")
    b = rasterize(batch, tris, r, backend="numba")
    assert (a.face_id == b.face_id).float().mean() > 0.999
    same = a.face_id == b.face_id
    assert torch.allclose(a.bary[same], b.bary[same], atol=1e-4)
    single = rasterize(v2, tris, r, backend="torch")
    assert torch.equal(single.face_id[0], a.face_id[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_degenerate_and_offscreen_triangles_are_skipped(backend):
    r = 16
    verts = torch.tensor(
        [[[1, 1, 0], [15, 1, 0], [1, 15, 0], [float("nan"), 2, 0], [3, 3, 0], [3, 3, 0], [-50, -50, 0], [-40, -50, 0], [-50, -40, 0], [1e30, -1e30, 0]]],
        dtype=torch.float32,
    )
    tris = torch.tensor([[3, 4, 5], [4, 5, 6], [6, 7, 8], [7, 8, 9], [0, 1, 2]])
    frags = rasterize(verts, tris, r, backend=backend)
    assert set(frags.face_id.unique().tolist()) == {-1, 4}
    assert torch.isfinite(frags.bary).all()


def test_region_masks_accept_indices_or_vertex_triangles():
    verts, tris = random_mesh(np.random.default_rng(2), 32)
    frags = rasterize(verts, tris, 32)
    lower, mouth = np.arange(0, 40), np.array([3, 7])
    by_index = region_masks(frags, lower, mouth)
    by_tris = region_masks(frags, tris.numpy()[lower][:, [1, 2, 0]], tris.numpy()[mouth])
    assert torch.equal(by_index, by_tris)
    fid = frags.face_id[0]
    assert (by_index[0][(fid == 3) | (fid == 7)] == 2).all()
    assert (by_index[0][fid >= 40] == 0).all() and (by_index[0][fid == -1] == 0).all()
    with pytest.raises(ValueError):
        region_masks(frags, np.array([[0, 1, 63]]), mouth)


# ---------------------------------------------------------------------------------------------
# A real tracked shot


@pytest.fixture(scope="module")
def talk_b_tracking(media, tmp_path_factory):
    from dubstudio.project.store import Project
    from dubstudio.tracking.track import track

    clip = media / "talk_b.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} not found")
    tracking, _ = track(clip, Project.create(tmp_path_factory.mktemp("rast") / "p", clip))
    return tracking


@pytest.mark.media
@pytest.mark.slow
def test_region_masks_agree_with_crops_rasterize_mask_on_talk_b(talk_b_tracking):
    """Same labels as the OpenCV mask. cv2.fillConvexPoly also fills every pixel an edge passes
    through (about half a pixel wider than centre sampling), so the comparison leaves out a
    one-pixel band along the reference's label boundaries; the raw IoU is checked loosely."""
    from dubstudio.tracking.crops import rasterize_mask, triangle_groups

    t = talk_b_tracking
    model = t.model()
    lower, mouth = triangle_groups(model.identity)
    r = 256
    kernel = np.ones((3, 3), np.uint8)
    frames = np.flatnonzero(t.has_face)[:: max(1, t.has_face.sum() // 12)]
    assert len(frames) >= 8
    for i in frames:
        fr = rast.rasterize_frame(t, int(i), r, model=model)
        v = rast.crop_vertices(t, int(i), r, model=model)
        ref = rasterize_mask(v[:, :2] - 0.5, lower, mouth, r)  # cv2 puts pixel centres on integers
        ours = fr.regions[0].numpy()
        band = cv2.dilate(ref, kernel) != cv2.erode(ref, kernel)
        for c in (1, 2):
            a, b = ours == c, ref == c
            assert b.sum() > 500
            raw = (a & b).sum() / (a | b).sum()
            core = (a & b & ~band).sum() / ((a | b) & ~band).sum()
            assert core > 0.97, (i, c, core)
            assert raw > 0.9, (i, c, raw)
        # UVs: surface pixels lie in the top of the atlas, mouth-interior pixels in the bottom.
        uv = fr.uv[0].numpy()
        m = fr.mask[0].numpy()
        assert (uv[m] >= 0).all() and (uv[m] <= 1).all() and (uv[~m] == -1).all()


@pytest.mark.media
@pytest.mark.slow
def test_batches_controls_and_missing_faces(talk_b_tracking):
    t = dataclasses.replace(talk_b_tracking, has_face=talk_b_tracking.has_face.copy())
    model = t.model()
    t.has_face[3] = False
    batch = rast.rasterize_frames(t, [10, 3, 20], 128, model=model)
    assert batch.fragments.face_id.shape == (3, 128, 128)
    assert (batch.fragments.face_id[1] == -1).all() and (batch.regions[1] == 0).all() and (batch.uv[1] == -1).all()
    for k, i in ((0, 10), (2, 20)):
        one = rast.rasterize_frame(t, i, 128, model=model)
        assert torch.equal(one.fragments.face_id[0], batch.fragments.face_id[k])
        assert torch.equal(one.regions[0], batch.regions[k])
    # Driving the jaw open grows the mouth region; closing it shrinks it.
    closed, opened = t.controls[10].copy(), t.controls[10].copy()
    closed[0], opened[0] = 0.0, 1.0
    area = [int((rast.rasterize_frame(t, 10, 128, controls=c, model=model).regions == 2).sum()) for c in (closed, opened)]
    assert area[1] > 1.5 * area[0]
    # float64 vertices go through both backends too.
    v = torch.tensor(rast.crop_vertices(t, 10, 128, model=model))[None]
    for backend in BACKENDS:
        f64 = rasterize(v, torch.as_tensor(rast.mesh_tables()[0]), 128, backend=backend)
        assert f64.bary.dtype == torch.float64
        assert (f64.face_id == batch.fragments.face_id[0]).float().mean() > 0.999


@pytest.mark.media
@pytest.mark.slow
def test_rasterize_frame_timing(talk_b_tracking, capsys):
    t = talk_b_tracking
    i = int(np.flatnonzero(t.has_face)[len(t.has_face) // 2])
    tris = torch.as_tensor(rast.mesh_tables()[0])
    lines = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # comparable numbers on a shared machine (2 threads only add contention)
    try:
        _time_backends(t, i, tris, lines)
    finally:
        torch.set_num_threads(threads)
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def _time_backends(t, i, tris, lines) -> None:
    for r in (128, 256, 512):
        v = torch.tensor(rast.crop_vertices(t, i, r), dtype=torch.float32)[None]
        for backend in BACKENDS:
            rasterize(v, tris, r, backend=backend)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                rasterize(v, tris, r, backend=backend)
                times.append(time.perf_counter() - t0)
            lines.append(f"rasterize R={r} {backend} (1 thread): {1000 * np.median(times):.2f} ms/frame")
