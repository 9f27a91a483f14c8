"""Losses of the neural renderer ("Dubbing for Everyone" eq. 1).

- ``weighted_l1``: L1 with per-pixel weights from the region masks (mouth 10x, lower face 8x,
  rest 1x), normalised by the mean weight so its value reads like a plain L1 in [0, 1] units.
- ``Perceptual``: VGG feature loss per frame, mean over the window. The VGG comes from
  ``dubstudio.nn.perceptual`` (offline weights), imported lazily; if it is missing or fails,
  the term is dropped with one warning and training goes on without it.
- LSGAN: ``lsgan_d`` / ``lsgan_g``.
- ``texture_reg``: L1 between the first three texture channels and the target RGB inside the
  mesh coverage (makes them a readable diffuse texture, Thies et al. 2019).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

log = logging.getLogger(__name__)


def region_weights(regions: torch.Tensor, mouth: float = 10.0, lower: float = 8.0) -> torch.Tensor:
    """(..., R, R) uint8 regions (0 / 1 lower face / 2 mouth) -> float weights (1 / lower / mouth)."""
    w = torch.ones(regions.shape, dtype=torch.float32, device=regions.device)
    w = torch.where(regions == 1, torch.full_like(w, lower), w)
    return torch.where(regions == 2, torch.full_like(w, mouth), w)


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """pred/target (B, T, 3, R, R), weights (B, T, R, R): sum(w |d|) / (3 sum(w))."""
    w = weights[:, :, None].to(pred.dtype)
    return ((pred - target).abs() * w).sum() / (w.sum() * pred.shape[2]).clamp(min=1e-8)


def mouth_boxes(pred: torch.Tensor, target: torch.Tensor, regions: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 3, R, R) pred/target, (B, T, R, R) regions -> (B, 3, size, size) boxes of each
    window's centre frame, centred on its mouth region (the lower face, or the crop centre, when
    it has none) and kept inside the crop."""
    b, t, _, r, _ = pred.shape
    c = t // 2
    ps, ts = [], []
    for i in range(b):
        reg = regions[i, c]
        ys, xs = torch.nonzero(reg == 2, as_tuple=True)
        if len(ys) == 0:
            ys, xs = torch.nonzero(reg > 0, as_tuple=True)
        cy, cx = (int(ys.float().mean()), int(xs.float().mean())) if len(ys) else (r // 2, r // 2)
        y0 = min(max(cy - size // 2, 0), r - size)
        x0 = min(max(cx - size // 2, 0), r - size)
        ps.append(pred[i, c, :, y0 : y0 + size, x0 : x0 + size])
        ts.append(target[i, c, :, y0 : y0 + size, x0 : x0 + size])
    return torch.stack(ps), torch.stack(ts)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 over the pixels where ``mask`` (B, T, R, R) is true (0 if none)."""
    m = mask[:, :, None].to(pred.dtype)
    return ((pred - target).abs() * m).sum() / (m.sum() * pred.shape[2]).clamp(min=1.0)


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, peak 1) over the masked pixels; a training monitor, not the evaluation metric."""
    m = mask[:, :, None].to(pred.dtype)
    mse = float((((pred - target) ** 2) * m).sum() / (m.sum() * pred.shape[2]).clamp(min=1.0))
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def texture_reg(tex: torch.Tensor, target: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """tex (B, T, C, R, R), target (B, T, 3, R, R), coverage (B, T, R, R) bool."""
    return masked_l1(tex[:, :, :3], target, coverage)


def lsgan_d(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())


def lsgan_g(fake_scores: torch.Tensor) -> torch.Tensor:
    return ((fake_scores - 1) ** 2).mean()


class Perceptual(nn.Module):
    """VGG perceptual loss over the frames of a window, or a no-op (``available`` False) when the
    VGG module or its weights cannot be loaded."""

    def __init__(self, device: torch.device | str) -> None:
        super().__init__()
        self.loss = None
        try:
            from dubstudio.nn.perceptual import PerceptualLoss

            self.loss = PerceptualLoss(device)
        except Exception as e:  # missing module, missing weights, anything: train without it
            log.warning("perceptual loss disabled (%s: %s); training continues without it", type(e).__name__, e)

    @property
    def available(self) -> bool:
        return self.loss is not None

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, R, R) each -> scalar (mean over frames, as each frame is scored on its own)."""
        if self.loss is None:
            return pred.new_zeros(())
        return self.loss(pred.flatten(0, 1), target.flatten(0, 1))
