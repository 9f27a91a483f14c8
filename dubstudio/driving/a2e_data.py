"""Audio-to-expression training data: audio in, frame-aligned model inputs and targets out.

Audio is gain-normalised (95th percentile of 20 ms RMS to -20 dBFS) before the log-mel so a
quiet recording drives the same mouth as a loud one. Targets: ``jaw_open`` as tracked (0 = lips
together for every actor), the other controls centred on each clip's median (a person's resting
smile is not predictable from audio; the actor layer's offset puts it back).

Silence masks mark the frames where the loss pulls the jaw shut (see ``a2e_generic``). Batches
are random crops, augmented (gain, spectral tilt, noise floor, formant warp, frequency masks) so
the model does not learn one microphone or one voice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dubstudio.nn.audio_features import SAMPLE_RATE, frame_windows, log_mel, speech_envelope
from dubstudio.core.errors import DubStudioError, MediaError
from dubstudio.core.controls import JAW

if TYPE_CHECKING:  # a2e_generic imports this module
    from dubstudio.driving.a2e_generic import TrainConfig

TARGET_DBFS = -20.0
MAX_GAIN_DB = 30.0


class Audio2ExprError(DubStudioError):
    """Audio-to-expression cannot run: missing/damaged checkpoint, no paired data, bad input."""


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


def eased(mask: np.ndarray, ease: int) -> np.ndarray:
    """0/1 mask -> weights ramping over ``ease`` frames inside each driven run."""
    if ease <= 0 or not mask.any():
        return mask
    w = mask.copy()
    n = len(w)
    idx = np.arange(n)
    on = np.flatnonzero(mask > 0)
    # Distance (in frames) to the nearest undriven frame or the run's end.
    off = np.flatnonzero(mask <= 0)
    if len(off) == 0:
        return w
    d = np.min(np.abs(idx[on, None] - off[None, :]), axis=1)
    w[on] = np.minimum(1.0, d / (ease + 1))
    return w


def audio_windows(audio: np.ndarray, n_frames: int, fps: Any) -> np.ndarray:
    """(n_frames, 80, 16) model input: gain-normalised log-mel windows at each frame's time."""
    fps = _fps(fps)
    need = int(math.ceil((n_frames + 1) / fps * SAMPLE_RATE))
    a, _ = normalise_gain(audio)
    if len(a) < need:  # past the end of the audio: silence (the mouth closes)
        a = np.pad(a, (0, need - len(a)))
    return frame_windows(log_mel(a), n_frames, fps)


# ------------------------------------------------------------------------------------ clips


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
    from dubstudio.project.store import Project

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
    closure: np.ndarray | None = None  # (N,) bool: the tracked mouth's in-speech closures (None: none)

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
        out.append(ClipData(src.name, f, win[idx], c.astype(np.float32), v, silent[idx],
                            closure_frames(c[:, JAW], v, silent[idx], f)))
    return out, median


def closure_frames(jaw: np.ndarray, valid: np.ndarray, silent: np.ndarray, fps: Any) -> np.ndarray:
    """(N,) bool: frames of the tracked mouth's closures inside speech (mostly /p b m/; see
    ``eval.mouth_motion``). Rare and short, they are what an L1 fit averages away: the loss weights
    them up (``TrainConfig.closure_weight``)."""
    from dubstudio.tracking.mouth_motion import closed_threshold, closure_events

    jaw, valid, silent = np.asarray(jaw, np.float64), np.asarray(valid, bool), np.asarray(silent, bool)
    out = np.zeros(len(jaw), bool)
    if valid.sum() < 10:
        return out
    thr = closed_threshold(jaw[valid], silent[valid])
    for a, b in closure_events(np.where(valid, jaw, np.inf), silent, thr, float(Fraction(fps))):
        out[a:b] = True
    return out


def _n_frames(src: ClipSource) -> int:
    from dubstudio.tracking.result import Tracking

    if isinstance(src.tracking, Tracking):
        return src.tracking.n_frames
    with np.load(src.tracking, allow_pickle=False) as z:
        return len(z["has_face"])


# ------------------------------------------------------------------------------------ batches


def _batch(clips: list[ClipData], batch: int, seq: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """Random crops of ``seq`` frames (clips weighted by length; short clips are edge-padded
    with valid=False frames): windows, controls, valid, silent, closure."""
    p = np.array([c.n for c in clips], np.float64)
    p /= p.sum()
    xs, ys, vs, ss, cs = [], [], [], [], []
    for ci in rng.choice(len(clips), size=batch, p=p):
        c = clips[ci]
        a = int(rng.integers(0, max(1, c.n - seq + 1)))
        sl = slice(a, a + seq)
        q = c.closure if c.closure is not None else np.zeros(c.n, bool)
        x, y, v, s, q = c.windows[sl], c.controls[sl], c.valid[sl], c.silent[sl], q[sl]
        if len(v) < seq:
            k = seq - len(v)
            x = np.concatenate([x, np.repeat(x[-1:], k, 0)])
            y = np.concatenate([y, np.repeat(y[-1:], k, 0)])
            v = np.concatenate([v, np.zeros(k, bool)])
            s = np.concatenate([s, np.repeat(s[-1:], k, 0)])
            q = np.concatenate([q, np.zeros(k, bool)])
        xs.append(x), ys.append(y), vs.append(v), ss.append(s), cs.append(q)
    return tuple(torch.from_numpy(np.stack(a)) for a in (xs, ys, vs, ss, cs))


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
