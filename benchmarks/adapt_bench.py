"""Adaptation benchmark: wall time per training step, steps/s and time to adapt 100 frames.

    .venv/bin/python benchmarks/adapt_bench.py [--clip talk_b | --project DIR] [--frames 0:100]
        [--resolution 128] [--steps 100] [--mode full] [--prior FILE] [--threads 2]
        [--budget-steps 1000] [--render 50] [--variants base,adv,vgg] [--device cpu]

Runs a real ``adapt`` (fresh state, --steps steps) on the frames, timing every step through the
Progress protocol, then renders --render held-out crops with ``ActorRenderer``. Prints one JSON
object: per-step wall time (median / p10 / p90 / min), CPU seconds per step (robust when other
jobs share the cores; the 1-minute load average is reported next to it), steps/s, the frame cache
build time (first and cached), the wall time of the run, the projected adaptation time for
--budget-steps steps, render frames/s and, with --variants, the cost per step of the adversarial
and perceptual terms. Outputs (project, checkpoints) go to a temporary folder unless --project.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dubstudio.core.jobs import Progress
from dubstudio.project.store import Project
from dubstudio.core.paths import media_dir


def _project(args, tmp: Path) -> Project:
    if args.project:
        return Project.open(args.project)
    from dubstudio.tracking.track import track

    clip = media_dir() / f"{args.clip}.mp4"
    p = Project.create(tmp / args.clip, clip)
    track(clip, p)
    return p


def _stats(x: list[float]) -> dict[str, float]:
    a = np.asarray(x)
    return {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)), "p90": float(np.percentile(a, 90)),
            "min": float(a.min()), "mean": float(a.mean())}


def time_variants(project, frames, cfg, names, device, steps: int) -> dict:
    """Seconds per train step with the adversarial and/or perceptual terms switched on."""
    from dubstudio.training.data import FrameCache, WindowSampler
    from dubstudio.training.trainer import Session

    cache = FrameCache.build(project, frames, cfg.resolution)
    out = {}
    for v in names:
        c = cfg.replace(w_adv=0.1 if v in ("adv", "adv+vgg") else 0.0, w_vgg=1.0 if v in ("vgg", "adv+vgg") else 0.0)
        sess = Session(c, device, WindowSampler({"a": cache}, c.generator.window), lambda rng: ["a"] * c.batch_size,
                       {"a": c.new_texture()}, ["a"], True)
        if "vgg" in v and (sess.vgg is None or not sess.vgg.available):
            out[v] = {"error": "perceptual loss unavailable"}
            continue
        sess.train_step()  # warm-up
        wall, cpu = [], []
        for _ in range(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            sess.train_step()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[v] = {"wall_s_per_step": statistics.median(wall), "cpu_s_per_step": statistics.median(cpu)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="talk_b")
    ap.add_argument("--project", help="a tracked project (default: track --clip into a temp folder)")
    ap.add_argument("--frames", default="0:100")
    ap.add_argument("--val-frames", default=None, help="held-out range for render timing (default: after --frames)")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--mode", default="full", choices=("texture", "full", "mixed"))
    ap.add_argument("--prior")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-steps", type=int, default=1000, help="step budget for the projected adaptation time")
    ap.add_argument("--render", type=int, default=50, help="crops to render for the render frames/s (0: skip)")
    ap.add_argument("--variants", default="", help="comma list of base,adv,vgg,adv+vgg to time per step")
    ap.add_argument("--variant-steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from dubstudio.training.data import FrameCache
    from dubstudio.shot.tracking import tracking_of
    from dubstudio.core.frames import parse_frames
    from dubstudio.nn.config import TrainConfig
    from dubstudio.training.trainer import adapt

    with tempfile.TemporaryDirectory(prefix="adapt_bench_") as d:
        tmp = Path(d)
        project = _project(args, tmp)
        tracking, _ = tracking_of(project)
        frames = parse_frames(args.frames, tracking.n_frames)
        cfg = TrainConfig(resolution=args.resolution, checkpoint_every=10**9, checkpoint_seconds=1e9)

        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        FrameCache.build(project, frames, args.resolution)
        cache_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        FrameCache.build(project, frames, args.resolution)
        cache_again = time.perf_counter() - t0

        stamps: list[tuple[int, float, float]] = []

        def cb(ev) -> None:
            if "loss" in ev.metrics:
                stamps.append((ev.done, time.perf_counter(), time.process_time()))

        t0 = time.perf_counter()
        res = adapt(project, args.mode, args.steps, frames=frames, prior=args.prior, cfg=cfg, device=device,
                    progress=Progress(cb), restart=True)
        wall_run = time.perf_counter() - t0
        steps_wall = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
        steps_cpu = [b[2] - a[2] for a, b in zip(stamps, stamps[1:])]
        per_step = statistics.median(steps_wall) if steps_wall else float("nan")
        losses = [h["loss"] for h in res.history if "loss" in h]

        render = {}
        if args.render:
            from dubstudio.rendering.renderer import ActorRenderer

            r = ActorRenderer.load(project, device, mode=args.mode)
            lo = frames[-1] + 1
            val = parse_frames(args.val_frames, tracking.n_frames) if args.val_frames else list(range(lo, min(lo + args.render, tracking.n_frames)))
            if not val:
                val = frames[: args.render]
            r.render_crops(val[:2])  # warm-up (audio features, decoder)
            t0 = time.perf_counter()
            r.render_crops(val)
            dt = time.perf_counter() - t0
            render = {"frames": len(val), "fps": len(val) / dt}
            r.close()
        variants = {}
        if args.variants:
            variants = time_variants(project, frames, cfg, [v for v in args.variants.split(",") if v], device, args.variant_steps)

        out = {
            "bench": "adapt", "clip": args.clip if not args.project else str(args.project), "mode": args.mode,
            "prior": args.prior, "frames": f"{frames[0]}:{frames[-1] + 1}", "n_frames": len(frames),
            "resolution": args.resolution, "batch_size": cfg.batch_size, "threads": args.threads,
            "device": str(device), "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load1_before": load0, "load1_after": os.getloadavg()[0],
            "steps": res.steps, "wall_s_per_step": _stats(steps_wall) if steps_wall else None,
            "cpu_s_per_step": _stats(steps_cpu) if steps_cpu else None,
            "steps_per_s": 1.0 / per_step if steps_wall else None,
            "steps_per_s_mean": res.steps_per_s,
            "frame_cache_s": {"first": cache_first, "cached": cache_again},
            "adapt_wall_s": wall_run,
            f"projected_adapt_s_{args.budget_steps}_steps": cache_first + args.budget_steps * per_step,
            "loss_first_last": [losses[0], losses[-1]] if losses else None,
            "stored_bytes": res.stored_bytes,
            "render": render, "variants": variants,
        }
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
