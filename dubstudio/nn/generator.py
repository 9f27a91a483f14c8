"""The deferred neural renderer: a U-Net ("Dubbing for Extras") over a window of T frames.

Input per window, stacked on the channel axis (``assemble_input``):

- for each of the T frames: the crop RGB with the mask region zeroed (3), the sampled neural texture
  inside the mask and zero outside it (C), the mask itself (1);
- the reference frame RGB of the same actor (3).

The mask is the rasterized lower face + mouth (regions > 0), dilated by a few pixels so the chin
and the lip border are generated too. Audio: the centre frame's log-mel window goes through a small
conv encoder to a 32-d vector that is tiled spatially and concatenated at the bottleneck (and, with
``audio_at_input``, at the input). Output: T RGB frames (sigmoid), composited with the real crop
outside the mask, so what the network does not own is bit-exact and the losses focus on the mask.

Sizes at R = 128 (default width 16, mults 1-2-4-8-16): 3.0 M parameters (``count_parameters``);
the width scales the whole network for the GPU path. R must be divisible by 2**(len(mults) - 1).
GroupNorm below full resolution by default: without it a prior run at lr 1e-3 collapsed into a
saturated sigmoid after ~190 steps (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GeneratorConfig:
    window: int = 3
    tex_channels: int = 16
    width: int = 16
    mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    audio_dim: int = 32
    audio_at_input: bool = False
    n_mels: int = 80
    mel_window: int = 16
    norm: str = "group"  # "group" (GroupNorm after each conv below full resolution) or "none"

    @property
    def in_channels(self) -> int:
        return self.window * (3 + self.tex_channels + 1) + 3 + (self.audio_dim if self.audio_at_input else 0)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        d = dict(d)
        d["mults"] = tuple(d.get("mults", cls.mults))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(8, c // 4) or 1, c)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (none, group)")


class AudioEncoder(nn.Module):
    """(B, n_mels, W) log-mel window -> (B, dim) vector."""

    def __init__(self, n_mels: int = 80, window: int = 16, dim: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=(2, 1), padding=1), _act(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), _act(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), _act(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), _act(),
            nn.AdaptiveAvgPool2d((2, 1)),
        )
        self.fc = nn.Linear(128, dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(mel[:, None]).flatten(1))


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str = "none") -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 4, 2, 1), _norm(norm, cout), _act(),
            nn.Conv2d(cout, cout, 3, 1, 1), _norm(norm, cout), _act(),
        )

    def forward(self, x):
        return self.net(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, norm: str = "none") -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin + cskip, cout, 3, 1, 1), _norm(norm, cout), _act(),
            nn.Conv2d(cout, cout, 3, 1, 1), _act(),
        )

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.net(torch.cat([x, skip], 1))


class UNetGenerator(nn.Module):
    def __init__(self, cfg: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        ch = [cfg.width * m for m in cfg.mults]
        self.audio = AudioEncoder(cfg.n_mels, cfg.mel_window, cfg.audio_dim)
        self.inc = nn.Sequential(nn.Conv2d(cfg.in_channels, ch[0], 3, 1, 1), _act())
        self.downs = nn.ModuleList(_Down(ch[i], ch[i + 1], cfg.norm) for i in range(len(ch) - 1))
        self.mid = nn.Sequential(nn.Conv2d(ch[-1] + cfg.audio_dim, ch[-1], 3, 1, 1), _act())
        self.ups = nn.ModuleList(_Up(ch[i + 1], ch[i], ch[i], cfg.norm) for i in reversed(range(len(ch) - 1)))
        self.out = nn.Conv2d(ch[0], 3 * cfg.window, 1)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.cfg.mults) - 1)

    def forward(self, x: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """(B, in_channels w/o audio, R, R) input, (B, 80, 16) mel -> (B, T, 3, R, R) in [0, 1]."""
        b, _, h, w = x.shape
        if h % self.factor or w % self.factor:
            raise ValueError(f"crop size {h}x{w} must be divisible by {self.factor}")
        a = self.audio(mel.to(x.dtype))  # (B, A)
        if self.cfg.audio_at_input:
            x = torch.cat([x, a[:, :, None, None].expand(-1, -1, h, w)], 1)
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(skips[-1]))
        y = skips.pop()
        y = self.mid(torch.cat([y, a[:, :, None, None].expand(-1, -1, *y.shape[-2:])], 1))
        for u in self.ups:
            y = u(y, skips.pop())
        return torch.sigmoid(self.out(y)).view(b, self.cfg.window, 3, h, w)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------- input assembly


def dilate_px(resolution: int) -> int:
    """Mask dilation in pixels: 3 px at R = 128, scaled with R."""
    return max(1, int(round(3 * resolution / 128)))


def render_mask(regions: torch.Tensor, px: int, extra: torch.Tensor | None = None) -> torch.Tensor:
    """(..., R, R) uint8 regions -> (..., R, R) float {0, 1}: regions > 0 (or ``extra``), dilated by
    ``px`` (square structuring element, via max-pool; device-agnostic)."""
    m = (regions > 0)
    if extra is not None:
        m = m | (extra > 0)
    shape = m.shape
    m = m.reshape(-1, 1, *shape[-2:]).float()
    if px > 0:
        m = F.max_pool2d(m, 2 * px + 1, stride=1, padding=px)
    return m.view(shape)


def assemble_input(
    crops: torch.Tensor,  # (B, T, 3, R, R) float [0, 1]
    tex: torch.Tensor,  # (B, T, C, R, R) sampled neural texture (0 off the mesh)
    mask: torch.Tensor,  # (B, T, R, R) float {0, 1}
    ref: torch.Tensor,  # (B, 3, R, R) float [0, 1]
) -> torch.Tensor:
    m = mask[:, :, None]
    x = torch.cat([crops * (1 - m), tex * m, m], dim=2)  # (B, T, 3 + C + 1, R, R)
    return torch.cat([x.flatten(1, 2), ref], dim=1)


def composite(pred: torch.Tensor, crops: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the mask, the real crop outside it (exact)."""
    m = mask[:, :, None]
    return pred * m + crops * (1 - m)


def deferred_render(
    gen: UNetGenerator,
    crops: torch.Tensor,  # (B, T, 3, R, R) float [0, 1]
    tex: torch.Tensor,  # (B, T, C, R, R)
    mask: torch.Tensor,  # (B, T, R, R) float {0, 1} (``render_mask``)
    ref: torch.Tensor,  # (B, 3, R, R)
    mel: torch.Tensor,  # (B, 80, 16)
) -> torch.Tensor:
    """One renderer pass: input assembly, generator, composite -> (B, T, 3, R, R) frames."""
    raw = gen(assemble_input(crops, tex, mask, ref), mel)
    return composite(raw, crops, mask)


def sample_textures(textures, names, uv: torch.Tensor, where: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample each batch item's neural texture (``textures[names[b]]``, a NeuralTexture) at its
    (B, T, R, R, 2) atlas UVs (-1 off the mesh). Returns ((B, T, C, R, R) features, zero off the
    mesh; (B, T, R, R) bool coverage).

    With ``where`` (B, T, R, R) only those pixels are sampled (the rest stay zero): the generator
    sees the texture only inside its mask, and on a CPU the sampling backward over every pixel of
    every frame costs as much as a third of the U-Net. Items sharing a texture share one call.
    """
    b, t, h, w, _ = uv.shape
    cov = uv[..., 0] >= 0
    sel = cov if where is None else cov & (where > 0)
    grid = uv * 2.0 - 1.0
    c = textures[names[0]].channels
    flat = torch.zeros(b * t * h * w, c, dtype=uv.dtype, device=uv.device)
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n, []).append(i)
    sel_flat = sel.reshape(b, -1)
    for n, items in groups.items():
        pix = torch.cat([torch.nonzero(sel_flat[i]).squeeze(1) + i * t * h * w for i in items])
        if pix.numel() == 0:
            continue
        g = grid.reshape(-1, 2).index_select(0, pix)[None, None]  # (1, 1, P, 2)
        feats = textures[n](g, torch.ones(1, 1, pix.numel(), dtype=torch.bool, device=uv.device))  # (1, C, 1, P)
        flat = flat.index_put((pix,), feats[0, :, 0].t())
    return flat.view(b, t, h, w, c).permute(0, 1, 4, 2, 3), cov
