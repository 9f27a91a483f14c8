"""Per-actor neural texture: a learnable multi-channel UV image (deferred neural rendering).

Stored as a Laplacian-style pyramid (Thies et al. 2019): the sampled feature is the sum of
each level sampled at the same UV, so coarse levels learn fast from few frames and fine levels
add detail. The first three channels are pulled towards the actor's RGB by the texture
regulariser, which makes them a readable diffuse texture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NeuralTexture(nn.Module):
    def __init__(self, channels: int = 16, resolution: int = 256, levels: int = 4) -> None:
        super().__init__()
        self.channels, self.resolution, self.levels = channels, resolution, levels
        self.layers = nn.ParameterList(
            nn.Parameter(torch.zeros(1, channels, max(resolution >> k, 8), max(resolution >> k, 8)))
            for k in range(levels)
        )
        with torch.no_grad():  # small noise breaks symmetry; the coarsest level starts at mid-grey
            for p in self.layers:
                p.normal_(0, 0.01)

    def forward(self, grid: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        """Sample at ``grid`` (B, H, W, 2) in [-1, 1]; zero where ``coverage`` (B, H, W) is false."""
        b = grid.shape[0]
        out = 0
        for p in self.layers:
            out = out + F.grid_sample(p.expand(b, -1, -1, -1), grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out * coverage[:, None].to(out.dtype)

    def n_bytes(self) -> int:
        return sum(p.numel() for p in self.layers) * 2  # stored as float16

    def state_fp16(self) -> dict:
        return {k: v.detach().to(torch.float16).cpu() for k, v in self.state_dict().items()}
