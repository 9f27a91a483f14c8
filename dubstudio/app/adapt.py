"""Adapt: the neural renderer trained on one actor (``adapt_job``), and the person-generic prior it
can start from (``prior_job``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.app.detail import check_job, plan_check
from dubstudio.app.device import resolve_device
from dubstudio.app.models import register_trained
from dubstudio.app.projects import open_projects
from dubstudio.core import paths
from dubstudio.core.errors import DubStudioError
from dubstudio.core.frames import parse_frames
from dubstudio.core.jobs import Progress
from dubstudio.nn.config import TrainConfig
from dubstudio.nn.generator import GeneratorConfig
from dubstudio.project.store import Project
from dubstudio.shot.adaptation import actor_file_of
from dubstudio.shot.tracking import tracking_of

RUN_STEPS = 600  # adaptation steps from the prior or from scratch (about 5 min on 2 CPU cores at 128 px)
# from another shot of the actor (`--from-shot`, batch, the editor's default there): they match a
# 600-step run from scratch (BENCHMARKS.md, "another shot of the same actor")
FROM_SHOT_STEPS = 150
ADAPT_MODES = ("texture", "full", "mixed")
# the editor's "Sharper mouth" (measured in BENCHMARKS.md, issue 3 third session)
SHARP = {"w_vgg": 0.3, "vgg_region": "mouth"}
# TrainConfig fields a request may override one by one (the CLI's flags, the editor's advanced box)
TRAIN_FIELDS = ("resolution", "width", "batch_size", "lr_g", "lr_tex", "w_vgg", "vgg_region", "w_adv", "seed", "tex_init", "val_every")


def preset_file(name: str | Path | None) -> Path | None:
    """A preset's name (``resources/presets/<name>.json``: ``cuda``) or a JSON file's path."""
    if name is None:
        return None
    p = Path(name)
    if not p.suffix and not p.exists():
        f = paths.RESOURCES / "presets" / f"{p.name}.json"
        if f.is_file():
            return f
        known = sorted(q.stem for q in (paths.RESOURCES / "presets").glob("*.json"))
        raise DubStudioError(f"no config file or preset named {name}; presets: {', '.join(known)}.")
    return p


def train_config(overrides: Mapping[str, Any] | None = None, config_file: Path | str | None = None,
                 device: str | None = None) -> TrainConfig:
    """``TrainConfig`` with a JSON file's overrides (or a preset's, by name), then single
    ``overrides`` (``width`` is the generator's), checked. On a CUDA ``device`` with neither, the
    ``cuda`` preset (larger crops and network, perceptual and adversarial terms on the mouth): the
    CPU defaults are sized for minutes on two cores."""
    d = TrainConfig().to_dict()
    if config_file is None and not any(v is not None for v in (overrides or {}).values()) and str(device or "").startswith("cuda"):
        config_file = "cuda"
    config_file = preset_file(config_file)
    if config_file:
        try:
            over = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DubStudioError(f"cannot read the config overrides {config_file}: {e}") from e
        unknown = set(over) - set(d)
        if unknown:
            raise DubStudioError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        for k, v in over.items():
            d[k] = {**d[k], **v} if isinstance(d[k], dict) else v
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        if k not in TRAIN_FIELDS:
            raise DubStudioError(f"unknown training setting {k!r}; known: {', '.join(TRAIN_FIELDS)}.")
        if k == "width":
            d["generator"] = {**d["generator"], "width": v}
        else:
            d[k] = v
    cfg = TrainConfig.from_dict(d)
    if not isinstance(cfg.generator, GeneratorConfig):
        raise DubStudioError("the 'generator' override must be an object")
    if cfg.resolution % (2 ** (len(cfg.generator.mults) - 1)):
        raise DubStudioError(f"--resolution must be divisible by {2 ** (len(cfg.generator.mults) - 1)}")
    return cfg


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))


@dataclass(frozen=True)
class AdaptRequest:
    project: Path
    steps: int = RUN_STEPS  # total steps (a rerun resumes up to this)
    mode: str | None = None  # texture | full | mixed (default: texture with a prior, else full)
    prior: Path | None = None  # prior checkpoint (`dubstudio prior train`); without it: from scratch
    prior_projects: tuple[Path, ...] | None = None  # mixed mode: the prior's identities (default: where it recorded them)
    from_shot: Path | None = None  # this actor adapted on another shot (project, video or actor file): start from it
    frames: str | None = None  # training frames A:B (default: all)
    val_frames: str | None = None  # held-out frames C:D monitored while training
    overrides: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields (TRAIN_FIELDS)
    config_file: Path | None = None  # a JSON file of TrainConfig overrides
    device: str = "auto"
    threads: int | None = None  # torch CPU threads (None: torch's choice)
    restart: bool = False  # ignore a saved checkpoint and train from step 0
    keep_longer: bool = False  # an adaptation already trained past ``steps`` is kept (the editor, run)
    # a few frames held out of the adaptation to choose the mouth detail's settings on (app.detail)
    detail_check: bool = True

    @property
    def chosen_mode(self) -> str:
        return self.mode or ("texture" if self.prior else "full")

    def check(self) -> None:
        if self.steps < 1:
            raise DubStudioError("--steps must be at least 1.")
        if self.prior is not None and self.from_shot is not None:
            raise DubStudioError("give a prior or another shot to start from, not both.")
        if self.mode is not None and self.mode not in ADAPT_MODES:
            raise DubStudioError(f"mode must be one of {', '.join(ADAPT_MODES)}, got {self.mode!r}.")
        if self.prior is not None and not Path(self.prior).is_file():
            raise DubStudioError(f"{self.prior} not found; check the path.")
        if self.from_shot is not None and self.chosen_mode == "mixed":
            raise DubStudioError("mixed mode mixes the prior's people in and cannot start from another shot; use full or texture.")


@dataclass
class AdaptResult:
    train: Any  # training.trainer.TrainResult
    mode: str
    project: Path
    from_shot: Path | None = None
    detail: Any = None  # eval.detail_check.DetailCheck, None when not checked

    def to_json(self) -> dict:
        out = {**self.train.to_json(), "mode": self.mode, "project": str(self.project),
               "from_shot": str(self.from_shot) if self.from_shot else None,
               "mouth_detail": self.detail.to_json() if self.detail is not None else None}
        vals = [h for h in self.train.history if "val_mouth_psnr" in h]
        if vals:
            out["val_mouth_psnr"] = vals[-1]["val_mouth_psnr"]
            out["val_mask_psnr"] = vals[-1]["val_mask_psnr"]
        return out

    def describe(self) -> str:
        origin = f", from {self.from_shot}" if self.from_shot else ""
        text = describe_training(self.train, f"adapt ({self.mode}{origin})")
        return text + ("\n" + self.detail.describe() if self.detail is not None else "")


def describe_training(r, what: str) -> str:
    return (f"{what}: {r.steps} steps (resumed from {r.resumed_from}), final loss {r.final_loss:.4f}, "
            f"{r.steps_per_s:.2f} steps/s, {r.wall_s:.0f} s -> {r.path} ({r.stored_bytes / 1e6:.2f} MB)"
            + (f"\nwarning: {r.warning}" if getattr(r, "warning", None) else ""))


def adapt_job(req: AdaptRequest, progress: Progress | None = None, *,
              preview: Callable[[int, np.ndarray], None] | None = None, preview_frame: int | None = None,
              preview_every: int = 25) -> AdaptResult:
    """Adapt the renderer to the project's actor (resumes a stopped run; cached when done).
    ``preview(step, image)`` is the editor's hook for a live preview (called from this thread)."""
    from dubstudio.training.trainer import adapt

    req.check()
    set_threads(req.threads)
    device = resolve_device(req.device)
    # the CUDA preset only from scratch: a prior or another shot's actor fixes the network's shape
    scratch = req.prior is None and req.from_shot is None
    cfg = train_config(req.overrides, req.config_file, str(device) if scratch else None)
    project = Project.open(req.project)
    tracking = tracking_of(project)[0]
    n = tracking.n_frames
    start = actor_file_of(req.from_shot) if req.from_shot is not None else None
    prior_projects = [Project.open(p) for p in req.prior_projects] if req.prior_projects else None
    frames = list(parse_frames(req.frames, n))
    val = list(parse_frames(req.val_frames, n)) if req.val_frames else None
    runs: list[list[int]] = []
    if req.detail_check:
        runs, held = plan_check(tracking.has_face, frames if req.frames else None)
        frames = held if held is not None else frames
    if val is None:
        cfg = cfg.replace(val_every=0)
    r = adapt(project, req.chosen_mode, req.steps, frames=frames, prior=req.prior, prior_projects=prior_projects, cfg=cfg,
              device=device, progress=progress, restart=req.restart, val_frames=val,
              preview=preview, preview_frame=preview_frame, preview_every=preview_every, start_from=start,
              keep_longer=req.keep_longer)
    detail = check_job(project, r.path, runs, str(device), progress) if req.detail_check else None
    return AdaptResult(r, req.chosen_mode, project.root, start, detail)


@dataclass(frozen=True)
class PriorRequest:
    projects: tuple[Path, ...]  # tracked project folders, video files or folders of videos (one identity each)
    out: Path  # the prior checkpoint (resumed when it exists)
    steps: int
    frames: str | None = None  # frame range used from every project
    work: Path | None = None  # where projects for video files go (default: the projects folder)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    config_file: Path | None = None
    device: str = "auto"
    threads: int | None = None
    restart: bool = False


@dataclass
class PriorResult:
    train: Any
    identities: int

    def to_json(self) -> dict:
        return {**self.train.to_json(), "identities": self.identities}

    def describe(self) -> str:
        return describe_training(self.train, "prior")


def prior_job(req: PriorRequest, progress: Progress | None = None) -> PriorResult:
    """Train (or resume) a person-generic prior renderer over several actors."""
    from dubstudio.training.trainer import train_prior

    if req.steps < 1:
        raise DubStudioError("--steps must be at least 1.")
    set_threads(req.threads)
    cfg = train_config(req.overrides, req.config_file)
    progress = progress or Progress()
    projects = open_projects(req.projects, req.work, progress)
    frames = None
    if req.frames:
        n = max(tracking_of(p)[0].n_frames for p in projects)
        frames = list(parse_frames(req.frames, n))
    r = train_prior(projects, Path(req.out), req.steps, cfg, resolve_device(req.device), progress, frames=frames, restart=req.restart)
    register_trained("prior", Path(req.out), r.steps, projects)
    return PriorResult(r, len(projects))

