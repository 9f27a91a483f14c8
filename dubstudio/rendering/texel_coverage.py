"""Which texels of an actor's neural texture training actually saw, and what to do about the rest.

Adaptation sees the actor in a few seconds of footage. A texel that no training frame sampled keeps
its initial noise plus whatever the coarse pyramid levels learned around it: a feature vector the
generator has never been shown for this actor. When a later frame turns the head further than any
training frame did, such texels come into view at the mask's edge and decode as a discoloured
(typically purple) blotch on the cheek. Two remedies, both applied by default:

- ``fill_unseen`` (at the end of adaptation): unseen texels take the features of the nearest seen
  ones (push-pull fill of the summed pyramid), so the generator's input continues the actor's skin.
- ``unseen_pixels`` (at render time): pixels that land on unseen texels, away from the mouth, are
  left to the original frame; the compositor then feathers the paste away from them. The renderer
  only replaces what it has learned, and what a dub must replace (the mouth) is always replaced.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dubstudio.nn.neural_texture import NeuralTexture
from dubstudio.tracking.crops import MASK_MOUTH


def seen_texels(uv: torch.Tensor, where: torch.Tensor, resolution: int) -> torch.Tensor:
    """(resolution, resolution) bool: the texels of the finest level that bilinear sampling at the
    atlas UVs ``uv`` (..., 2; in [0, 1], -1 off the mesh) reads where ``where`` (...) is true."""
    sel = where & (uv[..., 0] >= 0)
    u = uv[sel].float() * resolution - 0.5  # texel-centre coordinates (align_corners=False)
    seen = torch.zeros(resolution * resolution, dtype=torch.bool, device=uv.device)
    x0, y0 = u[:, 0].floor().long(), u[:, 1].floor().long()
    for dx in (0, 1):
        for dy in (0, 1):  # the bilinear footprint: the four texels around each sample
            x, y = (x0 + dx).clamp(0, resolution - 1), (y0 + dy).clamp(0, resolution - 1)
            seen[y * resolution + x] = True
    return seen.view(resolution, resolution)


def _push_pull(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(C, H, W) ``values`` with the texels where ``known`` (H, W) is false filled from the known
    ones around them: averaged down a pyramid (weighted by ``known``) until every texel has support,
    then each level's holes are filled from the coarser level on the way up."""
    if known.all() or not known.any() or min(values.shape[-2:]) <= 1:
        return values
    w = known.to(values.dtype)[None, None]
    vs = F.avg_pool2d((values * w[0])[None], 2, ceil_mode=True)
    ws = F.avg_pool2d(w, 2, ceil_mode=True)
    coarse = _push_pull((vs / ws.clamp_min(1e-8))[0], ws[0, 0] > 0)
    up = F.interpolate(coarse[None], size=values.shape[-2:], mode="bilinear", align_corners=False)[0]
    return torch.where(known[None], values, up)


@torch.no_grad()
def fill_unseen(texture: NeuralTexture, seen: torch.Tensor) -> int:
    """Give the texels training never sampled (``seen`` false) the features of the nearest seen
    ones, in place: the sum of the levels is filled and the difference written into the finest
    level, so sampling seen texels is unchanged. Returns the number of texels changed."""
    r = texture.resolution
    finest = texture.layers[0]
    if tuple(finest.shape[-2:]) != (r, r) or tuple(seen.shape) != (r, r):
        raise ValueError(f"expected a finest level and a seen map of {r} x {r} texels")
    total = sum(p if p.shape[-1] == r else F.interpolate(p, size=(r, r), mode="bilinear", align_corners=False)
                for p in texture.layers)[0]
    seen = seen.to(total.device)
    if not seen.any():
        return 0  # nothing learned to spread
    filled = _push_pull(total, seen)
    finest.data[0] += torch.where(seen[None], torch.zeros_like(total), filled - total)
    return int((~seen).sum())


def unseen_pixels(uv: np.ndarray, regions: np.ndarray, seen: np.ndarray, mouth_guard_px: int = 3,
                  min_area_px: int = 4) -> np.ndarray:
    """(R, R) bool: pixels of one crop whose atlas UV (``uv`` (R, R, 2), -1 off the mesh) lands on
    a texel training never saw (``seen`` (T, T) bool), at least ``mouth_guard_px`` from the mouth
    (``regions == MASK_MOUTH``; the mouth is always rendered) and in clusters of at least
    ``min_area_px`` pixels (a lone unseen pixel between seen ones is a sampling gap, not new skin)."""
    t = seen.shape[0]
    on = uv[..., 0] >= 0
    ij = np.clip((np.where(on[..., None], uv, 0) * t).astype(np.int64), 0, t - 1)
    out = on & ~seen[ij[..., 1], ij[..., 0]]
    mouth = (regions == MASK_MOUTH).astype(np.uint8)
    if mouth.any() and mouth_guard_px > 0:
        k = 2 * mouth_guard_px + 1
        out &= cv2.dilate(mouth, np.ones((k, k), np.uint8)) == 0
    if out.any() and min_area_px > 1:
        n, lab, stats, _ = cv2.connectedComponentsWithStats(out.astype(np.uint8), connectivity=8)
        out = np.isin(lab, np.nonzero(stats[:, cv2.CC_STAT_AREA] >= min_area_px)[0]) & out
    return out
