"""Texel coverage: which texels adaptation saw, filling the rest, and leaving their pixels alone."""

import numpy as np
import torch
import torch.nn.functional as F

from dubstudio.nn.neural_texture import NeuralTexture
from dubstudio.rendering.texel_coverage import fill_unseen, seen_texels, unseen_pixels
from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH


def _centre(i: int, t: int) -> float:
    return (i + 0.5) / t


def test_seen_texels_marks_the_bilinear_footprint_only_where_asked():
    t = 16
    uv = torch.full((2, 3, 2), -1.0)
    uv[0, 0] = torch.tensor([_centre(3, t) + 0.25 / t, _centre(5, t) + 0.25 / t])  # between texels 3..4, 5..6
    uv[1, 1] = torch.tensor([_centre(10, t), _centre(10, t)])
    where = torch.zeros(2, 3, dtype=torch.bool)
    where[0, 0] = True  # the second sample is outside the mask: not seen
    seen = seen_texels(uv, where, t)
    assert set(map(tuple, torch.nonzero(seen).tolist())) == {(5, 3), (5, 4), (6, 3), (6, 4)}  # (row v, col u)
    assert not seen[10, 10]
    # off-mesh pixels (uv = -1) are never counted, even inside the mask
    assert not seen_texels(torch.full((4, 4, 2), -1.0), torch.ones(4, 4, dtype=torch.bool), t).any()


def _summed(tex: NeuralTexture) -> torch.Tensor:
    r = tex.resolution
    return sum(p if p.shape[-1] == r else F.interpolate(p, size=(r, r), mode="bilinear", align_corners=False)
               for p in tex.layers)[0]


def test_fill_unseen_keeps_seen_texels_and_continues_them_into_the_hole():
    torch.manual_seed(0)
    tex = NeuralTexture(channels=4, resolution=32, levels=3)
    with torch.no_grad():
        for p in tex.layers:
            p.normal_(0, 1.0)  # garbage everywhere
    seen = torch.zeros(32, 32, dtype=torch.bool)
    seen[:, :16] = True
    before = _summed(tex).clone()
    with torch.no_grad():  # the seen half learned a constant feature (in the finest level)
        tex.layers[0].data[0, :, :, :16] += torch.tensor([1.0, -2.0, 0.5, 3.0])[:, None, None] - before[:, :, :16]
    seen_vals = _summed(tex)[:, :, :16].clone()
    n = fill_unseen(tex, seen)
    after = _summed(tex)
    assert n == 32 * 16
    torch.testing.assert_close(after[:, :, :16], seen_vals)  # seen texels unchanged
    # the hole now continues the seen features instead of keeping its noise
    hole = after[:, :, 16:]
    assert torch.allclose(hole, torch.tensor([1.0, -2.0, 0.5, 3.0])[:, None, None].expand_as(hole), atol=1e-4)
    # sampling through the module (bilinear, all levels) agrees at texel centres
    g = torch.tensor([[[[_centre(24, 32) * 2 - 1, _centre(8, 32) * 2 - 1]]]])
    v = tex(g, torch.ones(1, 1, 1, dtype=torch.bool))[0, :, 0, 0]
    torch.testing.assert_close(v, after[:, 8, 24], atol=1e-5, rtol=1e-5)


def test_fill_unseen_without_anything_seen_changes_nothing():
    tex = NeuralTexture(channels=2, resolution=16, levels=2)
    before = [p.detach().clone() for p in tex.layers]
    assert fill_unseen(tex, torch.zeros(16, 16, dtype=torch.bool)) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, tex.layers))


def test_unseen_pixels_spare_the_mouth_lone_pixels_and_off_mesh():
    r, t = 32, 8
    seen = np.ones((t, t), bool)
    seen[:, 0] = False  # the atlas column u in [0, 1/8) was never seen
    uv = np.full((r, r, 2), 0.5, np.float32)
    uv[:, :6] = [0.05, 0.5]  # a 6-pixel-wide strip of the crop lands on it
    uv[0, :6] = -1  # off the mesh: not the renderer's to keep
    uv[20, 20] = [0.05, 0.5]  # a lone pixel on it: a sampling gap
    regions = np.full((r, r), MASK_LOWER_FACE, np.uint8)
    regions[10:14, 7:12] = MASK_MOUTH  # a mouth 1 px from the strip
    out = unseen_pixels(uv, regions, seen, mouth_guard_px=3)
    assert out[5, 0] and out[25, 5] and not out[0, 0] and not out[20, 20]
    assert not out[8:16, 4:6].any()  # within 3 px of the mouth: always rendered
    assert out[:, 6:].sum() == 0
