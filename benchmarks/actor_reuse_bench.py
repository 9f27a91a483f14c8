"""Another shot of the same actor: adaptation from that actor's first shot against from scratch
(and from a prior); prints one JSON object.

    .venv/bin/python benchmarks/actor_reuse_bench.py [--work /tmp/actor_reuse] [--steps 600]
        [--prior FILE] [--threads 1]

The media folder has one long take of one person (talk_long, 60 s), so the shots are cut from it:
shot A = 0-20 s (the actor's first shot, adapted on all 500 frames), shot B = 30-50 s, and shot C
= shot B reframed (a 0.81x crop off centre, scaled back to 256 px) and graded (brighter, warmer,
more saturated, gamma 0.9), as a different camera set-up of the same scene would be. On B and C
each run adapts on frames 0-399 and is validated on the held-out frames 400-499 (mouth PSNR of
the rendered crop inside the mouth mask, and over the whole generated lower-face region, which
shows a colour mismatch the mouth alone hides; 8 windows, every 25 steps): from scratch, from the prior
(with --prior), and from shot A's adaptation (``adapt(start_from=...)``), full mode, 128 px.
Reported: the curves, the step at which each run first reaches the scratch run's final value,
and wall time.

Cut shots, projects and weights stay under --work (test media: never commit them).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from dubstudio.project.store import Project
from dubstudio.core.paths import media_dir
from dubstudio.tracking.track import track
from dubstudio.nn.config import TrainConfig
from dubstudio.training.trainer import adapt

GRADE = "crop=208:208:30:20,scale=256:256:flags=lanczos,eq=brightness=0.05:saturation=1.25:gamma=0.9," \
        "colorbalance=rs=0.08:gs=0.02:bs=-0.08"
TRAIN, VAL = range(0, 400), range(400, 500)


def cut(work: Path) -> dict[str, Path]:
    src = media_dir() / "talk_long.mp4"
    shots = {"shotA": (["-i", str(src), "-ss", "0", "-t", "20"], []),
             "shotB": (["-ss", "30", "-i", str(src), "-t", "20"], [])}
    out = {}
    for name, (inp, vf) in shots.items():
        out[name] = work / f"{name}.mp4"
        if not out[name].is_file():
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *inp, "-c:v", "libx264", "-crf", "12", "-c:a", "aac",
                            str(out[name])], check=True)
    out["shotC"] = work / "shotC.mp4"
    if not out["shotC"].is_file():
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(out["shotB"]), "-vf", GRADE, "-c:v", "libx264",
                        "-crf", "12", "-c:a", "copy", str(out["shotC"])], check=True)
    return out


def curve(history: list[dict], key: str) -> list[tuple[int, float]]:
    return [(int(h["step"]), round(float(h[key]), 2)) for h in history if key in h]


def first_reach(c: list[tuple[int, float]], level: float) -> int | None:
    return next((s for s, p in c if p >= level), None)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/actor_reuse")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--prior", help="a prior trained on other people (dubstudio prior train): adds 'from the prior' rows")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    videos = cut(work)
    projects = {}
    for name, video in videos.items():
        projects[name] = Project.create(work / f"{name}.dubstudio", video)
        track(video, projects[name])

    t0 = time.perf_counter()
    a = adapt(projects["shotA"], "full", args.steps, cfg=TrainConfig())
    res: dict = {"machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s)", "steps": args.steps,
                 "shot_a": {"steps": a.steps, "wall_s": round(time.perf_counter() - t0, 1), "cached": a.cached}, "shots": {}}
    cfg = TrainConfig().replace(val_every=25)
    for shot in ("shotB", "shotC"):
        rows = {}
        starts = [("scratch", {}), ("from_shot_a", {"start_from": a.path})]
        if args.prior:
            starts.insert(1, ("prior", {"prior": args.prior}))
        for label, kw in starts:
            t0 = time.perf_counter()
            r = adapt(projects[shot], "full", args.steps, frames=TRAIN, val_frames=VAL, cfg=cfg, **kw)
            rows[label] = {"wall_s": round(time.perf_counter() - t0, 1), "cached": r.cached,
                           "steps_per_s": round(r.steps_per_s, 2)}
            for what, key in (("mouth", "val_mouth_psnr"), ("region", "val_mask_psnr")):
                rows[label][what] = {"curve": curve(r.history, key)}
        for what in ("mouth", "region"):
            final = rows["scratch"][what]["curve"][-1][1]
            for row in rows.values():
                c = row[what]["curve"]
                row[what].update(final=c[-1][1], step_0=c[0][1], at_150=dict(c).get(150),
                                 steps_to_scratch_final=first_reach(c, final))
        res["shots"][shot] = rows
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
