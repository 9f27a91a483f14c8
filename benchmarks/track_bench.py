"""Tracking benchmark: every talking clip in the test media, fresh project each, one JSON line each.

    .venv/bin/python benchmarks/track_bench.py [--clips talk_a,talk_b] [--repeat 3] [--markdown]

tracking_fps is wall clock end to end (decode + landmarks + fit + smoothing + crops + save),
median over --repeat runs, each in a fresh project (nothing cached).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from dubstudio.project.store import Project
from dubstudio.core.paths import media_dir
from dubstudio.tracking.track import track

CLIPS = ["talk_a", "talk_b", "talk_c", "talk_d", "talk_e", "talk_long"]
TARGETS = {"tracking_fps_512": 25.0, "landmark_rms_iod": 0.03, "jaw_lip_corr": 0.9, "crop_size_cv": 0.02}


def bench_clip(path: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            _, m = track(path, Project.create(Path(d) / "p", path))
            runs.append(m)
    out = dict(runs[-1])
    out["tracking_fps"] = statistics.median(r["tracking_fps"] for r in runs)
    out["tracking_fps_runs"] = [round(r["tracking_fps"], 1) for r in runs]
    out["clip"] = path.stem
    out.pop("cached", None)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table to stderr")
    args = ap.parse_args()
    rows = []
    for name in args.clips.split(","):
        row = bench_clip(media_dir() / f"{name}.mp4", args.repeat)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, torch threads n/a, python {platform.python_version()}",
        "all_rms_ok": all(r["landmark_rms_iod"] <= TARGETS["landmark_rms_iod"] for r in rows),
        "all_corr_ok": all(r["jaw_lip_corr"] >= TARGETS["jaw_lip_corr"] for r in rows),
        "all_cv_ok": all(r["crop_size_cv"] <= TARGETS["crop_size_cv"] for r in rows),
    }
    print(json.dumps({"summary": summary}))
    if args.markdown:
        cols = ["clip", "frames", "frames_with_face", "tracking_fps", "landmark_rms_iod", "landmark_rms_iod_p95", "jaw_lip_corr", "crop_size_cv"]
        print("| " + " | ".join(cols) + " |", file=sys.stderr)
        print("|" + "---|" * len(cols), file=sys.stderr)
        for r in rows:
            cells = [f"{r[c]:.4f}" if isinstance(r[c], float) and c != "tracking_fps" else (f"{r[c]:.1f}" if c == "tracking_fps" else str(r[c])) for c in cols]
            print("| " + " | ".join(cells) + " |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
