"""Prior training over many identities and per-actor adaptation of the neural renderer.

- ``train_prior``: one generator shared by all identities, one neural texture per identity, all
  trained jointly ("Dubbing for Everyone" 3.4). Writes one ``prior`` checkpoint (weights, textures,
  optimiser and RNG state), which is also the resume state: running the same command again after a
  kill continues at the saved step.
- ``adapt``: a fresh texture for one project; the generator comes from a prior (or is trained from
  scratch). Modes: ``texture`` (generator frozen, only the texture is trained and stored, fp16,
  <= 1 MB; texels no training frame sampled are filled from their neighbours before it is
  stored, see ``rendering.texel_coverage``), ``full`` (generator fine-tuned too), ``mixed`` (full, with every batch half actor
  windows and half windows of the prior's identities, their textures frozen). The resumable state
  lives in ``cache/adapt/<mode>-<key>.state.pt`` of the project (one per mode: a run with other
  settings replaces it), the result is ``cache/adapt/actor_<mode>-<key>.pt`` (one per configuration)
  and the project's ``adapt`` / ``adapt_<mode>`` stage records point to the latest.
- ``adapt(..., start_from=ACTOR)``: the same actor in another shot (``from_shot`` finds its actor
  file and checks the face). The texture and the generator start from that shot's adaptation
  instead of the prior, so a further shot of an actor needs a short run (BENCHMARKS.md, "another shot of the same actor"); texels that shot saw and this one
  does not keep what it learned.

The models, optimisers and the training loop of one run are ``session.Session`` (re-exported
here); how long work reports progress and when it checkpoints is described there.
"""

from __future__ import annotations

import copy
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

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import DubStudioError, ProjectError
from dubstudio.io.atomic import settings_hash
from dubstudio.project.store import Project
from dubstudio.nn.generator import dilate_px, render_mask
from dubstudio.nn.neural_texture import NeuralTexture
from dubstudio.rendering.texel_coverage import fill_unseen, seen_texels
from dubstudio.nn import checkpoint as ckpt
from dubstudio.training.data import FrameCache, WindowSampler, neutral_reference
from dubstudio.shot.tracking import tracking_of
from dubstudio.training.from_shot import same_actor_warning, start_source
from dubstudio.shot.adaptation import shot_name
from dubstudio.nn.config import TrainConfig
from dubstudio.training.session import Session, torch_batch  # noqa: F401 (torch_batch: re-exported, it lived here)

log = logging.getLogger(__name__)

MODES = ("texture", "full", "mixed")
TEX_INITS = ("random", "prior-mean")
ADAPT_VERSION = 1
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")


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
    warning: str | None = None  # something the user should check (e.g. another shot that is not this actor)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "steps": self.steps, "steps_run": self.steps_run,
            "final_loss": self.final_loss, "steps_per_s": self.steps_per_s, "wall_s": self.wall_s,
            "stored_bytes": self.stored_bytes, "resumed_from": self.resumed_from, "cached": self.cached,
            "warning": self.warning,
        }


def identity_name(project: Project) -> str:
    stem = _NAME_BAD.sub("_", project.video_path.stem)[:32] or "actor"
    return f"{stem}-{project.video_fingerprint[:8]}"


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


def _check_tex_init(cfg: TrainConfig) -> None:
    if cfg.tex_init not in TEX_INITS:
        raise DubStudioError(f"unknown texture initialisation {cfg.tex_init!r}; use one of {', '.join(TEX_INITS)}.")


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
    start_from: str | Path | None = None,
    keep_longer: bool = False,
) -> TrainResult:
    """Adapt the renderer to ``project``'s actor on ``frames``; see the module docstring.

    ``start_from``: an actor file of the same person adapted on another shot
    (``actor_file_of(project_or_file)`` finds it); excludes ``prior``.
    ``keep_longer``: an adaptation of the same inputs already trained past ``steps`` is returned as
    it is (the editor and ``run``, which have no --restart) instead of being refused.

    ``preview(step, image)``, if given, is called from the training thread every ``preview_every``
    steps with a (R, 2R, 3) uint8 image, the real crop of ``preview_frame`` (default: the middle
    training frame) beside its current rendering; the editor shows it while the job runs."""
    _check_steps(steps)
    _check_tex_init(cfg)
    t_all = time.perf_counter()
    progress = progress or Progress()
    device = _device(device)
    if mode not in MODES:
        raise DubStudioError(f"unknown adaptation mode {mode!r}; use one of {', '.join(MODES)}.")
    if mode == "texture" and prior is None and start_from is None:
        raise DubStudioError("texture mode trains only the texture, so it needs a prior renderer: give --prior FILE.")

    prior_ck = None
    src = None  # the actor file of another shot this run starts from
    if start_from is not None:
        if prior is not None:
            raise DubStudioError("start either from a prior (--prior) or from another shot of the actor (--from-shot), not both.")
        if mode == "mixed":
            raise DubStudioError("mixed mode mixes the prior's people into the batches; starting from another shot "
                                 "of the actor, use full (or texture) mode.")
        src = start_source(start_from)
        pcfg = TrainConfig.from_dict(src["config"])
        cfg = cfg.replace(resolution=pcfg.resolution, generator=pcfg.generator,
                          tex_resolution=pcfg.tex_resolution, tex_levels=pcfg.tex_levels)
        if src["generator"] is None:  # a texture-mode actor: its generator is its prior's
            prior = src["prior"]["path"]
    if prior is not None:
        prior_ck = ckpt.load(prior, "prior")
        pcfg = TrainConfig.from_dict(prior_ck["config"])
        # the architecture is the prior's; the training settings are this run's
        cfg = cfg.replace(resolution=pcfg.resolution, generator=pcfg.generator,
                          tex_resolution=pcfg.tex_resolution, tex_levels=pcfg.tex_levels)
    torch.manual_seed(cfg.seed)  # texture initialisation
    tracking, track_key = tracking_of(project)
    actor = identity_name(project)
    warning = same_actor_warning(src, start_from, tracking) if src is not None else None
    idx = _face_frames(project, frames)
    caches = {actor: FrameCache.build(project, idx, cfg.resolution, progress, tracking)}
    ref_frame = int(caches[actor].indices[neutral_reference(caches[actor], tracking)])

    textures = {actor: cfg.new_texture()}
    if src is not None:
        textures[actor].load_state_dict({k: v.float() for k, v in src["texture"].items()})
    elif cfg.tex_init == "prior-mean" and prior_ck is not None:
        prior_mean_texture(textures[actor], prior_ck["textures"])
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
        {"tracking": track_key, "prior": ckpt.fingerprint(prior) if prior else "", "others": sorted(other_keys),
         **({"start_from": ckpt.fingerprint(start_from)} if src is not None else {})},
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
        if prev is not None and prev.get("key") == key and (int(prev["step"]) == steps or (keep_longer and int(prev["step"]) > steps)):
            _record(project, mode, actor_path, prev.get("metrics", {}))
            return TrainResult(actor_path, int(prev["step"]), 0, float(prev["metrics"].get("final_loss", float("nan"))), 0.0,
                               time.perf_counter() - t_all, actor_path.stat().st_size, int(prev["step"]), prev.get("history", []),
                               cached=True, warning=warning)

    b_actor = cfg.batch_size if mode != "mixed" else (cfg.batch_size + 1) // 2

    def plan(rng: np.random.Generator) -> list[str]:
        if mode != "mixed":
            return [actor] * cfg.batch_size
        return [actor] * b_actor + [others[k] for k in rng.integers(len(others), size=cfg.batch_size - b_actor)]

    sampler = WindowSampler(caches, cfg.generator.window)
    if src is not None and src["generator"] is not None:
        gen_state = src["generator"]
    else:
        gen_state = prior_ck["generator"] if prior_ck is not None else None
    # texture mode stores no generator when it is the prior's file; one fine-tuned on another shot is stored
    store_generator = mode != "texture" or (src is not None and src["generator"] is not None)
    sess = Session(
        cfg, device, sampler, plan, textures, trainable, train_generator=(mode != "texture"), generator_state=gen_state,
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
    # the stored texture: texels no training frame sampled get their seen neighbours' features
    # (texel_coverage explains the blotch this prevents); the training state keeps the raw one
    seen = training_coverage(caches[actor], cfg.tex_resolution)
    if src is not None and src.get("seen_texels") is not None:
        seen |= src["seen_texels"].cpu().bool()  # what the other shot learned is kept, not filled over
    texture = copy.deepcopy(sess.textures[actor]).cpu()
    n_filled = fill_unseen(texture, seen)
    metrics = {"final_loss": sess.final_loss, "steps": sess.step, "mode": mode,
               "steps_per_s": n_run / loop_s if n_run else 0.0,
               "texels_seen": int(seen.sum()), "texels_filled": n_filled}
    if src is not None:
        metrics["from_shot"] = shot_name(start_from)
    payload = {
        "key": key, "mode": mode, "config": cfg.to_dict(), "step": sess.step, "actor": actor,
        "frames": idx, "reference_frame": ref_frame, "tracking_key": track_key,
        "identity": torch.from_numpy(np.asarray(tracking.identity, np.float32)),  # for the same-actor check
        "texture": texture.state_fp16(), "texture_shape": cfg.texture_shape(), "seen_texels": seen,
        "prior": {"path": str(Path(prior).resolve()), "fingerprint": ckpt.fingerprint(prior)} if prior else None,
        "generator": sess.gen.state_dict() if store_generator else None,
        "history": sess.history, "metrics": metrics,
        "start_from": ({"path": str(Path(start_from).resolve()), "fingerprint": ckpt.fingerprint(start_from),
                        "actor": src["actor"], "frames": len(src["frames"])} if src is not None else None),
    }
    size = ckpt.save(actor_path, "actor", payload)
    metrics["stored_bytes"] = size
    _record(project, mode, actor_path, metrics)
    return TrainResult(
        path=actor_path, steps=sess.step, steps_run=n_run, final_loss=sess.final_loss,
        steps_per_s=metrics["steps_per_s"], wall_s=time.perf_counter() - t_all, stored_bytes=size,
        resumed_from=resumed_from, history=sess.history, warning=warning,
    )


@torch.no_grad()
def prior_mean_texture(texture: NeuralTexture, prior_textures: dict[str, dict[str, torch.Tensor]]) -> None:
    """Add the mean of the prior's identity textures to ``texture`` (its initial noise), level by level."""
    states = list(prior_textures.values())
    if not states:
        return
    for k, p in texture.state_dict().items():
        p += torch.stack([s[k].float() for s in states]).mean(0).to(p.device)


def training_coverage(cache: FrameCache, tex_resolution: int, chunk: int = 64) -> torch.Tensor:
    """(T, T) bool: the texels sampled while training on ``cache`` (inside the generator's mask)."""
    seen = torch.zeros(tex_resolution, tex_resolution, dtype=torch.bool)
    px = dilate_px(cache.resolution)
    for s in range(0, len(cache), chunk):
        where = render_mask(torch.from_numpy(cache.regions[s : s + chunk]), px) > 0
        seen |= seen_texels(torch.from_numpy(cache.uv[s : s + chunk].astype(np.float32)), where, tex_resolution)
    return seen


def _record(project: Project, mode: str, actor_path: Path, metrics: dict) -> None:
    rel = actor_path.relative_to(project.root).as_posix()
    key = settings_hash({"actor": rel, "mtime": actor_path.stat().st_mtime_ns})
    m = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not (isinstance(v, float) and math.isnan(v))}
    project.record_stage(f"adapt_{mode}", key, {"actor": rel}, m)
    project.record_stage("adapt", key, {"actor": rel}, m)
