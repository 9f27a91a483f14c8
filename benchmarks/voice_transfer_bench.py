"""The per-shot audio model (the dub from audio when no generic model is installed) driven by other
voices; prints one JSON object.

    .venv/bin/python benchmarks/voice_transfer_bench.py [--work /tmp/voice_transfer] [--seeds 3]
        [--settings current,nosync,plain] [--threads 1] [--clips talk_a,...]

A new user has no generic audio model (none ships), so `dub --audio` fits a small model on the shot
alone: it hears the actor's voice and is then driven by a dubbing actor's. For each talking clip
of the media folder, the model is fitted on the clip's first 60 % (``adapt_actor`` with no generic,
as `dub` does) and measured three ways:

- own: the clip's held-out last 40 % of audio drives it; r against the clip's tracked jaw;
- other people: every other talking clip's audio drives it; r against *that* person's tracked jaw
  (the dub's case with a known answer: another voice, a real mouth);
- languages: speech_{de,en,ja,zh}.wav (20 s each; English after its 3 s of leading noise) drive
  it; r against each line's 1-3 kHz envelope (the lip-sync benchmark's measure, on the driven curve).

r: Pearson at the best lag within +-8 frames (people) or +-5 (lines; that lag is reported too:
> 0 = the driven mouth trails the line), jaw_open only. Settings:
``current`` = ``AdaptConfig()``; ``nosync`` = the same without taking the shot's own audio/picture
offset out of the training pairs (``scratch_sync``, before the thirteenth session); ``plain`` = without
the voice augmentation of the scratch training (warp, frequency masks), as before the twelfth session. Each setting is fitted with
``--seeds`` seeds; the JSON holds every run and the medians per clip and setting.

Projects stay under --work (test media: never commit them).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from dubstudio.driving.audio2expr_train import AdaptConfig, adapt_actor, as_audio, clip_from_project, lag_correlation, predict_curves
from dubstudio.nn.audio_features import speech_envelope
from dubstudio.project.store import Project
from dubstudio.core.paths import media_dir
from dubstudio.core.controls import JAW
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.track import track

CLIPS = ["talk_a", "talk_b", "talk_c", "talk_d", "talk_e"]
LINES = {"de": 0.0, "en": 3.0, "ja": 0.0, "zh": 0.0}  # start (s) of the 20 s used
F2_BAND = (1000.0, 3000.0)
FIT_FRACTION = 0.6


def settings(name: str, seed: int) -> AdaptConfig:
    base = AdaptConfig()
    if name == "nosync":
        base = replace(base, scratch_sync=False)
    tc = base.scratch_train if name in ("current", "nosync") else replace(base.scratch_train, warp=0.0, freq_masks=0)
    return replace(base, scratch_train=replace(tc, seed=seed))


def tracked(work: Path, name: str) -> Project:
    d = work / "projects" / name
    p = Project.open(d) if d.is_dir() else Project.create(d, media_dir() / f"{name}.mp4")
    track(media_dir() / f"{name}.mp4", p)  # cached when current
    return p


def r_best(x: np.ndarray, y: np.ndarray, max_lag: int) -> float:
    return round(lag_correlation(x, y, max_lag)[1], 3)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/voice_transfer"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--settings", default="current,plain")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", default=",".join(CLIPS), help="the clips whose models are fitted (all five are still the other people)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    projects = {c: tracked(args.work, c) for c in CLIPS}
    clips = {}
    for c, p in projects.items():
        src = clip_from_project(p)
        clips[c] = (src, Tracking.load(src.tracking), as_audio(src.audio))
    lines = {k: as_audio(media_dir() / f"speech_{k}.wav")[int(s * 16000): int((s + 20) * 16000)] for k, s in LINES.items()}

    runs = []
    for name in args.settings.split(","):
        for seed in range(args.seeds):
            for c, (src, t, audio) in clips.items():
                if c not in args.clips.split(","):
                    continue
                cut = int(FIT_FRACTION * t.n_frames)
                t0 = time.perf_counter()
                ad = adapt_actor(replace(src, stop=cut), None, settings(name, seed))
                row = {"settings": name, "seed": seed, "clip": c, "fit_s": round(time.perf_counter() - t0, 1)}
                jaw = predict_curves(audio, t.n_frames, t.fps, None, ad)[:, JAW]
                held = t.has_face.copy()
                held[:cut] = False
                row["own"] = r_best(jaw[held], t.controls[held, JAW], 8)
                people = {}
                for o, (_, to, ao) in clips.items():
                    if o != c:
                        j = predict_curves(ao, to.n_frames, to.fps, None, ad)[:, JAW]
                        people[o] = r_best(j[to.has_face], to.controls[to.has_face, JAW], 8)
                row["other_people"] = people
                row["other_people_mean"] = round(float(np.mean(list(people.values()))), 3)
                fps = Fraction(25)
                langs, lags = {}, {}
                for k, a in lines.items():
                    n = int(len(a) / 16000 * fps)
                    lag, r, _ = lag_correlation(predict_curves(a, n, fps, None, ad)[:, JAW], speech_envelope(a, n, fps, band=F2_BAND), 5)
                    langs[k], lags[k] = round(r, 3), lag
                row["lines"] = langs
                row["lines_lag"] = lags
                row["av_offset_frames"] = ad.metrics.get("av_offset", {}).get("frames")
                row["lines_mean"] = round(float(np.mean(list(langs.values()))), 3)
                runs.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)

    def med(rows: list[dict], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 3)

    summary = {}
    for name in args.settings.split(","):
        rows = [r for r in runs if r["settings"] == name]
        summary[name] = {"per_clip": {c: {k: med([r for r in rows if r["clip"] == c], k) for k in ("own", "other_people_mean", "lines_mean")}
                                      for c in args.clips.split(",")},
                         "mean_over_runs": {k: round(float(np.mean([r[k] for r in rows])), 3) for k in ("own", "other_people_mean", "lines_mean")}}
    print(json.dumps({"machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s)", "seeds": args.seeds,
                      "fit_fraction": FIT_FRACTION, "summary": summary, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
