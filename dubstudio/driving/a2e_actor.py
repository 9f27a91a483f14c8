"""Per-actor audio-to-expression adaptation, fitted on the actor's own shot.

With a generic model: a per-control scale/offset on its frozen output (``ActorLayer``), fitted
on the shot's tracked controls. Without one: a small model trained on the shot alone. The shot's
own audio may be out of sync with its picture; the lag is measured (against the generic's jaw,
or without a model by ``av_offset`` for the small one) and the fit uses realigned pairs
(``AdaptConfig.sync_max_s``). ``adapt_project`` caches the
result in the project by content.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dubstudio.core.jobs import Progress
from dubstudio.driving.a2e_data import Audio2ExprError, ClipData, _source, clip_from_project, prepare_clip
from dubstudio.driving.a2e_generic import (
    TRAIN_VERSION,
    TrainConfig,
    _generic,
    _jsonable,
    _load,
    _save,
    _train_loop,
    a2e_loss,
)
from dubstudio.driving.audio2expr import MODEL_VERSION, ActorLayer, Audio2Expr, Audio2ExprConfig, n_params
from dubstudio.driving.av_offset import shot_av_offset
from dubstudio.core.errors import MediaError
from dubstudio.core.controls import CONTROL_NAMES, JAW

ACTOR_KIND = "audio2expr-actor"
OFFSET_RULE = 2  # 2: a shot's own offset needs both halves to agree (adaptations cached under 1 are redone)
STAGE = "audio2expr_adapt"
N_CTRL = len(CONTROL_NAMES)


@dataclass(frozen=True)
class AdaptConfig:
    steps: int = 400  # linear layer: full-batch Adam steps (milliseconds each)
    lr: float = 0.02
    reg: float = 0.05  # pull scale towards 1 (and offset towards its initial value)
    # Keep the actor's range of motion: |spread(pred) - spread(tracked)| (5-95 % percentile
    # spread) of the jaw. Plain L1 shrinks the scale where the prediction is uncertain (a
    # mumbling mouth). Only the jaw: the other controls are weakly predictable from audio and
    # scaling them up would amplify noise.
    spread_weight: float = 1.0
    spread_controls: tuple[str, ...] = ("jaw_open",)
    # The shot's own audio may be out of sync with its picture (real footage often is): find the
    # lag between the generic's jaw and the tracked jaw within +-sync_max_s and fit on the
    # realigned pairs when it clearly beats lag 0 (r better by sync_min_gain). 0 disables.
    sync_max_s: float = 0.4
    sync_min_gain: float = 0.1
    scale_limits: tuple[float, float] = (0.2, 5.0)
    # From scratch (no generic model): a smaller net trained on the shot alone. It hears one
    # voice and must drive from another: a vocal-tract-length warp of the mel axis and frequency
    # masks make it rely less on that voice's own spectrum (on five actors' shots the driven jaw
    # follows four languages' envelopes at r 0.38 against 0.24 without; docs/decisions.md,
    # twelfth session).
    scratch_model: Audio2ExprConfig = Audio2ExprConfig(enc_channels=32, width=64, dilations=(1, 2, 4), dropout=0.2)
    scratch_train: TrainConfig = TrainConfig(steps=500, batch=8, seq_frames=48, lr=3e-3, weight_decay=1e-3,
                                             warp=0.1, freq_masks=2)
    # The shot's own audio/picture offset, measured without a model (``av_offset``), is taken
    # out of the scratch model's training pairs, or the model carries it into every dub.
    scratch_sync: bool = True


@dataclass
class ActorAdaptation:
    """What turns audio into this actor's controls.

    mode ``"linear"``: per-control ``scale * generic + offset`` over the generic model (paper 3.6);
    ``"scratch"``: no generic model was given, a small model trained on the shot alone (its output
    goes through the same scale/offset); ``"offset-only"``: a generic model but no usable shot
    audio, so only the actor's resting controls are applied.
    """

    mode: str
    scale: np.ndarray
    offset: np.ndarray
    model: Audio2Expr | None = None  # scratch mode only
    generic: dict | None = None  # {"path", "fingerprint", "step"} of the generic it was fitted on
    metrics: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return {"mode": self.mode, "generic": self.generic, "metrics": self.metrics,
                "scale": dict(zip(CONTROL_NAMES, map(float, self.scale))),
                "offset": dict(zip(CONTROL_NAMES, map(float, self.offset)))}

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return raw * self.scale + self.offset

    def save(self, path: str | Path) -> Path:
        payload = {"kind": ACTOR_KIND, "mode": self.mode, "scale": torch.tensor(self.scale, dtype=torch.float32),
                   "offset": torch.tensor(self.offset, dtype=torch.float32), "generic": self.generic,
                   "metrics": _jsonable(self.metrics), "controls": list(CONTROL_NAMES)}
        if self.model is not None:
            payload |= {"model_config": self.model.cfg.to_dict(), "state_dict": self.model.state_dict()}
        _save(Path(path), payload)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ActorAdaptation:
        obj = _load(path, ACTOR_KIND)
        model = None
        if "state_dict" in obj:
            model = Audio2Expr(Audio2ExprConfig.from_dict(obj["model_config"]))
            model.load_state_dict(obj["state_dict"])
            model.eval()
        return cls(str(obj["mode"]), obj["scale"].numpy().astype(np.float64), obj["offset"].numpy().astype(np.float64),
                   model, obj.get("generic"), dict(obj.get("metrics") or {}))


def adapt_actor(
    shot: Any,
    generic: Any = None,
    config: AdaptConfig = AdaptConfig(),
    progress: Progress | None = None,
) -> ActorAdaptation:
    """Fit the actor's adaptation on their own shot (tracking + the shot's audio, always paired).

    ``shot``: project folder/Project, ``(tracking, audio)`` pair or ``ClipSource`` (use
    ``start``/``stop`` to fit on part of it). ``generic``: checkpoint path or ``GenericModel``;
    None trains a small model from scratch on the shot (``mode="scratch"`` in the result).
    """
    progress = progress or Progress()
    g = _generic(generic)
    src = _source(shot)
    t0 = time.perf_counter()
    if g is None:
        progress.stage("audio2expr: actor model from scratch")
        parts, median = prepare_clip(src, config.scratch_train.fps_variants, centre=True)
        sync = shot_av_offset(parts[0], config.sync_max_s) if config.scratch_sync else {"frames": 0}
        if sync["frames"]:  # train on realigned pairs
            src = replace(src, audio_offset_s=src.audio_offset_s + sync["seconds"])
            parts, median = prepare_clip(src, config.scratch_train.fps_variants, centre=True)
        std = np.maximum(parts[0].controls[parts[0].valid].std(axis=0), 1e-3).astype(np.float32)
        model = Audio2Expr(config.scratch_model)
        tc = replace(config.scratch_train, seq_frames=min(config.scratch_train.seq_frames, parts[0].n))
        _, losses, _ = _train_loop(model, parts, std, tc, progress)
        model.eval()
        off = median.copy()
        off[JAW] = 0.0
        ad = ActorAdaptation("scratch", np.ones(N_CTRL), off, model, None, {
            "note": "no generic model: a small model was trained on this shot alone (less robust to other voices and languages)",
            "frames": parts[0].n, "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "n_params": n_params(model), "av_offset": sync})
    else:
        progress.stage("audio2expr: actor layer")
        parts, _ = prepare_clip(src, (), centre=False)
        d = parts[0]
        raw = g.predict(d.windows)
        sync = _av_offset(raw[:, JAW], d.controls[:, JAW], d.valid, d.fps, config)
        if sync["frames"]:  # the shot's own audio is out of sync: fit on realigned pairs
            raw = _shift(raw, sync["frames"])
            d = replace(d, silent=_shift(d.silent, sync["frames"]))
        ad = _fit_linear(raw, d, g.control_std, config, progress)
        ad.metrics["av_offset"] = sync
        ad.generic = {"path": str(g.path) if g.path else None, "fingerprint": g.fingerprint, "step": g.step}
    ad.metrics["seconds"] = time.perf_counter() - t0
    ad.metrics["fps"] = str(parts[0].fps)
    return ad


# ------------------------------------------------------------------------------------ audio/video offset


def _av_offset(pred_jaw: np.ndarray, jaw: np.ndarray, valid: np.ndarray, fps: Fraction, config: AdaptConfig) -> dict:
    """Audio/video offset of a shot, seen as the lag between the generic model's jaw (from the
    audio) and the tracked jaw. Only a clear offset counts (better r by ``sync_min_gain``, at
    least 2 frames, the same within a frame in both halves of the shot); the natural ~1 frame
    lead of the mouth is left alone. frames > 0: audio late."""
    max_lag = int(config.sync_max_s * fps)
    out = {"frames": 0, "seconds": 0.0, "r_lag0": None, "r_best": None, "lag_best": 0}
    if max_lag < 2 or valid.sum() < 4 * max_lag:
        return out
    x = np.interp(np.arange(len(jaw)), np.flatnonzero(valid), jaw[valid])  # bridge no-face gaps
    lag, r, r0 = lag_correlation(pred_jaw, x, max_lag)
    out |= {"r_lag0": r0, "r_best": r, "lag_best": lag}
    if abs(lag) >= 2 and np.isfinite(r0) and r - r0 >= config.sync_min_gain:
        # both halves of the shot must see it (within a frame): on talk_b, whose sound predicts
        # her mouth at no lag (BENCHMARKS.md, ground truth), the whole shot's best lag was -6 and
        # its halves' -9 and -5; talk_c's (+6) and talk_long's (+2) halves agree with the whole
        h = len(x) // 2
        halves = [lag_correlation(pred_jaw[sl], x[sl], max_lag)[0] for sl in (slice(0, h), slice(h, None))]
        out["lag_halves"] = halves
        if all(abs(k - lag) <= 1 for k in halves):
            out |= {"frames": int(lag), "seconds": float(lag / fps)}
        else:
            out["reason"] = "the shot's two halves disagree on the offset"
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """y[t] = x[t + k], edges repeated."""
    if k > 0:
        return np.concatenate([x[k:], np.repeat(x[-1:], k, 0)])
    if k < 0:
        return np.concatenate([np.repeat(x[:1], -k, 0), x[:k]])
    return x


def estimate_av_offset(clip: Any, generic: Any, max_s: float = 0.4) -> dict:
    """How far a tracked clip's audio is out of sync with its picture, measured with a generic
    model (best trained without this clip). ``seconds`` > 0: the audio is late; pass it as
    ``ClipSource.audio_offset_s`` to train on the clip."""
    g = _generic(generic)
    d = prepare_clip(clip, (), centre=False)[0][0]
    return _av_offset(g.predict(d.windows)[:, JAW], d.controls[:, JAW], d.valid, d.fps,
                      AdaptConfig(sync_max_s=max_s, sync_min_gain=0.0))


def lag_profile(x: np.ndarray, y: np.ndarray, max_lag: int = 5) -> np.ndarray:
    """Pearson r of ``x`` against ``y`` at lags -max_lag..max_lag (NaN where undefined). Lag k > 0:
    ``x`` is k frames late vs ``y`` (x[t + k] pairs with y[t])."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.full(2 * max_lag + 1, np.nan)
    for i, k in enumerate(range(-max_lag, max_lag + 1)):
        a = x[k:] if k >= 0 else x[: len(x) + k]
        b = y[: len(y) - k] if k >= 0 else y[-k:]
        if len(a) >= 3 and a.std() >= 1e-12 and b.std() >= 1e-12:
            out[i] = float(np.corrcoef(a, b)[0, 1])
    return out


def lag_correlation(x: np.ndarray, y: np.ndarray, max_lag: int = 5) -> tuple[int, float, float]:
    """(best lag, Pearson r at it, r at lag 0). Lag k > 0: ``x`` is k frames late vs ``y``
    (x[t + k] pairs with y[t])."""
    prof = lag_profile(x, y, max_lag)
    if np.all(np.isnan(prof)):
        return 0, float("-inf"), float("nan")
    i = int(np.nanargmax(prof))
    return i - max_lag, float(prof[i]), float(prof[max_lag])


# ------------------------------------------------------------------------------------ linear layer


def _fit_linear(raw: np.ndarray, d: ClipData, std: np.ndarray, config: AdaptConfig, progress: Progress) -> ActorAdaptation:
    """Per-control scale/offset on frozen generic outputs (full batch; the loss of the trainer)."""
    v = d.valid
    med_t, med_r = np.median(d.controls[v], axis=0), np.median(raw[v], axis=0)
    off0 = med_t - med_r
    off0[JAW] = 0.0  # jaw 0 means lips together for everyone: start from the generic's zero
    layer = ActorLayer(N_CTRL)
    with torch.no_grad():
        layer.offset.copy_(torch.from_numpy(off0.astype(np.float32)))
    x = torch.from_numpy(raw)[None]
    y, vm, sm = (torch.from_numpy(a)[None] for a in (d.controls, d.valid, d.silent))
    std_t = torch.from_numpy(np.asarray(std, np.float32))
    tc = TrainConfig()
    off0_t = layer.offset.detach().clone()
    with torch.no_grad():
        before, _ = a2e_loss(x, y, vm, sm, std_t, tc)
    speech = vm[0] & ~sm[0] if int((vm[0] & ~sm[0]).sum()) >= 10 else vm[0]  # range while speaking
    spread_t = _spread(y[0][speech])
    sc = [CONTROL_NAMES.index(c) for c in config.spread_controls]
    opt = torch.optim.Adam(layer.parameters(), lr=config.lr)
    for i in range(config.steps):
        loss, parts = a2e_loss(layer(x), y, vm, sm, std_t, tc)
        reg = config.reg * (((layer.scale - 1) ** 2).mean() + (((layer.offset - off0_t) / std_t) ** 2).mean())
        pred_v = layer(x)[0][speech]
        spread = ((_spread(pred_v) - spread_t).abs() / std_t)[sc].sum()
        opt.zero_grad()
        (loss + reg + config.spread_weight * spread).backward()
        opt.step()
        with torch.no_grad():
            layer.scale.clamp_(*config.scale_limits)
        if (i + 1) % 50 == 0:
            progress.update(i + 1, config.steps, loss=loss.item())
    scale, offset = layer.scale.detach().numpy().astype(np.float64), layer.offset.detach().numpy().astype(np.float64)
    return ActorAdaptation("linear", scale, offset, None, None, {
        "frames": d.n, "loss_generic": float(before), "loss_adapted": loss.item(), "spread_error": spread.item(), **{f"adapted_{k}": val for k, val in parts.items()}})


def _spread(x: torch.Tensor) -> torch.Tensor:
    """Per-control 5-95 % percentile spread of (N, C) values."""
    q = torch.quantile(x, torch.tensor([0.05, 0.95]), dim=0)
    return q[1] - q[0]


# ------------------------------------------------------------------------------------ project


def adapt_project(project: Any, generic: Any = None, config: AdaptConfig = AdaptConfig(), progress: Progress | None = None,
                  force: bool = False) -> ActorAdaptation:
    """``adapt_actor`` on a tracked project, cached in ``cache/audio2expr/actor.pt`` by content
    (tracking, video, generic checkpoint, settings). A shot without audio gets ``offset-only``
    with a generic model; without both, an Audio2ExprError says what to do."""
    from dubstudio.project.store import Project

    p = project if isinstance(project, Project) else Project.open(project)
    src = clip_from_project(p)
    g = _generic(generic)
    inputs = {"tracking": Path(src.tracking), "video": Path(src.audio), "generic": g.fingerprint if g else None}
    key = p.stage_key(STAGE, inputs, {"version": TRAIN_VERSION, "model_version": MODEL_VERSION, "offset_rule": OFFSET_RULE,
                                      **_jsonable(asdict(config))})
    rel = "cache/audio2expr/actor.pt"
    if not force and p.stage_is_current(STAGE, key):
        return ActorAdaptation.load(p.path(rel))
    p.cache_dir("audio2expr")
    try:
        ad = adapt_actor(src, g, config, progress)
    except MediaError as e:
        if g is None:
            raise Audio2ExprError(
                f"the shot's audio cannot be used ({e}) and no generic model was given: train one with "
                f"`dubstudio audio2expr train` or give the shot's audio."
            ) from e
        from dubstudio.tracking.result import Tracking

        t = Tracking.load(src.tracking)
        med = np.median(t.controls[t.has_face], axis=0)
        med[JAW] = 0.0
        ad = ActorAdaptation("offset-only", np.ones(N_CTRL), med, None,
                             {"path": str(g.path) if g.path else None, "fingerprint": g.fingerprint, "step": g.step},
                             {"note": f"shot audio unusable ({e}); only the actor's resting mouth is applied"})
    ad.save(p.path(rel))
    p.record_stage(STAGE, key, {"actor": rel}, {k: v for k, v in ad.metadata().items() if k != "generic"})
    # what a later run loads, bit for bit (the file holds float32 scales): curves driven now and
    # after a restart must be equal, or a re-export would see every frame as changed
    return ActorAdaptation.load(p.path(rel))


