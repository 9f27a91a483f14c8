"""Export resume benchmark: what a stopped export costs, what a re-export after a small fix costs,
and whether either changes a pixel.

    .venv/bin/python benchmarks/export_resume_bench.py --project DIR [--audio FILE] [--format mp4|mov|png]
        [--stop-at 0.5] [--repeats 2] [--threads 2] [--work DIR]

For a tracked and adapted project (the neural renderer; its dubbed audio from --audio, trimmed to
the shot): exports the whole shot uninterrupted ``--repeats`` times, then once more cancelled when
``--stop-at`` of its frames are done, then again to the same name (which continues it). Reports
wall times (median of the uninterrupted ones), the frames the continued run rendered, the largest
pixel difference between the continued file and an uninterrupted one (decoded), and file sizes.
Then the fix: a jaw key at the middle frame, an export to the same name (which renders only the
segments the key touches) against a fresh export of the fixed shot (``--restart``); the project's
curves are put back afterwards.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--audio")
    ap.add_argument("--format", choices=("mp4", "mov", "png"), default="mp4")
    ap.add_argument("--stop-at", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work")
    args = ap.parse_args()

    import torch

    from dubstudio.app.renderer import RendererChoice, open_renderer
    from dubstudio.shot import Shot
    from dubstudio.core.jobs import CancelToken, Progress
    from dubstudio.core.errors import Cancelled
    from dubstudio.export.audio_track import AudioRequest
    from dubstudio.export.job import ExportSettings, export_shot
    from dubstudio.project.store import Project
    from dubstudio.io.video import VideoReader
    from dubstudio.shot.tracking import load_tracking

    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="resume_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    project = Project.open(args.project)
    tracking = load_tracking(project)
    n = tracking.n_frames
    audio = AudioRequest("file", Path(args.audio), 0.0, "trim") if args.audio else AudioRequest("none")
    settings = ExportSettings(audio=audio, format=args.format)
    suffix = "" if args.format == "png" else f".{args.format}"

    def export(out: Path, progress=None) -> tuple[float, dict]:
        r, _ = open_renderer(Shot(project), RendererChoice(device="cpu"))
        t = time.perf_counter()
        try:
            res = export_shot(project, r, out, settings, progress, tracking=tracking)
            return time.perf_counter() - t, res
        finally:
            r.close()

    whole_s = []
    for i in range(args.repeats):
        out = work / f"whole{i}{suffix}"
        s, res = export(out)
        whole_s.append(s)

    stop = round(n * args.stop_at)
    token = CancelToken()

    def cb(ev):
        if ev.stage == "export" and ev.done >= stop:
            token.cancel()

    out = work / f"continued{suffix}"
    t = time.perf_counter()
    try:
        export(out, Progress(cb, token))
        raise SystemExit("the export finished before it was stopped; lower --stop-at")
    except Cancelled as e:
        stopped_s, message = time.perf_counter() - t, str(e)
    cont_s, res = export(out)
    cont_reused = res["frames_reused"]

    def frames(p: Path):
        if p.is_dir():
            import cv2

            for f in sorted(p.glob("frame_*.png")):
                yield cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        else:
            with VideoReader(p) as r:
                for _, rgb in r.iter_frames():
                    yield rgb

    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.iterdir()) if p.is_dir() else p.stat().st_size

    diff = max(int(np.abs(a.astype(np.int32) - b).max()) for a, b in zip(frames(out), frames(work / f"whole0{suffix}"), strict=True))

    cont_size = size(out)

    # the fix: one key in the middle of the shot, exported again to the same name
    import dataclasses

    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.core.curves import Key
    from dubstudio.core.edits import SetKey
    from dubstudio.shot.curves import load_curves

    store = CurveStore(project)
    curves = load_curves(project, tracking)
    before = curves.copy()
    mid = n // 2
    SetKey("jaw_open", Key(mid, float(curves.evaluate("jaw_open")[mid]) + 0.3)).apply(curves)
    store.save(curves)
    try:
        fix_s, fix = export(out)
        fresh_settings = settings
        settings = dataclasses.replace(settings, resume=False)
        fresh_s, _ = export(work / f"fresh{suffix}")
        settings = fresh_settings
    finally:
        store.save(before)
    fix_diff = max(int(np.abs(a.astype(np.int32) - b).max()) for a, b in zip(frames(out), frames(work / f"fresh{suffix}"), strict=True))

    print(json.dumps({
        "project": str(project.root), "frames": n, "format": args.format,
        "machine": f"{platform.machine()}, {args.threads} torch threads",
        "uninterrupted_wall_s": [round(x, 2) for x in whole_s], "uninterrupted_median_s": round(statistics.median(whole_s), 2),
        "stopped_after_s": round(stopped_s, 2), "stop_message": message,
        "continued_wall_s": round(cont_s, 2), "frames_reused_when_continued": cont_reused,
        "frames_rendered_when_continued": n - cont_reused,
        "stopped_plus_continued_s": round(stopped_s + cont_s, 2),
        "max_pixel_difference_vs_uninterrupted": diff,
        "size_bytes": {"continued": cont_size, "uninterrupted": size(work / f"whole0{suffix}")},
        "fix": {"key_at_frame": mid, "re_export_wall_s": round(fix_s, 2), "frames_rendered": fix["frames_rendered"],
                "fresh_export_wall_s": round(fresh_s, 2), "max_pixel_difference_vs_fresh": fix_diff},
    }))


if __name__ == "__main__":
    main()
