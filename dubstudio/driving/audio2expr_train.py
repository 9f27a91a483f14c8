"""Audio-to-expression: training data, the person-generic trainer, per-actor adaptation, inference.

Pipeline (see ``audio2expr`` for the networks and docs/decisions.md "Audio to expression")::

    tracked clips + their audio ──train_generic──> generic checkpoint (person-generic model)
    actor's shot + its audio ──adapt_actor──> ActorAdaptation (per-control scale/offset on the
                                              frozen generic; a small own model if no generic)
    any audio ──predict_curves──> (n_frames, 7) named controls at the shot's fps

Audio is gain-normalised (95th percentile of 20 ms RMS to -20 dBFS) before the log-mel so a
quiet recording drives the same mouth as a loud one. Targets: ``jaw_open`` as tracked (0 = lips
together for every actor), the other controls centred on each clip's median (a person's resting
smile is not predictable from audio; the actor layer's offset puts it back).

Losses: L1 on controls (each control divided by its spread over the training set, the jaw
weighted x2), L1 on their first differences (no jitter), and a silence term pulling the jaw to 0
on frames whose speech envelope is at the noise floor (the tracked jaw is ignored there: people
breathe, smile and hold the mouth open in pauses, and the dub must not).
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dubstudio import __version__
from dubstudio.driving.audio2expr import MODEL_VERSION, ActorLayer, Audio2Expr, Audio2ExprConfig, n_params
from dubstudio.driving.audio_features import SAMPLE_RATE, MelSettings, frame_windows, log_mel, speech_envelope
from dubstudio.errors import Cancelled, DubStudioError, MediaError
from dubstudio.io.atomic import atomic_open, atomic_write_json, file_fingerprint
from dubstudio.core.jobs import Progress
from dubstudio.tracking.face_model import CONTROL_NAMES, CONTROL_RANGE, JAW

FORMAT = 1
TRAIN_VERSION = 1
GENERIC_KIND = "audio2expr-generic"
ACTOR_KIND = "audio2expr-actor"
TARGET_DBFS = -20.0
MAX_GAIN_DB = 30.0
STAGE = "audio2expr_adapt"
N_CTRL = len(CONTROL_NAMES)


class Audio2ExprError(DubStudioError):
    """Audio-to-expression cannot run: missing/damaged checkpoint, no paired data, bad input."""


# ------------------------------------------------------------------------------------ settings


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
    # From scratch (no generic model): a smaller net trained on the shot alone.
    scratch_model: Audio2ExprConfig = Audio2ExprConfig(enc_channels=32, width=64, dilations=(1, 2, 4), dropout=0.2)
    scratch_train: TrainConfig = TrainConfig(steps=500, batch=8, seq_frames=48, lr=3e-3, weight_decay=1e-3)


def _fps(fps: Any) -> Fraction:
    if isinstance(fps, float):
        f = Fraction(fps).limit_denominator(1001)
    else:
        f = Fraction(fps)
    if f <= 0:
        raise ValueError(f"frame rate must be > 0, got {fps}")
    return f


# ------------------------------------------------------------------------------------ audio


def as_audio(audio: str | Path | np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A path (any audio/video file) or an array at ``sample_rate`` -> mono float32 at 16 kHz."""
    if isinstance(audio, (str, Path)):
        from dubstudio.io.audio import load_audio

        a = load_audio(audio, sr=SAMPLE_RATE)
        what = Path(audio).name
    else:
        a = np.asarray(audio, np.float32)
        if a.ndim == 2:
            a = a.mean(axis=0) if a.shape[0] < a.shape[1] else a.mean(axis=1)
        if a.ndim != 1:
            raise ValueError(f"audio must be 1-D (samples,) or 2-D (channels, samples), got {a.shape}")
        if sample_rate != SAMPLE_RATE and len(a):
            import soxr

            a = soxr.resample(a, sample_rate, SAMPLE_RATE).astype(np.float32)
        what = "the audio"
    if len(a) == 0:
        raise MediaError(f"{what} is empty (0 samples); pick an audio file with speech in it.")
    if not np.all(np.isfinite(a)):
        raise MediaError(f"{what} contains NaN/inf samples; re-export the audio.")
    return a


def normalise_gain(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale so the 95th percentile of 20 ms RMS is at TARGET_DBFS (gain limited to +-30 dB)."""
    hop = SAMPLE_RATE // 50
    n = len(audio) // hop
    if n == 0:
        return audio, 0.0
    rms = np.sqrt(np.mean(audio[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1))
    level = float(np.percentile(rms, 95))
    if level < 1e-6:  # digital silence: nothing to normalise
        return audio, 0.0
    gain_db = float(np.clip(TARGET_DBFS - 20 * math.log10(level), -MAX_GAIN_DB, MAX_GAIN_DB))
    return (audio * 10 ** (gain_db / 20)).astype(np.float32), gain_db


def silence_mask(audio: np.ndarray, n_frames: int, fps: Any, min_run_s: float = 0.0, margin_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(silent (n_frames,) bool, speech envelope in dB) for 16 kHz audio.

    A frame is silent when its RMS is within 6 dB of the noise floor (10th percentile) and at
    least 20 dB below the speech level (95th percentile); frames past the audio's end are silent.
    ``min_run_s`` drops shorter silent runs, ``margin_s`` trims each run's ends (the mouth may
    open just before speech starts).
    """
    fps = _fps(fps)
    env = speech_envelope(audio, n_frames, fps)
    db = 20 * np.log10(env.astype(np.float64) + 1e-7)
    n_audio = min(n_frames, int(len(audio) * fps / SAMPLE_RATE))
    if n_audio == 0:
        return np.ones(n_frames, bool), db
    ref = db[:n_audio]
    floor, peak = np.percentile(ref, 10), np.percentile(ref, 95)
    silent = (db < floor + 6.0) & (db < peak - 20.0)
    silent[n_audio:] = True
    if min_run_s > 0 or margin_s > 0:
        min_run, margin = int(round(min_run_s * fps)), int(round(margin_s * fps))
        out = np.zeros_like(silent)
        for a, b in _runs(silent):
            if b - a >= max(min_run, 1):
                lo, hi = a + (margin if a > 0 else 0), b - (margin if b < n_frames else 0)
                out[lo:max(lo, hi)] = True
        silent = out
    return silent, db


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def audio_windows(audio: np.ndarray, n_frames: int, fps: Any) -> np.ndarray:
    """(n_frames, 80, 16) model input: gain-normalised log-mel windows at each frame's time."""
    fps = _fps(fps)
    need = int(math.ceil((n_frames + 1) / fps * SAMPLE_RATE))
    a, _ = normalise_gain(audio)
    if len(a) < need:  # past the end of the audio: silence (the mouth closes)
        a = np.pad(a, (0, need - len(a)))
    return frame_windows(log_mel(a), n_frames, fps)


# ------------------------------------------------------------------------------------ data


@dataclass
class ClipSource:
    """One tracked clip with its audio; ``start``/``stop`` select native frames (e.g. a split)."""

    tracking: Any  # Path to tracking.npz or a Tracking
    audio: Any  # Path to an audio/video file or a 16 kHz array
    name: str = ""
    start: int = 0
    stop: int | None = None
    audio_offset_s: float = 0.0  # > 0: the clip's audio is late (video frame t speaks at t + offset)


def clip_from_project(project: Any, start: int = 0, stop: int | None = None) -> ClipSource:
    """A tracked project (folder or Project) as a ClipSource: its tracking + its video's audio."""
    from dubstudio.io.project import Project

    p = project if isinstance(project, Project) else Project.open(project)
    rec = p.stage_record("track")
    if not rec or "tracking" not in rec.get("outputs", {}):
        raise Audio2ExprError(f"{p.root} has no tracking yet; run `dubstudio track` first.")
    return ClipSource(p.path(rec["outputs"]["tracking"]), p.check_video(), p.video_path.stem, start, stop)


def _source(s: Any) -> ClipSource:
    if isinstance(s, ClipSource):
        return s
    if isinstance(s, (tuple, list)) and len(s) == 2:
        return ClipSource(Path(s[0]), s[1], Path(str(s[1])).stem if not isinstance(s[1], np.ndarray) else "")
    return clip_from_project(s)


@dataclass
class ClipData:
    """A clip's training arrays at one frame rate."""

    name: str
    fps: Fraction
    windows: np.ndarray  # (N, 80, 16) float32
    controls: np.ndarray  # (N, 7) float32 targets
    valid: np.ndarray  # (N,) bool: tracked face
    silent: np.ndarray  # (N,) bool: silence-loss frames

    @property
    def n(self) -> int:
        return len(self.valid)


def prepare_clip(src: Any, fps_variants: Sequence[Any] = (), centre: bool = True) -> tuple[list[ClipData], np.ndarray]:
    """ClipData at the clip's own fps and each of ``fps_variants`` (controls resampled in time),
    plus the clip's median controls (what ``centre`` subtracted from the non-jaw controls)."""
    from dubstudio.tracking.result import Tracking

    src = _source(src)
    t = src.tracking if isinstance(src.tracking, Tracking) else Tracking.load(src.tracking)
    audio = as_audio(src.audio)
    k = int(round(src.audio_offset_s * SAMPLE_RATE))
    if k > 0:
        audio = audio[k:]
    elif k < 0:
        audio = np.concatenate([np.zeros(-k, np.float32), audio])
    a_norm, _ = normalise_gain(audio)
    mel = log_mel(a_norm)
    n = t.n_frames
    start, stop = max(0, src.start), n if src.stop is None else min(n, src.stop)
    if stop - start < 2:
        raise Audio2ExprError(f"{src.name or 'clip'}: needs at least 2 frames, got {stop - start}.")
    ctrl = np.asarray(t.controls, np.float64)
    valid = np.asarray(t.has_face, bool) & np.all(np.isfinite(ctrl), axis=1)
    ctrl = np.where(valid[:, None], ctrl, 0.0)
    seg_valid = valid[start:stop]
    if seg_valid.sum() < 2:
        raise Audio2ExprError(f"{src.name or 'clip'}: fewer than 2 frames with a tracked face; nothing to learn from.")
    median = np.median(ctrl[start:stop][seg_valid], axis=0)
    if centre:
        shift = median.copy()
        shift[JAW] = 0.0
        ctrl = ctrl - shift
    out = []
    rates = [t.fps] + [f for f in (_fps(v) for v in fps_variants) if f != t.fps]
    for f in rates:
        t0, t1 = Fraction(start) / t.fps, Fraction(stop - 1) / t.fps
        i0, i1 = math.ceil(t0 * f), math.floor(t1 * f)
        m = int(math.floor(Fraction(n - 1) / t.fps * f)) + 1  # frames of the whole clip at f
        idx = np.arange(i0, i1 + 1)
        pos = idx * float(t.fps / f)
        lo = np.clip(np.floor(pos).astype(int), 0, n - 1)
        hi = np.clip(lo + 1, 0, n - 1)
        w = (pos - lo)[:, None]
        c = (1 - w) * ctrl[lo] + w * ctrl[hi]
        v = valid[lo] & (valid[hi] | (w[:, 0] < 1e-9))
        silent, _ = silence_mask(a_norm, m, f, min_run_s=0.2, margin_s=0.08)
        win = frame_windows(mel, m, f)
        out.append(ClipData(src.name, f, win[idx], c.astype(np.float32), v, silent[idx]))
    return out, median


def _n_frames(src: ClipSource) -> int:
    from dubstudio.tracking.result import Tracking

    if isinstance(src.tracking, Tracking):
        return src.tracking.n_frames
    with np.load(src.tracking, allow_pickle=False) as z:
        return len(z["has_face"])


def _batch(clips: list[ClipData], batch: int, seq: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """Random crops of ``seq`` frames (clips weighted by length; short clips are edge-padded
    with valid=False frames)."""
    p = np.array([c.n for c in clips], np.float64)
    p /= p.sum()
    xs, ys, vs, ss = [], [], [], []
    for ci in rng.choice(len(clips), size=batch, p=p):
        c = clips[ci]
        a = int(rng.integers(0, max(1, c.n - seq + 1)))
        sl = slice(a, a + seq)
        x, y, v, s = c.windows[sl], c.controls[sl], c.valid[sl], c.silent[sl]
        if len(v) < seq:
            k = seq - len(v)
            x = np.concatenate([x, np.repeat(x[-1:], k, 0)])
            y = np.concatenate([y, np.repeat(y[-1:], k, 0)])
            v = np.concatenate([v, np.zeros(k, bool)])
            s = np.concatenate([s, np.repeat(s[-1:], k, 0)])
        xs.append(x), ys.append(y), vs.append(v), ss.append(s)
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
            torch.from_numpy(np.stack(vs)), torch.from_numpy(np.stack(ss)))


def augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random gain, spectral tilt and noise floor on (B, T, 80, W) scaled log-mel windows."""
    b, _, n_mels, _ = x.shape
    db = x * 50 - 30  # undo log_mel's scaling
    u = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    db = db + (u(b, 1, 1, 1) * 2 - 1) * cfg.gain_db
    ramp = torch.linspace(-0.5, 0.5, n_mels).view(1, 1, n_mels, 1)
    db = db + (u(b, 1, 1, 1) * 2 - 1) * cfg.tilt_db * ramp
    noise = -75 + 30 * u(b, 1, 1, 1)
    use = (u(b, 1, 1, 1) < cfg.noise_prob).float()
    noisy = 10 * torch.log10(10 ** (db / 10) + 10 ** (noise / 10))
    db = use * noisy + (1 - use) * db
    if cfg.warp > 0:  # bin i reads bin i * alpha: formants move like another speaker's
        alpha = 1 + (u(b) * 2 - 1) * cfg.warp
        src = (torch.arange(n_mels).view(1, -1) * alpha.view(-1, 1)).clamp(0, n_mels - 1)  # (B, M)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=n_mels - 1)
        w = (src - lo).view(b, 1, n_mels, 1)
        idx = lambda i: i.view(b, 1, n_mels, 1).expand(-1, db.shape[1], -1, db.shape[3])  # noqa: E731
        db = (1 - w) * db.gather(2, idx(lo)) + w * db.gather(2, idx(hi))
    for _ in range(cfg.freq_masks):  # a band of mel bins replaced by the window's mean level
        width = (u(b) * (cfg.freq_mask_bins + 1)).long().view(b, 1, 1, 1)
        start = (u(b) * n_mels).long().view(b, 1, 1, 1)
        bins = torch.arange(n_mels).view(1, 1, n_mels, 1)
        band = (bins >= start) & (bins < start + width)
        db = torch.where(band, db.mean(dim=2, keepdim=True), db)
    return (db.clamp(-80, 20) + 30) / 50


def a2e_loss(pred: torch.Tensor, tgt: torch.Tensor, valid: torch.Tensor, silent: torch.Tensor, std: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted L1 + velocity L1 + silence term; all per-frame averages (see module doc)."""
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
    return total, {"l1": l1.item(), "velocity": vel.item(), "silence": sil.item()}


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
    except Exception as e:  # damaged zip, pickle refusals ...
        raise Audio2ExprError(f"{path} is not a readable audio-to-expression checkpoint ({type(e).__name__}); it may be damaged, train again.") from e
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
    """Where `dubstudio audio2expr train` puts the generic model unless told otherwise
    (per user; no generic weights ship with DubStudio)."""
    from dubstudio.paths import user_data_dir

    return user_data_dir() / "models" / "audio2expr-generic.pt"


def find_generic() -> Path | None:
    """The default generic checkpoint if one was trained, else None (then adaptation trains a
    small model from scratch on the shot)."""
    p = default_generic_path()
    return p if p.is_file() else None


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
            x, y, v, s = _batch(clips, cfg.batch, seq, rng)
            loss, parts = a2e_loss(model(augment(x, cfg, gen)), y, v, s, std_t, cfg)
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
    finally:
        torch.set_num_threads(old_threads)


def _settings_key(settings: dict) -> str:
    from dubstudio.io.atomic import settings_hash

    s = dict(settings, train={k: v for k, v in settings["train"].items() if k not in ("threads", "log_every", "checkpoint_every")})
    return settings_hash(s)


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda o: o.to_dict() if hasattr(o, "to_dict") else asdict(o)))


# ------------------------------------------------------------------------------------ actor


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
            "n_params": n_params(model)})
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


def _av_offset(pred_jaw: np.ndarray, jaw: np.ndarray, valid: np.ndarray, fps: Fraction, config: AdaptConfig) -> dict:
    """Audio/video offset of a shot, seen as the lag between the generic model's jaw (from the
    audio) and the tracked jaw. Only a clear offset counts (better r by ``sync_min_gain``, at
    least 2 frames); the natural ~1 frame lead of the mouth is left alone. frames > 0: audio late."""
    max_lag = int(config.sync_max_s * fps)
    out = {"frames": 0, "seconds": 0.0, "r_lag0": None, "r_best": None, "lag_best": 0}
    if max_lag < 2 or valid.sum() < 4 * max_lag:
        return out
    x = np.interp(np.arange(len(jaw)), np.flatnonzero(valid), jaw[valid])  # bridge no-face gaps
    lag, r, r0 = lag_correlation(pred_jaw, x, max_lag)
    out |= {"r_lag0": r0, "r_best": r, "lag_best": lag}
    if abs(lag) >= 2 and np.isfinite(r0) and r - r0 >= config.sync_min_gain:
        out |= {"frames": int(lag), "seconds": float(lag / fps)}
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


def adapt_project(project: Any, generic: Any = None, config: AdaptConfig = AdaptConfig(), progress: Progress | None = None,
                  force: bool = False) -> ActorAdaptation:
    """``adapt_actor`` on a tracked project, cached in ``cache/audio2expr/actor.pt`` by content
    (tracking, video, generic checkpoint, settings). A shot without audio gets ``offset-only``
    with a generic model; without both, an Audio2ExprError says what to do."""
    from dubstudio.io.project import Project

    p = project if isinstance(project, Project) else Project.open(project)
    src = clip_from_project(p)
    g = _generic(generic)
    inputs = {"tracking": Path(src.tracking), "video": Path(src.audio), "generic": g.fingerprint if g else None}
    key = p.stage_key(STAGE, inputs, {"version": TRAIN_VERSION, "model_version": MODEL_VERSION, **_jsonable(asdict(config))})
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
    return ad


# ------------------------------------------------------------------------------------ inference


def predict_curves(
    audio: str | Path | np.ndarray,
    n_frames: int,
    fps: Any,
    generic: Any = None,
    actor_layer: ActorAdaptation | str | Path | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    smooth_s: float = 0.03,
    offset_s: float = 0.0,
) -> np.ndarray:
    """(n_frames, 7) named controls for ``audio`` at ``fps`` (frame i at time i / fps + offset_s).

    ``generic``: checkpoint path or GenericModel; ``actor_layer``: an ActorAdaptation (or its
    file). A ``scratch`` adaptation carries its own model and needs no generic. Frames past the
    end of the audio are silence (mouth closed). Zero-phase Gaussian smoothing of ``smooth_s``
    seconds (sigma); values are clipped to the controls' ranges.
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be > 0, got {n_frames}")
    fps = _fps(fps)
    a = as_audio(audio, sample_rate)
    if offset_s:
        k = int(round(abs(offset_s) * SAMPLE_RATE))
        a = a[k:] if offset_s > 0 else np.concatenate([np.zeros(k, np.float32), a])
        if len(a) == 0:
            raise MediaError(f"the audio ends before offset {offset_s:.2f} s; use a smaller offset.")
    ad = ActorAdaptation.load(actor_layer) if isinstance(actor_layer, (str, Path)) else actor_layer
    windows = audio_windows(a, n_frames, fps)
    if ad is not None and ad.mode == "scratch":
        raw = _run(ad.model, windows)
    else:
        g = _generic(generic)
        if g is None:
            raise Audio2ExprError(
                "no audio-to-expression model: give a generic model (`dubstudio audio2expr train`) or an "
                "actor adaptation trained on the shot (adapt_project)."
            )
        raw = g.predict(windows)
    y = ad.apply(raw) if ad is not None else raw.astype(np.float64)
    if smooth_s > 0:
        from scipy.ndimage import gaussian_filter1d

        y = gaussian_filter1d(y, sigma=float(smooth_s * fps), axis=0, mode="nearest")
    lo = np.array([CONTROL_RANGE[n][0] for n in CONTROL_NAMES])
    hi = np.array([CONTROL_RANGE[n][1] for n in CONTROL_NAMES])
    return np.clip(y, lo, hi)


@dataclass
class AudioDrive:
    """Result of driving a project's curves from audio."""

    edit: Any  # core.edits.SetDriven (already applied and saved when save=True)
    values: np.ndarray  # (n_frames, 7)
    adaptation: dict  # ActorAdaptation.metadata()
    audio_frames: int  # frames of the shot covered by the audio (the rest: silence, mouth closed)
    n_frames: int


def drive_project_from_audio(
    project: Any,
    audio: str | Path,
    generic: Any = None,
    *,
    controls: Sequence[str] = CONTROL_NAMES,
    offset_s: float = 0.0,
    save: bool = True,
    config: AdaptConfig = AdaptConfig(),
    progress: Progress | None = None,
) -> AudioDrive:
    """``dubstudio dub --audio``: adapt (cached), predict at the shot's fps and length, and put the
    result as the driven layer of ``controls`` (tracked curves and keys are kept; the user can
    reset any range). ``save`` writes ``edits/curves.json`` via CurveStore."""
    from dubstudio.core.curve_store import CurveStore
    from dubstudio.core.edits import SetDriven
    from dubstudio.io.project import Project
    from dubstudio.tracking.result import Tracking

    p = project if isinstance(project, Project) else Project.open(project)
    g = _generic(generic)
    ad = adapt_project(p, g, config, progress)
    t = Tracking.load(clip_from_project(p).tracking)
    a = as_audio(audio)
    values = predict_curves(a, t.n_frames, t.fps, g, ad, offset_s=offset_s)
    idx = [CONTROL_NAMES.index(c) for c in controls]
    edit = SetDriven(list(controls), values[:, idx], 0, 1.0, source=f"audio:{Path(audio).name}")
    if save:
        store = CurveStore(p)
        curves = store.load(t)
        edit.apply(curves)
        store.save(curves)
    covered = min(t.n_frames, int((len(a) / SAMPLE_RATE - offset_s) * t.fps))
    return AudioDrive(edit, values, ad.metadata(), max(0, covered), t.n_frames)


# ------------------------------------------------------------------------------------ evaluation


def lag_correlation(x: np.ndarray, y: np.ndarray, max_lag: int = 5) -> tuple[int, float, float]:
    """(best lag, Pearson r at it, r at lag 0). Lag k > 0: ``x`` is k frames late vs ``y``
    (x[t + k] pairs with y[t])."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    best, r0 = (0, -np.inf), np.nan
    for k in range(-max_lag, max_lag + 1):
        a = x[k:] if k >= 0 else x[: len(x) + k]
        b = y[: len(y) - k] if k >= 0 else y[-k:]
        if len(a) < 3 or a.std() < 1e-12 or b.std() < 1e-12:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if k == 0:
            r0 = r
        if r > best[1]:
            best = (k, r)
    return best[0], float(best[1]), float(r0)
