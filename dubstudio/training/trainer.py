"""Prior training over many identities and per-actor adaptation of the neural renderer.

- ``train_prior``: one generator shared by all identities, one neural texture per identity, all
  trained jointly ("Dubbing for Everyone" 3.4). Writes one ``prior`` checkpoint (weights, textures,
  optimiser and RNG state), which is also the resume state: running the same command again after a
  kill continues at the saved step.
- ``adapt``: a fresh texture for one project; the generator comes from a prior (or is trained from
  scratch). Modes: ``texture`` (generator frozen, only the texture is trained and stored, fp16,
  <= 1 MB), ``full`` (generator fine-tuned too), ``mixed`` (full, with every batch half actor
  windows and half windows of the prior's identities, their textures frozen). The resumable state
  lives in ``cache/adapt/<mode>-<key>.state.pt`` of the project (one per mode: a run with other
  settings replaces it), the result is ``cache/adapt/actor_<mode>-<key>.pt`` (one per configuration)
  and the project's ``adapt`` / ``adapt_<mode>`` stage records point to the latest.

Long work reports through ``Progress.update(step, steps, loss=..., steps_per_s=..., eta_s=...)``;
``Cancelled`` from it saves a checkpoint and re-raises. Checkpoints are written every
``checkpoint_every`` steps or ``checkpoint_seconds`` seconds, whichever comes first.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dubstudio.core.jobs import Progress
from dubstudio.errors import Cancelled, DubStudioError, ProjectError
from dubstudio.io.atomic import settings_hash
from dubstudio.io.project import Project
from dubstudio.rendering.discriminator import DiscriminatorConfig, PatchDiscriminator
from dubstudio.rendering.generator import (
    GeneratorConfig,
    UNetGenerator,
    deferred_render,
    dilate_px,
    render_mask,
    sample_textures,
)
from dubstudio.rendering.neural_texture import NeuralTexture
from dubstudio.training import checkpoint as ckpt
from dubstudio.training import losses as L
from dubstudio.training.data import FrameCache, WindowBatch, WindowSampler, neutral_reference, tracking_of

log = logging.getLogger(__name__)

MODES = ("texture", "full", "mixed")
ADAPT_VERSION = 1
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")


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
    mouth_weight: float = 10.0
    lower_weight: float = 8.0
    seed: int = 0
    checkpoint_every: int = 100
    checkpoint_seconds: float = 120.0
    val_every: int = 0

    # settings that do not change what a run computes (excluded from cache keys)
    _NEUTRAL = ("checkpoint_every", "checkpoint_seconds", "val_every")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self._NEUTRAL}

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


@dataclass
class TrainResult:
    path: Path  # the prior file, or the actor file
    steps: int
    steps_run: int  # steps done by this call (0 when cached)
    final_loss: float
    steps_per_s: float
    wall_s: float
    stored_bytes: int
    resumed_from: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "steps": self.steps, "steps_run": self.steps_run,
            "final_loss": self.final_loss, "steps_per_s": self.steps_per_s, "wall_s": self.wall_s,
            "stored_bytes": self.stored_bytes, "resumed_from": self.resumed_from, "cached": self.cached,
        }


def identity_name(project: Project) -> str:
    stem = _NAME_BAD.sub("_", project.video_path.stem)[:32] or "actor"
    return f"{stem}-{project.video_fingerprint[:8]}"


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


# -------------------------------------------------------------------------------------- session


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


# ----------------------------------------------------------------------------------- data setup


def _face_frames(project: Project, frames: Sequence[int] | None) -> list[int]:
    tracking, _ = tracking_of(project)
    idx = list(range(tracking.n_frames)) if frames is None else [int(i) for i in frames]
    idx = [i for i in idx if 0 <= i < tracking.n_frames]
    if not any(tracking.has_face[i] for i in idx):
        raise ProjectError(f"{project.root}: none of the selected frames has a tracked face.")
    return idx


def _check_steps(steps: int) -> None:
    if steps < 1:
        raise DubStudioError(f"--steps must be at least 1, got {steps}")


def _device(device: torch.device | str) -> torch.device:
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise DubStudioError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu.")
    return d


def _arch_mismatch(a: TrainConfig, b: TrainConfig) -> list[str]:
    out = []
    for k in ("resolution", "generator", "tex_resolution", "tex_levels"):
        if getattr(a, k) != getattr(b, k):
            out.append(k)
    return out


# ------------------------------------------------------------------------------------- the prior


def train_prior(
    projects: Sequence[Project],
    out: str | Path,
    steps: int,
    cfg: TrainConfig = TrainConfig(),
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    frames: Sequence[int] | None = None,
    restart: bool = False,
) -> TrainResult:
    """Train (or resume training) a prior renderer on ``projects``; ``out`` is the prior file."""
    _check_steps(steps)
    t_all = time.perf_counter()
    progress = progress or Progress()
    device = _device(device)
    out = Path(out)
    if not projects:
        raise DubStudioError("prior training needs at least one tracked project (--projects).")
    caches, idents = {}, []
    for p in projects:
        name = identity_name(p)
        if name in caches:
            raise DubStudioError(f"{p.root} shows the same video as another project in the list.")
        idx = _face_frames(p, frames)
        caches[name] = FrameCache.build(p, idx, cfg.resolution, progress)
        idents.append({"name": name, "project": str(p.root.resolve()), "fingerprint": p.video_fingerprint,
                       "frames": idx, "reference": int(caches[name].indices[neutral_reference(caches[name], tracking_of(p)[0])])})
    resume = None
    if out.exists() and not restart:
        resume = ckpt.load(out, "prior")
        old = TrainConfig.from_dict(resume["config"])
        bad = _arch_mismatch(old, cfg)
        if bad or [i["name"] for i in resume["identities"]] != [i["name"] for i in idents]:
            what = ", ".join(bad) if bad else "the list of projects"
            raise ckpt.CheckpointError(
                f"{out} was trained with other settings ({what}); use --restart to overwrite it or choose another --out."
            )
        if int(resume["step"]) > steps:
            raise ckpt.CheckpointError(f"{out} is already trained to {resume['step']} steps (> {steps}); use --restart to retrain.")
        cfg = old.replace(checkpoint_every=cfg.checkpoint_every, checkpoint_seconds=cfg.checkpoint_seconds)
    torch.manual_seed(cfg.seed)
    names = [i["name"] for i in idents]
    sampler = WindowSampler(caches, cfg.generator.window)
    sess = Session(
        cfg, device, sampler, lambda rng: [names[k] for k in rng.integers(len(names), size=cfg.batch_size)],
        {n: cfg.new_texture() for n in names}, names, train_generator=True,
    )
    if resume is not None:
        sess.load_state(resume)
    resumed_from = sess.step

    def save() -> None:
        ckpt.save(out, "prior", {"config": cfg.to_dict(), "identities": idents, "texture": cfg.texture_shape(), **sess.state()})

    n_run, loop_s = sess.run(steps, progress, save, "prior")
    return TrainResult(
        path=out, steps=sess.step, steps_run=n_run, final_loss=sess.final_loss,
        steps_per_s=n_run / loop_s if n_run else 0.0, wall_s=time.perf_counter() - t_all,
        stored_bytes=out.stat().st_size, resumed_from=resumed_from, history=sess.history,
    )


# ---------------------------------------------------------------------------------- adaptation


def adapt(
    project: Project,
    mode: str,
    steps: int,
    frames: Sequence[int] | None = None,
    prior: str | Path | None = None,
    prior_projects: Sequence[Project] | None = None,
    cfg: TrainConfig = TrainConfig(),
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    restart: bool = False,
    val_frames: Sequence[int] | None = None,
    preview: Callable[[int, np.ndarray], None] | None = None,
    preview_frame: int | None = None,
    preview_every: int = 25,
) -> TrainResult:
    """Adapt the renderer to ``project``'s actor on ``frames``; see the module docstring.

    ``preview(step, image)``, if given, is called from the training thread every ``preview_every``
    steps with a (R, 2R, 3) uint8 image, the real crop of ``preview_frame`` (default: the middle
    training frame) beside its current rendering; the editor shows it while the job runs."""
    _check_steps(steps)
    t_all = time.perf_counter()
    progress = progress or Progress()
    device = _device(device)
    if mode not in MODES:
        raise DubStudioError(f"unknown adaptation mode {mode!r}; use one of {', '.join(MODES)}.")
    if mode == "texture" and prior is None:
        raise DubStudioError("texture mode trains only the texture, so it needs a prior renderer: give --prior FILE.")

    prior_ck = None
    if prior is not None:
        prior_ck = ckpt.load(prior, "prior")
        pcfg = TrainConfig.from_dict(prior_ck["config"])
        # the architecture is the prior's; the training settings are this run's
        cfg = cfg.replace(resolution=pcfg.resolution, generator=pcfg.generator,
                          tex_resolution=pcfg.tex_resolution, tex_levels=pcfg.tex_levels)
    torch.manual_seed(cfg.seed)  # texture initialisation
    tracking, track_key = tracking_of(project)
    actor = identity_name(project)
    idx = _face_frames(project, frames)
    caches = {actor: FrameCache.build(project, idx, cfg.resolution, progress, tracking)}
    ref_frame = int(caches[actor].indices[neutral_reference(caches[actor], tracking)])

    textures = {actor: cfg.new_texture()}
    trainable = [actor]
    others: list[str] = []
    other_keys: list[str] = []
    if mode == "mixed":
        if cfg.batch_size < 2:
            raise DubStudioError("mixed mode puts actor and prior windows 1:1 in each batch: use a batch size >= 2.")
        plist = list(prior_projects or [])
        by_fp = {i["fingerprint"]: i for i in (prior_ck or {}).get("identities", [])}
        if not plist and prior_ck is not None:
            for i in prior_ck["identities"]:
                try:
                    plist.append(Project.open(i["project"]))
                except ProjectError as e:
                    raise ProjectError(f"{e} (a project of the prior; pass --prior-projects with their new place)") from e
        if not plist:
            raise DubStudioError("mixed mode needs other actors' data: give --prior (with its projects) or --prior-projects.")
        for p in plist:
            if p.video_fingerprint == project.video_fingerprint:
                continue  # never mix the actor into its own prior data
            name = identity_name(p)
            info = by_fp.get(p.video_fingerprint)
            pframes = info["frames"] if info else None
            caches[name] = FrameCache.build(p, _face_frames(p, pframes), cfg.resolution, progress)
            tex = cfg.new_texture()
            if info is not None and info["name"] in prior_ck["textures"]:
                tex.load_state_dict(prior_ck["textures"][info["name"]])
            else:
                trainable.append(name)  # not in the prior: learn its texture too
            textures[name] = tex
            others.append(name)
            other_keys.append(tracking_of(p)[1])
        if not others:
            raise DubStudioError("mixed mode found no prior identity other than this actor.")

    key = project.stage_key(
        "adapt",
        {"tracking": track_key, "prior": ckpt.fingerprint(prior) if prior else "", "others": sorted(other_keys)},
        {"version": ADAPT_VERSION, "mode": mode, "frames": idx, "config": cfg.key_dict()},
    )
    adir = project.cache_dir("adapt")
    state_path = adir / f"{mode}-{key[:12]}.state.pt"
    actor_path = adir / f"actor_{mode}-{key[:12]}.pt"  # one per configuration: prior/scratch runs coexist

    # cached result: same inputs and settings, already trained this far
    if not restart and actor_path.is_file():
        try:
            prev = ckpt.load(actor_path, "actor")
        except ckpt.CheckpointError:
            prev = None
        if prev is not None and prev.get("key") == key and int(prev["step"]) == steps:
            _record(project, mode, actor_path, prev.get("metrics", {}))
            return TrainResult(actor_path, steps, 0, float(prev["metrics"].get("final_loss", float("nan"))), 0.0,
                               time.perf_counter() - t_all, actor_path.stat().st_size, steps, prev.get("history", []), cached=True)

    b_actor = cfg.batch_size if mode != "mixed" else (cfg.batch_size + 1) // 2

    def plan(rng: np.random.Generator) -> list[str]:
        if mode != "mixed":
            return [actor] * cfg.batch_size
        return [actor] * b_actor + [others[k] for k in rng.integers(len(others), size=cfg.batch_size - b_actor)]

    sampler = WindowSampler(caches, cfg.generator.window)
    sess = Session(
        cfg, device, sampler, plan, textures, trainable, train_generator=(mode != "texture"),
        generator_state=prior_ck["generator"] if prior_ck is not None else None,
    )
    if val_frames:
        vcache = FrameCache.build(project, _face_frames(project, val_frames), cfg.resolution, progress, tracking)
        vsampler = WindowSampler({actor: vcache}, cfg.generator.window)
        vpos = list(np.nonzero(vcache.has_face)[0][:: max(1, int(vcache.has_face.sum()) // 8)][:8])
        sess.val_batch = vsampler.fixed(actor, vpos, 0)
        sess.val_batch.ref = np.stack([caches[actor].crops[caches[actor].position(ref_frame)]] * len(vpos))
    if preview is not None:
        cache = caches[actor]
        face_pos = np.nonzero(cache.has_face)[0]
        want = preview_frame if preview_frame is not None else int(cache.indices[face_pos[len(face_pos) // 2]])
        pos = int(face_pos[np.argmin(np.abs(cache.indices[face_pos] - want))])
        sess.preview_batch = sampler.fixed(actor, [pos], cache.position(ref_frame))
        sess.on_preview, sess.preview_every = preview, max(1, int(preview_every))
    if state_path.is_file() and not restart:
        st = ckpt.load(state_path, "adapt-state")
        if st.get("key") == key:
            if int(st["step"]) > steps:
                raise ckpt.CheckpointError(
                    f"this adaptation is already trained to {st['step']} steps (> {steps}); use --restart to retrain."
                )
            sess.load_state(st)
    resumed_from = sess.step
    for stale in adir.glob(f"{mode}-*.state.pt"):  # another configuration's state: superseded
        if stale != state_path:
            stale.unlink(missing_ok=True)

    def save() -> None:
        ckpt.save(state_path, "adapt-state", {"key": key, "config": cfg.to_dict(), "mode": mode, **sess.state()})

    n_run, loop_s = sess.run(steps, progress, save, f"adapt ({mode})")
    metrics = {"final_loss": sess.final_loss, "steps": sess.step, "mode": mode,
               "steps_per_s": n_run / loop_s if n_run else 0.0}
    payload = {
        "key": key, "mode": mode, "config": cfg.to_dict(), "step": sess.step, "actor": actor,
        "frames": idx, "reference_frame": ref_frame, "tracking_key": track_key,
        "texture": sess.textures[actor].state_fp16(), "texture_shape": cfg.texture_shape(),
        "prior": {"path": str(Path(prior).resolve()), "fingerprint": ckpt.fingerprint(prior)} if prior else None,
        "generator": sess.gen.state_dict() if mode != "texture" else None,
        "history": sess.history, "metrics": metrics,
    }
    size = ckpt.save(actor_path, "actor", payload)
    metrics["stored_bytes"] = size
    _record(project, mode, actor_path, metrics)
    return TrainResult(
        path=actor_path, steps=sess.step, steps_run=n_run, final_loss=sess.final_loss,
        steps_per_s=metrics["steps_per_s"], wall_s=time.perf_counter() - t_all, stored_bytes=size,
        resumed_from=resumed_from, history=sess.history,
    )


def _record(project: Project, mode: str, actor_path: Path, metrics: dict) -> None:
    rel = actor_path.relative_to(project.root).as_posix()
    key = settings_hash({"actor": rel, "mtime": actor_path.stat().st_mtime_ns})
    m = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not (isinstance(v, float) and math.isnan(v))}
    project.record_stage(f"adapt_{mode}", key, {"actor": rel}, m)
    project.record_stage("adapt", key, {"actor": rel}, m)
