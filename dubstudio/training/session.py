"""One training run of the neural renderer: models, optimisers, the step, the loop, validation
and the live preview. ``trainer.train_prior`` and ``trainer.adapt`` build a ``Session`` and save
its ``state()``.

Long work reports through ``Progress.update(step, steps, loss=..., steps_per_s=..., eta_s=...)``;
``Cancelled`` from it saves a checkpoint and re-raises. Checkpoints are written every
``checkpoint_every`` steps or ``checkpoint_seconds`` seconds, whichever comes first.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import Cancelled, DubStudioError
from dubstudio.nn.discriminator import PatchDiscriminator
from dubstudio.nn.generator import UNetGenerator, deferred_render, dilate_px, render_mask, sample_textures
from dubstudio.nn.neural_texture import NeuralTexture
from dubstudio.nn import checkpoint as ckpt
from dubstudio.training import losses as L
from dubstudio.training.data import WindowBatch, WindowSampler

if TYPE_CHECKING:  # trainer imports this module
    from dubstudio.nn.config import TrainConfig


def torch_batch(nb: WindowBatch, device: torch.device) -> dict[str, torch.Tensor]:
    """uint8/float16 numpy windows -> float tensors on ``device`` (crops (B, T, 3, R, R) in [0, 1])."""
    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return {
        "crops": t(nb.crops).permute(0, 1, 4, 2, 3).float() / 255.0,
        "uv": t(nb.uv).float(),
        "regions": t(nb.regions),
        "ref": t(nb.ref).permute(0, 3, 1, 2).float() / 255.0,
        "mel": t(nb.mel).float(),
    }


class Session:
    """Models, optimisers, data sampling and the training loop of one run."""

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device | str,
        sampler: WindowSampler,
        plan: Callable[[np.random.Generator], list[str]],
        textures: dict[str, NeuralTexture],
        trainable: Sequence[str],
        train_generator: bool,
        generator_state: dict | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.sampler = sampler
        self.plan = plan
        self.rng = np.random.default_rng(cfg.seed)
        self.px = dilate_px(cfg.resolution)
        self.gen = UNetGenerator(cfg.generator)
        if generator_state is not None:
            self.gen.load_state_dict(generator_state)
        self.gen.to(self.device)
        self.train_generator = train_generator
        self.gen.requires_grad_(train_generator)
        self.textures = nn.ModuleDict(textures).to(self.device)
        self.trainable = sorted(trainable)
        for n, t in self.textures.items():
            t.requires_grad_(n in self.trainable)
        groups = []
        if train_generator:
            groups.append({"params": list(self.gen.parameters()), "lr": cfg.lr_g})
        tex_params = [p for n in self.trainable for p in self.textures[n].parameters()]
        if tex_params:
            groups.append({"params": tex_params, "lr": cfg.lr_tex})
        self.opt_g = torch.optim.Adam(groups, betas=(0.9, 0.999))
        self.disc = self.opt_d = None
        if cfg.w_adv > 0:
            self.disc = PatchDiscriminator(dataclasses.replace(cfg.discriminator, window=cfg.generator.window)).to(self.device)
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        self.vgg = L.Perceptual(self.device) if cfg.w_vgg > 0 else None
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.recent: collections.deque[float] = collections.deque(maxlen=20)
        self.val_batch: WindowBatch | None = None
        # Live preview for the editor: every preview_every steps, on_preview(step, real | rendered)
        self.preview_batch: WindowBatch | None = None
        self.on_preview: Callable[[int, np.ndarray], None] | None = None
        self.preview_every = 25

    # -- one step --

    def forward(self, nb: WindowBatch, grad: bool = True):
        b = torch_batch(nb, self.device)
        with torch.set_grad_enabled(grad):
            mask = render_mask(b["regions"], self.px)
            tex, cov = sample_textures(self.textures, nb.identity, b["uv"], where=mask)
            pred = deferred_render(self.gen, b["crops"], tex, mask, b["ref"], b["mel"])
        return b, tex, cov, pred, mask

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        names = self.plan(self.rng)
        nb = self.sampler.sample(self.rng, names)
        b, tex, cov, pred, mask = self.forward(nb)
        target = b["crops"]
        weights = L.region_weights(b["regions"], cfg.mouth_weight, cfg.lower_weight)
        l1 = L.weighted_l1(pred, target, weights)
        loss = cfg.w_l1 * l1
        m = {"l1": float(l1.detach())}
        if cfg.w_reg > 0 and self.trainable:
            reg = L.texture_reg(tex, target, cov & (mask > 0))  # the texture is sampled only there
            loss = loss + cfg.w_reg * reg
            m["reg"] = float(reg.detach())
        if self.vgg is not None and self.vgg.available:
            if cfg.vgg_region == "mouth":
                size = max(32, int(round(cfg.vgg_box * pred.shape[-1])))
                pb, tb = L.mouth_boxes(pred, target, b["regions"], min(size, pred.shape[-1]))
                vgg = self.vgg(pb[:, None], tb[:, None])
            else:
                vgg = self.vgg(pred, target)
            loss = loss + cfg.w_vgg * vgg
            m["vgg"] = float(vgg.detach())
        if self.disc is not None:
            self.disc.requires_grad_(False)
            adv = L.lsgan_g(self.disc(pred))
            self.disc.requires_grad_(True)
            loss = loss + cfg.w_adv * adv
            m["adv"] = float(adv.detach())
        self.opt_g.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            raise DubStudioError(
                f"training diverged at step {self.step} (loss {float(loss)}); lower the learning rates "
                f"(--lr-g / --lr-tex) and resume from the last checkpoint with --restart or a new output."
            )
        loss.backward()
        self.opt_g.step()
        if self.disc is not None:
            d = L.lsgan_d(self.disc(target), self.disc(pred.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            d.backward()
            self.opt_d.step()
            m["d"] = float(d.detach())
        m["loss"] = float(loss.detach())
        m["mouth_psnr"] = L.masked_psnr(pred.detach(), target, b["regions"] == 2)
        return m

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.val_batch is None:
            return {}
        was = self.gen.training
        self.gen.eval()
        b, _, _, pred, mask = self.forward(self.val_batch, grad=False)
        self.gen.train(was)
        t = b["crops"]
        return {
            "val_l1": float(L.weighted_l1(pred, t, L.region_weights(b["regions"], self.cfg.mouth_weight, self.cfg.lower_weight))),
            "val_mouth_psnr": L.masked_psnr(pred, t, b["regions"] == 2),
            "val_mask_psnr": L.masked_psnr(pred, t, mask > 0),
        }

    @torch.no_grad()
    def render_preview(self) -> np.ndarray:
        """(R, 2R, 3) uint8: the preview window's real centre crop | the current rendering."""
        was = self.gen.training
        self.gen.eval()
        b, _, _, pred, _ = self.forward(self.preview_batch, grad=False)
        self.gen.train(was)
        c = pred.shape[1] // 2

        def u8(x: torch.Tensor) -> np.ndarray:
            return (x.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()

        return np.concatenate([u8(b["crops"][0, c]), u8(pred[0, c])], axis=1)

    # -- state --

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "generator": self.gen.state_dict() if self.train_generator else None,
            "textures": {n: t.state_dict() for n, t in self.textures.items() if n in self.trainable},
            "discriminator": self.disc.state_dict() if self.disc is not None else None,
            "optim": {"g": self.opt_g.state_dict(), "d": self.opt_d.state_dict() if self.opt_d else None},
            "rng": ckpt.rng_state(self.rng),
            "history": self.history,
            "recent": list(self.recent),
        }

    def load_state(self, st: dict[str, Any]) -> None:
        if self.train_generator:
            self.gen.load_state_dict(st["generator"])
        for n in self.trainable:
            self.textures[n].load_state_dict(st["textures"][n])
        if self.disc is not None and st.get("discriminator") is not None:
            self.disc.load_state_dict(st["discriminator"])
            if st["optim"].get("d") is not None:
                self.opt_d.load_state_dict(st["optim"]["d"])
        self.opt_g.load_state_dict(st["optim"]["g"])
        ckpt.set_rng_state(st["rng"], self.rng)
        self.step = int(st["step"])
        self.history = list(st.get("history", []))
        self.recent = collections.deque(st.get("recent", []), maxlen=20)

    # -- loop --

    def run(self, steps: int, progress: Progress, save: Callable[[], None], stage: str) -> tuple[int, float]:
        """Train up to ``steps`` total steps; returns (steps run, seconds spent in the loop)."""
        cfg = self.cfg
        progress.stage(stage)
        start_step, t0 = self.step, time.perf_counter()
        last_save_t, last_save_step = t0, self.step
        if cfg.val_every and self.step == 0 and self.val_batch is not None:
            self.history.append({"step": 0, "t": 0.0, **self.validate()})
        try:
            while self.step < steps:
                m = self.train_step()
                self.step += 1
                self.recent.append(m["loss"])
                now = time.perf_counter()
                if self.step % 10 == 0 or self.step == steps:
                    self.history.append({"step": self.step, "t": now - t0, **m})
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == steps):
                    self.history.append({"step": self.step, "t": now - t0, **self.validate()})
                if self.on_preview is not None and self.preview_batch is not None and (
                    self.step % self.preview_every == 0 or self.step == steps
                ):
                    self.on_preview(self.step, self.render_preview())
                if self.step < steps and (
                    self.step - last_save_step >= cfg.checkpoint_every or now - last_save_t >= cfg.checkpoint_seconds
                ):
                    save()
                    last_save_t, last_save_step = time.perf_counter(), self.step
                rate = (self.step - start_step) / max(time.perf_counter() - t0, 1e-9)
                progress.update(
                    self.step, steps, loss=float(np.mean(self.recent)), l1=m["l1"], mouth_psnr=m["mouth_psnr"],
                    steps_per_s=rate, eta_s=(steps - self.step) / max(rate, 1e-9),
                )
        except Cancelled:
            save()
            raise
        if self.step != last_save_step or start_step == self.step:
            save()
        return self.step - start_step, time.perf_counter() - t0

    @property
    def final_loss(self) -> float:
        return float(np.mean(self.recent)) if self.recent else float("nan")
