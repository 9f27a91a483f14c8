"""LPIPS distance (Zhang et al. 2018) with the shift-tolerant ST-LPIPS weights, offline, optionally masked.

``LPIPS(net, device)(x, y)`` follows the reference ``lpips``/``stlpips`` forward pass exactly: per layer,
unit-normalise the features along channels, square the difference, apply the learned 1x1 linear head,
average over space, sum over the five layers. Weights: ``alex_shift_tolerant.pth`` /
``vgg_shift_tolerant.pth`` from the ``stlpips-pytorch`` wheel, loaded by
:mod:`dubstudio.nn.perceptual` (see there for how they differ from the classic LPIPS v0.1 models:
values are *ST-LPIPS* values, not comparable number-for-number with papers quoting LPIPS v0.1).

Checkpoint mapping: ``net.sliceK.I.*`` -> ``backbone.trunk.sliceK.I.*``, ``linK.model.1.weight`` (1x1 conv,
no bias; ``model.0`` is a parameter-free Dropout, a no-op at eval) -> ``lins.K.weight``,
``scaling_layer.{shift,scale}`` -> ``backbone.{shift,scale}``.

Masked LPIPS (e.g. "LPIPS inside the mouth mask"): each layer's distance map is averaged with the mask,
area-resized to that layer's resolution, as weights. With ``isolate=True`` (default) both images are also
set to mid-grey outside the mask first, so the score depends only on pixels inside the mask (receptive
fields would otherwise let surrounding pixels leak in). ``isolate=False`` keeps the surrounding context.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dubstudio.nn.perceptual import (
    MIN_SIZE,
    FrozenBackbone,
    PerceptualWeightsMissing,
    load_checkpoint,
    weights_available,
)

__all__ = ["LPIPS", "PerceptualWeightsMissing", "weights_available", "MIN_SIZE"]

_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def _normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit length along channels, exactly as the reference (eps added to the norm, not under the sqrt)."""
    return feat / (torch.sqrt(torch.sum(feat**2, dim=1, keepdim=True)) + eps)


def _as_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(H, W), (B, H, W) or (B|1, 1, H, W) -> float (B, 1, H, W) on x's device, values in [0, 1]."""
    m = mask
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4 or m.shape[1] != 1 or m.shape[-2:] != x.shape[-2:] or m.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"mask {tuple(mask.shape)} does not match images {tuple(x.shape)}")
    m = m.to(device=x.device, dtype=x.dtype).clamp(0, 1)
    return m.expand(x.shape[0], -1, -1, -1)


class LPIPS(nn.Module):
    """Learned perceptual distance; ``forward(x, y, mask=None)`` -> (B,) distances, 0 for identical images.

    x, y: RGB in [0, 1], (B, 3, H, W), H and W >= 32. Frozen and always in eval mode; differentiable w.r.t.
    the inputs (wrap in ``torch.no_grad()`` for evaluation). A sample whose mask is empty gets NaN.
    """

    def __init__(self, net: str, device: torch.device | str) -> None:
        super().__init__()
        if net not in _CHANNELS:
            raise ValueError(f"unknown LPIPS network {net!r}: use 'alex' or 'vgg'")
        self.net = net
        sd = load_checkpoint(net)
        self.backbone = FrozenBackbone(net, device, state_dict=sd)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in _CHANNELS[net])
        for k, lin in enumerate(self.lins):
            lin.weight.data.copy_(sd[f"lin{k}.model.1.weight"])
        self.lins.requires_grad_(False)
        self.lins.to(device)
        super().train(False)

    def train(self, mode: bool = True) -> LPIPS:  # noqa: ARG002 - frozen: stays in eval
        return super().train(False)

    def layer_maps(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer distance maps (B, 1, h_l, w_l) before spatial averaging."""
        if x.shape != y.shape:
            raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        fx, fy = self.backbone(x), self.backbone(y)
        return [
            lin((_normalize(a) - _normalize(b)) ** 2) for lin, a, b in zip(self.lins, fx, fy, strict=True)
        ]

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, isolate: bool = True
    ) -> torch.Tensor:
        if mask is None:
            return sum(d.mean(dim=(2, 3)) for d in self.layer_maps(x, y))[:, 0]
        m = _as_mask(mask, x)
        if isolate:
            x = x * m + 0.5 * (1 - m)
            y = y * m + 0.5 * (1 - m)
        total = x.new_zeros(x.shape[0])
        for d in self.layer_maps(x, y):
            w = F.interpolate(m, size=d.shape[-2:], mode="area")
            total = total + (d * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3))  # empty mask: 0/0 = NaN
        return total
