"""PatchGAN discriminator (LSGAN) that sees the whole window: the T frames stacked on channels.

Seeing all T frames at once lets it penalise flicker between frames (Wav2Lip / "Dubbing for
Everyone" 3.4). Output: a (B, 1, R/8, R/8) map of real/fake scores (no sigmoid: least squares).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DiscriminatorConfig:
    window: int = 3
    width: int = 32
    layers: int = 3

    @classmethod
    def from_dict(cls, d: dict) -> DiscriminatorConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin, c = 3 * cfg.window, cfg.width
        for i in range(cfg.layers):
            layers += [nn.Conv2d(cin, c, 4, 2, 1)]
            if i > 0:
                layers += [nn.GroupNorm(min(8, c // 4), c)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            cin, c = c, min(c * 2, cfg.width * 8)
        layers += [nn.Conv2d(cin, cin, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(cin, 1, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, R, R) in [0, 1] -> (B, 1, R / 2**layers, R / 2**layers) scores."""
        return self.net(frames.flatten(1, 2) * 2 - 1)
