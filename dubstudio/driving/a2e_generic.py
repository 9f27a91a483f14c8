"""The person-generic audio-to-expression model: settings, loss, checkpoints and training.

Losses: L1 on controls (each control divided by its spread over the training set, the jaw
weighted x2); the jaw's L1 again on the tracked mouth's closures inside speech (x4: rare, short
targets that a plain L1 fit mumbles through); L1 on their first differences (no jitter); and a
silence term pulling the jaw to 0 on frames whose speech envelope is at the noise floor (the
tracked jaw is ignored there: people breathe, smile and hold the mouth open in pauses, and the dub
must not).

Checkpoints (generic and actor, see ``a2e_actor``) are ``torch.save`` dicts read back with
``weights_only=True``; a checkpoint of another format/model version is refused with a message,
never half-loaded.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dubstudio import __version__
from dubstudio.core.jobs import Progress
from dubstudio.nn import registry
from dubstudio.nn.checkpoint import holds_objects
from dubstudio.driving.a2e_data import TARGET_DBFS, Audio2ExprError, ClipData, _batch, _n_frames, _source, augment, prepare_clip
from dubstudio.driving.audio2expr import MODEL_VERSION, Audio2Expr, Audio2ExprConfig, n_params
from dubstudio.nn.audio_features import MelSettings
from dubstudio.core.errors import Cancelled
from dubstudio.io.atomic import atomic_open, atomic_write_json, file_fingerprint
from dubstudio.core.controls import CONTROL_NAMES, JAW

FORMAT = 1
TRAIN_VERSION = 1
GENERIC_KIND = "audio2expr-generic"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500
    batch: int = 16
    seq_frames: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    jaw_weight: float = 2.0
    velocity_weight: float = 0.5
    silence_weight: float = 1.0
    # extra jaw L1 on the tracked mouth's in-speech closures (a2e_data.closure_frames), which a
    # plain L1 fit mumbles through; 0 = off (docs/decisions.md, sixth session)
    closure_weight: float = 4.0
    fps_variants: tuple[str, ...] = ("24000/1001", "25", "30000/1001", "30")  # + each clip's own
    gain_db: float = 6.0  # random gain augmentation (+-)
    tilt_db: float = 6.0  # random spectral tilt (+- over the mel range)
    noise_prob: float = 0.5  # probability of adding a random noise floor
    warp: float = 0.0  # vocal-tract-length style warp of the mel axis (+- fraction)
    freq_masks: int = 0  # SpecAugment frequency masks per sample
    freq_mask_bins: int = 8  # widest mask
    seed: int = 0
    threads: int | None = None  # torch threads while training (None: leave as set)
    log_every: int = 25
    checkpoint_every: int = 500
    # Early stopping: the last val_fraction of every clip is held out (no augmentation); the
    # weights with the lowest validation loss (checked every val_every steps) are kept.
    val_fraction: float = 0.0
    val_every: int = 100


def a2e_loss(pred: torch.Tensor, tgt: torch.Tensor, valid: torch.Tensor, silent: torch.Tensor, std: torch.Tensor, cfg: TrainConfig,
             closure: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted L1 + velocity L1 + silence term (+ the jaw's L1 again on ``closure`` frames,
    x ``closure_weight``); all per-frame averages (see module doc)."""
    w = torch.ones(pred.shape[-1])
    w[JAW] = cfg.jaw_weight
    w = w / w.sum() / std
    m = valid[..., None].float().expand_as(pred).clone()
    m[..., JAW] *= (~silent).float()  # silence term owns the jaw there
    n_valid = valid.float().sum().clamp(min=1)
    l1 = ((pred - tgt).abs() * w * m).sum() / n_valid
    dv = (pred[:, 1:] - pred[:, :-1]) - (tgt[:, 1:] - tgt[:, :-1])
    mv = m[:, 1:] * m[:, :-1]
    vel = (dv.abs() * w * mv).sum() / mv[..., 0].sum().clamp(min=1)
    sil = (pred[..., JAW].abs() * silent.float()).sum() / (std[JAW] * silent.numel())
    total = l1 + cfg.velocity_weight * vel + cfg.silence_weight * sil
    parts = {"l1": l1.item(), "velocity": vel.item(), "silence": sil.item()}
    if closure is not None and cfg.closure_weight > 0:
        mc = (closure & valid).float()
        clo = ((pred[..., JAW] - tgt[..., JAW]).abs() * mc).sum() * w[JAW] / n_valid
        total = total + cfg.closure_weight * clo
        parts["closure"] = clo.item()
    return total, parts


# ------------------------------------------------------------------------------------ checkpoints


def _save(path: Path, payload: dict[str, Any]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "code_version": __version__, "model_version": MODEL_VERSION,
                "train_version": TRAIN_VERSION, **payload}, buf)
    with atomic_open(path) as f:
        f.write(buf.getvalue())
    return buf.tell()


def _load(path: str | Path, kind: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise Audio2ExprError(f"audio-to-expression checkpoint not found: {path}; check the path or run `dubstudio audio2expr train`.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise Audio2ExprError(f"{path} is not a readable audio-to-expression checkpoint ({type(e).__name__}); it may be damaged, train again.") from e
    except Exception as e:  # an unpickling refusal: Python objects a model file never holds, or garbage
        if not holds_objects(e):
            raise Audio2ExprError(f"{path} is not a readable audio-to-expression checkpoint; it may be damaged, train again.") from e
        raise Audio2ExprError(f"{path} is not a DubStudio model: it holds Python objects that a DubStudio checkpoint never "
                              f"contains, so it was not loaded (nothing in it ran); use a file DubStudio trained.") from e
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        got = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
        raise Audio2ExprError(f"{path} holds a '{got}' file, expected an '{kind}' checkpoint.")
    if obj.get("format") != FORMAT or obj.get("model_version") != MODEL_VERSION:
        raise Audio2ExprError(
            f"{path} was written by another DubStudio ({obj.get('code_version')}, model v{obj.get('model_version')}); "
            f"this one reads model v{MODEL_VERSION}: train again with `dubstudio audio2expr train`."
        )
    return obj


@dataclass
class GenericModel:
    """A loaded person-generic model."""

    model: Audio2Expr
    control_std: np.ndarray
    step: int
    config: dict
    fingerprint: str = ""
    path: Path | None = None

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return _run(self.model, windows)


def load_generic(path: str | Path) -> GenericModel:
    obj = _load(path, GENERIC_KIND)
    if list(obj["config"]["controls"]) != list(CONTROL_NAMES):
        raise Audio2ExprError(f"{path} predicts controls {obj['config']['controls']}, this DubStudio uses {list(CONTROL_NAMES)}; train again.")
    model = Audio2Expr(Audio2ExprConfig.from_dict(obj["config"]["model"]))
    model.load_state_dict(obj["state_dict"])
    model.eval()
    return GenericModel(model, np.asarray(obj["config"]["control_std"], np.float32), int(obj["step"]),
                        obj["config"], file_fingerprint(path), Path(path))


def default_generic_path() -> Path:
    """Where `dubstudio audio2expr train` puts the generic model unless told otherwise: the
    models folder (``nn.registry``; the built-in model, ``builtin_generic_path``, lives elsewhere)."""
    return registry.model_path("audio2expr")


def legacy_generic_path() -> Path:
    """Where DubStudio before the models folder kept it (per user)."""
    from dubstudio.core.paths import user_data_dir

    return user_data_dir() / "models" / "audio2expr-generic.pt"


def builtin_generic_path(respect_switch: bool = True) -> Path | None:
    """The generic model that ships with DubStudio, trained on synthesised speech only
    (``a2e_synthetic``); None when it is missing or switched off (DUBSTUDIO_BUILTIN_MODELS=0, e.g.
    to measure a bare install; the script aligner reads its network whatever the switch says:
    ``respect_switch=False``)."""
    import os

    from dubstudio.core.paths import RESOURCES

    if respect_switch and os.environ.get("DUBSTUDIO_BUILTIN_MODELS", "1").strip().lower() in ("0", "off", "no", "false"):
        return None
    p = RESOURCES / "models" / "audio2expr-synthetic.pt"
    return p if p.is_file() else None


def find_generic() -> Path | None:
    """The generic checkpoint a dub uses when none is named: the registered default, else a file
    at the default place (copied there by hand), else one an earlier version trained, else the
    built-in one; None when there is none (then adaptation trains a small model from scratch on
    the shot)."""
    found = registry.default_model("audio2expr")
    if found is not None:
        return found
    for p in (default_generic_path(), legacy_generic_path()):
        if p.is_file():
            return p
    return builtin_generic_path()


def _generic(g: Any) -> GenericModel | None:
    if g is None or isinstance(g, GenericModel):
        return g
    return load_generic(g)


@torch.no_grad()
def _run(model: Audio2Expr, windows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(N, 80, 16) -> (N, 7) in eval mode, in overlapping chunks (exact: overlap > receptive field)."""
    was = model.training
    model.eval()
    n, ctx = len(windows), model.cfg.receptive_frames
    out = np.empty((n, model.cfg.n_controls), np.float32)
    x = torch.from_numpy(np.ascontiguousarray(windows, np.float32))
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo, hi = max(0, a - ctx), min(n, b + ctx)
        y = model(x[None, lo:hi])[0].numpy()
        out[a:b] = y[a - lo : a - lo + (b - a)]
    model.train(was)
    return out


# ------------------------------------------------------------------------------------ training


@dataclass
class TrainResult:
    path: Path
    steps: int
    seconds: float
    loss_first: float  # mean loss over the first log window
    loss_last: float  # mean loss over the last log window
    n_params: int
    clips: list[dict] = field(default_factory=list)


def _val_loss(model: Audio2Expr, val: list[ClipData], std_t: torch.Tensor, cfg: TrainConfig) -> float:
    """Frame-weighted loss over whole validation clips (eval mode, no augmentation)."""
    was = model.training
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for d in val:
            t = lambda a: torch.from_numpy(a)[None]  # noqa: E731
            loss, _ = a2e_loss(model(t(d.windows)), t(d.controls), t(d.valid), t(d.silent), std_t, cfg)
            tot, n = tot + loss.item() * d.n, n + d.n
    model.train(was)
    return tot / max(n, 1)


def _train_loop(model: Audio2Expr, clips: list[ClipData], std: np.ndarray, cfg: TrainConfig, progress: Progress,
                state: dict | None = None, on_checkpoint: Any = None, val: list[ClipData] | None = None) -> tuple[int, list[float], dict]:
    """Train in place. Returns (steps done, logged mean losses, early-stopping record); with
    ``val`` the best validation weights are loaded into ``model`` at the end."""
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 1), pct_start=0.1)
    step, losses = 0, []
    best: dict = {"val_loss": math.inf, "step": 0, "state": None, "history": []}
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        rng = np.random.default_rng([cfg.seed, step])
        gen.manual_seed(cfg.seed * 7919 + step)
        if state.get("best"):
            best = dict(state["best"])
    std_t = torch.from_numpy(np.asarray(std, np.float32))
    seq = cfg.seq_frames
    model.train()
    window: list[float] = []
    try:
        while step < cfg.steps:
            x, y, v, s, c = _batch(clips, cfg.batch, seq, rng)
            loss, parts = a2e_loss(model(augment(x, cfg, gen)), y, v, s, std_t, cfg, closure=c)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            window.append(loss.item())
            if val and (step % cfg.val_every == 0 or step == cfg.steps):
                vl = _val_loss(model, val, std_t, cfg)
                best["history"].append([step, vl])
                if vl < best["val_loss"]:
                    best |= {"val_loss": vl, "step": step,
                             "state": {k: t.detach().clone() for k, t in model.state_dict().items()}}
            if step % cfg.log_every == 0 or step == cfg.steps:
                losses.append(float(np.mean(window)))
                window = []
                extra = {"val_loss": best["history"][-1][1]} if best["history"] else {}
                progress.update(step, cfg.steps, loss=losses[-1], **parts, **extra)
            else:
                progress.check()
            if on_checkpoint and cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                on_checkpoint(step, opt, sched, best)
    except Cancelled:
        if on_checkpoint:
            on_checkpoint(step, opt, sched, best)
        raise
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return step, losses, best


def train_generic(
    clips: Sequence[Any],
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    model_config: Audio2ExprConfig = Audio2ExprConfig(),
    progress: Progress | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the person-generic model on tracked clips and write the checkpoint ``out`` (atomic).

    ``clips``: project folders / ``Project`` objects (tracking + the video's audio), ``(tracking
    npz, audio file)`` pairs or ``ClipSource``s. A checkpoint is written every
    ``checkpoint_every`` steps and on cancel; ``resume`` continues an interrupted run of the
    same settings from ``out``. A frozen copy of the settings is written to ``out`` + ".json".
    """
    progress = progress or Progress()
    out = Path(out)
    if not clips:
        raise Audio2ExprError("no clips to train on; give tracked project folders (run `dubstudio track` first).")
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        progress.stage("audio2expr: features")
        data: list[ClipData] = []
        native: list[ClipData] = []
        info = []
        val: list[ClipData] = []
        for i, s in enumerate(clips):
            s = _source(s)
            if config.val_fraction > 0:
                n = _n_frames(s)
                lo, hi = s.start, n if s.stop is None else min(n, s.stop)
                cut = hi - max(2, int(round(config.val_fraction * (hi - lo))))
                val += prepare_clip(replace(s, start=cut, stop=hi), (), centre=True)[0]
                s = replace(s, stop=cut)
            parts, _ = prepare_clip(s, config.fps_variants, centre=True)
            data += parts
            native.append(parts[0])
            info.append({"name": parts[0].name, "frames": parts[0].n, "fps": str(parts[0].fps),
                         "silent_frac": float(parts[0].silent.mean())})
            progress.update(i + 1, len(clips))
        return fit_generic(data, native, info, val, out, config, model_config, progress, resume)
    finally:
        torch.set_num_threads(old_threads)


def fit_generic(data: list[ClipData], native: list[ClipData], info: list[dict], val: list[ClipData], out: Path,
                config: TrainConfig, model_config: Audio2ExprConfig, progress: Progress, resume: bool) -> TrainResult:
    """Train on prepared clips (``data``: every clip at every frame rate; ``native``: one per clip,
    for the controls' spread; ``info``: what the checkpoint records of each) and write ``out``.
    Shared by ``train_generic`` (tracked clips) and ``a2e_synthetic`` (synthesised speech)."""
    allc = np.concatenate([d.controls[d.valid] for d in native])
    std = np.maximum(allc.std(axis=0), 1e-3).astype(np.float32)
    model = Audio2Expr(model_config)
    settings = {"model": model_config.to_dict(), "train": _jsonable(asdict(config)), "controls": list(CONTROL_NAMES),
                "control_std": std.tolist(), "mel": asdict(MelSettings()), "target_dbfs": TARGET_DBFS,
                "clips": info}
    state = None
    if resume and out.is_file():
        try:
            prev = _load(out, GENERIC_KIND)
        except Audio2ExprError:
            prev = None
        if prev and prev.get("settings_match") == _settings_key(settings) and "optimizer" in prev and prev["step"] < config.steps:
            model.load_state_dict(prev["state_dict"])
            state = prev
    t0 = time.perf_counter()

    def save(step: int, opt: Any = None, sched: Any = None, best: dict | None = None, metrics: dict | None = None) -> None:
        payload = {"kind": GENERIC_KIND, "config": settings, "step": step, "state_dict": model.state_dict(),
                   "settings_match": _settings_key(settings), "metrics": metrics or {}}
        if opt is not None:  # resumable: optimiser, schedule and the early-stopping record
            payload |= {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "best": best}
        _save(out, payload)

    progress.stage("audio2expr: train")
    step, losses, best = _train_loop(model, data, std, config, progress, state, save, val)
    secs = time.perf_counter() - t0
    metrics = {"loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
               "train_seconds": secs, "n_params": n_params(model), "steps_run": step}
    if val:
        metrics |= {"best_step": best["step"], "val_loss": best["val_loss"], "val_history": best["history"]}
    save(best["step"] if val else step, metrics=metrics)  # final: weights only (no optimiser), ~1.4 MB
    atomic_write_json(out.with_name(out.name + ".json"), {"kind": GENERIC_KIND, "code_version": __version__,
                                                         "model_version": MODEL_VERSION, "step": step,
                                                         "config": settings, "metrics": metrics})
    return TrainResult(out, step, secs, metrics["loss_first"] or float("nan"), metrics["loss_last"] or float("nan"),
                       n_params(model), info)


def _settings_key(settings: dict) -> str:
    from dubstudio.io.atomic import settings_hash

    s = dict(settings, train={k: v for k, v in settings["train"].items() if k not in ("threads", "log_every", "checkpoint_every")})
    return settings_hash(s)


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda o: o.to_dict() if hasattr(o, "to_dict") else asdict(o)))
