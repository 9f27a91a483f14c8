"""Audio-to-expression benchmark without downloaded weights; prints one JSON object.

    .venv/bin/python benchmarks/lipsync_audio_bench.py [--holdout talk_c|all] [--steps 1500]
        [--work /tmp/a2e_bench] [--threads 1] [--seed 0] [--warp F] [--freq-masks N]

1. Hold-out: for each held-out talking clip, train the generic model on the *other* clips, adapt
   the actor layer on the first 60 % of the held-out clip (its own audio + tracking), predict the
   last 40 % from its audio alone, and compare with the tracked jaw: Pearson r (at lag 0 and at
   the best lag within +-5 frames; lag > 0 = prediction late), mean jaw in silence vs speech
   (predicted and tracked), in-speech closures (mostly bilabials: does the predicted mouth close
   where the tracked one does; ``eval.mouth_motion``) and jitter. Also: a per-actor model from
   scratch on the same 60 %, and the envelope baseline (tracked jaw vs the speech envelope; what a
   loudness meter would give).
2. Languages: the generic model trained on all talking clips, adapted on talk_c, drives
   speech_{de,ja,zh,en}.wav (no video): r of predicted jaw with the speech envelope (best lag
   within +-2 frames), jaw in the leading silence vs in speech.

Weights trained here are on test media: they stay under --work (never commit them).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.driving.audio2expr_train import (
    ClipSource,
    TrainConfig,
    adapt_actor,
    as_audio,
    clip_from_project,
    lag_correlation,
    load_generic,
    predict_curves,
    silence_mask,
    train_generic,
)
from dubstudio.nn.audio_features import speech_envelope
from dubstudio.tracking.mouth_motion import closure_match, jitter
from dubstudio.project.store import Project
from dubstudio.core.paths import media_dir
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.track import track

CLIPS = ["talk_a", "talk_b", "talk_c", "talk_d", "talk_e", "talk_long"]
SPEECH = ["de", "ja", "zh", "en"]
FPS = Fraction(25)


def tracked_project(work: Path, name: str) -> Path:
    d = work / "projects" / name
    p = Project.create(d, media_dir() / f"{name}.mp4")
    track(media_dir() / f"{name}.mp4", p)  # cached when current
    return d


# training options of the generic model under test (``--warp`` etc.); ``TAG`` names its files
TRAIN_OPTIONS: dict = {}
TAG = ""


def generic_for(work: Path, train: list[str], steps: int, threads: int, retrain: bool) -> tuple[Path, float | None]:
    out = work / f"generic_{'+'.join(c.removeprefix('talk_') for c in train)}_{steps}{TAG}.pt"
    if out.is_file() and not retrain:
        return out, None
    t0 = time.perf_counter()
    train_generic([work / "projects" / c for c in train], out, TrainConfig(steps=steps, threads=threads, **TRAIN_OPTIONS))
    return out, time.perf_counter() - t0


def r2(x: float) -> float:
    return round(float(x), 3)


def holdout(work: Path, name: str, steps: int, threads: int, retrain: bool) -> dict:
    others = [c for c in CLIPS if c != name]
    gpath, secs = generic_for(work, others, steps, threads, retrain)
    g = load_generic(gpath)
    src = clip_from_project(work / "projects" / name)
    t = Tracking.load(src.tracking)
    n, fps = t.n_frames, t.fps
    split = int(round(0.6 * n))
    fit = ClipSource(src.tracking, src.audio, name, 0, split)
    ad = adapt_actor(fit, g)
    scratch = adapt_actor(fit, None)
    audio = as_audio(src.audio)
    off = float(Fraction(split) / fps)
    test_n = n - split
    pred = predict_curves(audio, test_n, fps, g, ad, offset_s=off)
    pred_s = predict_curves(audio, test_n, fps, None, scratch, offset_s=off)
    pred_g = predict_curves(audio, test_n, fps, g, None, offset_s=off)
    tj = t.controls[split:, 0]
    v = t.has_face[split:]
    seg = audio[int(round(off * 16000)):]
    silent, _ = silence_mask(seg, test_n, fps)
    env = speech_envelope(seg, test_n, fps)
    lag, r_best, r0 = lag_correlation(pred[v, 0], tj[v], 2)
    lag10, r10, _ = lag_correlation(pred[v, 0], tj[v], 10)
    lag_s, rb_s, r0_s = lag_correlation(pred_s[v, 0], tj[v], 2)
    lag_e, rb_e, r0_e = lag_correlation(tj[v], env[v], 10)  # envelope baseline (lag > 0: jaw late)
    mae = np.abs(pred[v] - t.controls[split:][v]).mean(axis=0)
    return {
        "clip": name, "fps": str(fps), "fit_frames": split, "test_frames": test_n,
        "generic_train_s": None if secs is None else round(secs, 1),
        "adapt_linear_s": round(ad.metrics["seconds"], 2), "adapt_scratch_s": round(scratch.metrics["seconds"], 1),
        "jaw_r_lag0": r2(r0), "jaw_r_best": r2(r_best), "jaw_best_lag": lag,
        "jaw_r_best_pm10": r2(r10), "jaw_best_lag_pm10": lag10,
        "jaw_r_generic_only_lag0": r2(lag_correlation(pred_g[v, 0], tj[v], 0)[2]),
        "scratch_jaw_r_lag0": r2(r0_s), "scratch_jaw_r_best": r2(rb_s), "scratch_best_lag": lag_s,
        "envelope_baseline_r_lag0": r2(r0_e), "envelope_baseline_r_best": r2(rb_e), "envelope_baseline_lag": lag_e,
        "silent_frac": r2(silent.mean()),
        "pred_jaw_silence": r2(pred[silent, 0].mean()) if silent.any() else None,
        "pred_jaw_speech": r2(pred[~silent, 0].mean()),
        "tracked_jaw_silence": r2(tj[silent].mean()) if silent.any() else None,
        "tracked_jaw_speech": r2(tj[~silent].mean()),
        "jaw_spread_ratio": r2(np.subtract(*np.percentile(pred[v, 0], [95, 5])) / np.subtract(*np.percentile(tj[v], [95, 5]))),
        # in-speech closures (mostly bilabials) of the predicted vs the tracked mouth, and shake
        "closures": closure_match(pred[v, 0], tj[v], silent[v], float(fps)),
        "closures_scratch": closure_match(pred_s[v, 0], tj[v], silent[v], float(fps)),
        "jitter_pred": round(jitter(pred[v, 0]), 4), "jitter_tracked": round(jitter(tj[v]), 4),
        "mae_per_control": dict(zip(["jaw", "width", "pucker", "upper", "lower", "press", "smile"], map(r2, mae))),
        "actor_scale_jaw": r2(ad.scale[0]), "actor_offset_jaw": r2(ad.offset[0]),
    }


def languages(work: Path, steps: int, threads: int, retrain: bool) -> list[dict]:
    gpath, secs = generic_for(work, CLIPS, steps, threads, retrain)
    g = load_generic(gpath)
    ad = adapt_actor(clip_from_project(work / "projects" / "talk_c"), g)
    rows = []
    for lang in SPEECH:
        audio = as_audio(media_dir() / f"speech_{lang}.wav")
        n = int(len(audio) / 16000 * FPS)
        pred = predict_curves(audio, n, FPS, g, ad)
        jaw = pred[:, 0]
        env = speech_envelope(audio, n, FPS)
        silent, _ = silence_mask(audio, n, FPS)
        lag, rb, r0 = lag_correlation(jaw, env, 2)
        lead = int(np.argmax(~silent)) if (~silent).any() else n  # frames of leading silence
        rows.append({
            "audio": f"speech_{lang}.wav", "frames": n, "generic_train_s": None if secs is None else round(secs, 1),
            "jaw_env_r_lag0": r2(r0), "jaw_env_r_best": r2(rb), "best_lag": lag,
            "leading_silence_frames": lead,
            "jaw_leading_silence": r2(jaw[:lead].mean()) if lead > 0 else None,
            "jaw_silence": r2(jaw[silent].mean()) if silent.any() else None,
            "jaw_speech": r2(jaw[~silent].mean()),
            "jaw_speech_p90": r2(np.percentile(jaw[~silent], 90)),
            "silent_frac": r2(silent.mean()),
            "silent_frames_jaw_below_0.05": r2((jaw[silent] < 0.05).mean()) if silent.any() else None,
        })
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--holdout", default="all", help="a clip name (talk_c) or 'all' (leave-one-out over every talk clip)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/a2e_bench"))
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--skip-languages", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="the generic model's training seed")
    ap.add_argument("--warp", type=float, default=None, help="vocal-tract-length warp of the mel axis (+- fraction; default: TrainConfig's)")
    ap.add_argument("--freq-masks", type=int, default=None, help="SpecAugment frequency masks per sample (default: TrainConfig's)")
    args = ap.parse_args()
    global TAG
    TRAIN_OPTIONS["seed"] = args.seed
    if args.warp is not None:
        TRAIN_OPTIONS["warp"] = args.warp
    if args.freq_masks is not None:
        TRAIN_OPTIONS["freq_masks"] = args.freq_masks
    TAG = "".join(f"_{k}{v}" for k, v in sorted(TRAIN_OPTIONS.items()) if not (k == "seed" and v == 0))
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    for c in CLIPS:
        tracked_project(args.work, c)
    names = CLIPS if args.holdout == "all" else args.holdout.split(",")
    out = {"platform": platform.platform(), "threads": args.threads, "steps": args.steps, "train_options": TRAIN_OPTIONS,
           "holdout": [holdout(args.work, c, args.steps, args.threads, args.retrain) for c in names]}
    h = out["holdout"]
    out["holdout_mean"] = {k: r2(np.mean([r[k] for r in h])) for k in
                           ("jaw_r_lag0", "jaw_r_best", "jaw_r_best_pm10", "scratch_jaw_r_lag0", "envelope_baseline_r_lag0", "envelope_baseline_r_best")}
    if not args.skip_languages:
        out["languages"] = languages(args.work, args.steps, args.threads, args.retrain)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
