"""Rasterizer benchmark: ms per frame for the face mesh of a real tracked frame, one JSON line each.

    .venv/bin/python benchmarks/raster_bench.py [--clip talk_b] [--repeat 50] [--threads 2]
        [--resolutions 128,256,512] [--backends auto,torch,numba] [--batch 1] [--device cpu]

Tracks the clip into a temporary project (or reads --tracking FILE), then times
``rasterize`` (coverage + barycentrics + depth) and ``rasterize_frame`` (plus vertices, UVs and
region masks) on --frames frames spread over the shot; prints the median and the minimum over
--repeat runs. The first call (numba compile or load from its cache) is reported separately.
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

from dubstudio.core.paths import media_dir
from dubstudio.rendering import rasterizer as rast
from dubstudio.tracking.result import Tracking


def load_tracking(args) -> Tracking:
    if args.tracking:
        return Tracking.load(args.tracking)
    from dubstudio.project.store import Project
    from dubstudio.tracking.track import track

    clip = media_dir() / f"{args.clip}.mp4"
    with tempfile.TemporaryDirectory() as d:
        tracking, _ = track(clip, Project.create(Path(d) / "p", clip))
    return tracking


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, repeat: int, device: torch.device) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), 1000 * min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="talk_b")
    ap.add_argument("--tracking", help="a tracking.npz to use instead of tracking --clip")
    ap.add_argument("--resolutions", default="128,256,512")
    ap.add_argument("--backends", default="auto,torch" + (",numba" if rast.numba_available() else ""))
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--frames", type=int, default=5, help="frames spread over the shot (timed round-robin)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    t = load_tracking(args)
    model = t.model()
    tris = torch.as_tensor(rast.mesh_tables()[0], device=device)
    frames = np.flatnonzero(t.has_face)
    frames = frames[np.linspace(0, len(frames) - 1, args.frames).round().astype(int)]
    for r in (int(x) for x in args.resolutions.split(",")):
        batches = []
        for k in range(len(frames)):
            idx = [int(frames[(k + j) % len(frames)]) for j in range(args.batch)]
            v = np.stack([rast.crop_vertices(t, i, r, model=model) for i in idx])
            batches.append(torch.tensor(v, dtype=torch.float32, device=device))
        for backend in args.backends.split(","):
            if backend == "numba" and device.type != "cpu":
                continue
            state = {"k": 0}

            def one() -> None:
                rast.rasterize(batches[state["k"] % len(batches)], tris, r, backend=backend)
                state["k"] += 1

            t0 = time.perf_counter()
            one()
            first = 1000 * (time.perf_counter() - t0)
            med, lo = time_it(one, args.repeat, device)
            row = {
                "what": "rasterize",
                "resolution": r,
                "backend": backend,
                "batch": args.batch,
                "device": str(device),
                "ms_per_frame_median": round(med / args.batch, 3),
                "ms_per_frame_min": round(lo / args.batch, 3),
                "first_call_ms": round(first, 1),
                "coverage": round(float(rast.rasterize(batches[0], tris, r, backend=backend).mask.float().mean()), 4),
            }
            print(json.dumps(row), flush=True)
        state = {"k": 0}

        def frame() -> None:
            rast.rasterize_frame(t, int(frames[state["k"] % len(frames)]), r, device=device, model=model)
            state["k"] += 1

        frame()
        med, lo = time_it(frame, args.repeat, device)
        print(json.dumps({"what": "rasterize_frame", "resolution": r, "backend": "auto", "device": str(device),
                          "ms_per_frame_median": round(med, 3), "ms_per_frame_min": round(lo, 3)}), flush=True)
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__} "
                      f"threads {torch.get_num_threads()}, python {platform.python_version()}",
                      "numba": rast.numba_available(), "triangles": int(tris.shape[0]),
                      "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
