"""The renderer's configuration as trained: network shapes, texture layout and the training
settings, stored with every prior and actor checkpoint (``nn.checkpoint``).

It lives beside the networks because both sides read it: training builds the networks and
optimisers from it, inference (``rendering.renderer``) rebuilds the generator and the texture
from the copy stored in an actor file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dubstudio.nn.discriminator import DiscriminatorConfig
from dubstudio.nn.generator import GeneratorConfig
from dubstudio.nn.neural_texture import NeuralTexture


@dataclass(frozen=True)
class TrainConfig:
    resolution: int = 128
    batch_size: int = 2
    generator: GeneratorConfig = GeneratorConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    tex_resolution: int = 128
    tex_levels: int = 4
    lr_g: float = 5e-4
    lr_tex: float = 5e-3
    lr_d: float = 2e-4
    w_l1: float = 1.0
    w_reg: float = 0.5
    w_vgg: float = 0.0  # off on CPU by default: see docs/decisions.md (cost per minute)
    w_adv: float = 0.0
    # "crop": the perceptual term sees every frame of the window whole; "mouth": only a box of
    # vgg_box x resolution around the mouth of the window's centre frame (~12x cheaper at T = 3,
    # and it is where blur shows: teeth, lip edges)
    vgg_region: str = "crop"
    vgg_box: float = 0.5
    mouth_weight: float = 10.0
    lower_weight: float = 8.0
    seed: int = 0
    # the new actor's texture: "random" (the paper: small noise) or "prior-mean" (the mean of the
    # prior's identity textures plus that noise: a generic face the prior renderer already decodes;
    # the default: it raised the held-out mouth PSNR in all 6 prior rows, docs/decisions.md).
    # Without a prior both are the noise.
    tex_init: str = "prior-mean"
    checkpoint_every: int = 100
    checkpoint_seconds: float = 120.0
    val_every: int = 0

    # settings that do not change what a run computes (excluded from cache keys)
    _NEUTRAL = ("checkpoint_every", "checkpoint_seconds", "val_every")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.to_dict().items() if k not in self._NEUTRAL}
        if d["vgg_region"] == "crop" and d["vgg_box"] == 0.5:  # added later: keep older runs' keys
            del d["vgg_region"], d["vgg_box"]
        if d["tex_init"] == "random":  # likewise (runs before it existed were "random")
            del d["tex_init"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if isinstance(d.get("generator"), dict):
            d["generator"] = GeneratorConfig.from_dict(d["generator"])
        if isinstance(d.get("discriminator"), dict):
            d["discriminator"] = DiscriminatorConfig.from_dict(d["discriminator"])
        return cls(**d)

    def replace(self, **kw) -> TrainConfig:
        return dataclasses.replace(self, **kw)

    def new_texture(self) -> NeuralTexture:
        return NeuralTexture(self.generator.tex_channels, self.tex_resolution, self.tex_levels)

    def texture_shape(self) -> dict[str, int]:
        return {"channels": self.generator.tex_channels, "resolution": self.tex_resolution, "levels": self.tex_levels}
