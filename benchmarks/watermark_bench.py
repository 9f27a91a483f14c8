"""How findable the invisible watermark is in short exports, with and without the detail pass.

    .venv/bin/python benchmarks/watermark_bench.py --project DIR [--frames 24,48] [--renderer copy|neural]
        [--train-frames 0:6] [--crf 17,23,28] [--threads 2]

Renders the first N frames of a tracked project once per detail setting (0 and 1), then for each
way of choosing the marked pixels embeds the mark, encodes H.264 (libx264, yuv420p, preset fast) at
each CRF and runs ``mark.detect`` on the file (the score of the method embedded). Methods:
``dubstudio-pn-luma-v1`` (1-pixel cells, before the eighth session) and ``-v2`` (2x2 cells, now the
default). Marked pixels:

- ``changed``: pixels that came out different from the original (before the eighth session);
- ``rendered``: ``mark.synthetic_mask`` with the composite's weight (changed, or at least half
  rendered; what the export does now).

The detection threshold is 8 (unmarked clips score like N(0, 1)). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch


def encode(frames: list[np.ndarray], path: Path, fps: Fraction, crf: int) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": str(crf), "preset": "fast"}
        for f in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)


def main() -> int:
    from dubstudio.app.renderer import RendererChoice, open_renderer
    from dubstudio.shot import Shot
    from dubstudio.export import mark
    from dubstudio.project.store import Project
    from dubstudio.rendering.composite import CompositeSettings
    from dubstudio.rendering.render_job import RenderSettings, render_frames
    from dubstudio.shot.tracking import load_tracking
    from dubstudio.core.frames import parse_frames

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--frames", default="24,48", help="shot lengths to test (the first N frames)")
    ap.add_argument("--renderer", choices=("copy", "neural"), default="copy")
    ap.add_argument("--train-frames", default="0:6", help="frames the copy baseline copies from")
    ap.add_argument("--resolution", type=int, default=256, help="copy baseline crop size")
    ap.add_argument("--crf", default="17,23,28")
    ap.add_argument("--methods", default=",".join(("dubstudio-pn-luma-v1", "dubstudio-pn-luma-v2")))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    project = Project.open(args.project)
    tracking = load_tracking(project)
    if args.renderer == "copy":
        from dubstudio.eval.copy_baseline import CopyBaseline
        from dubstudio.io.video import VideoReader

        reader = VideoReader(project.check_video())
        renderer = CopyBaseline(tracking, reader, parse_frames(args.train_frames, tracking.n_frames), args.resolution)
    else:
        renderer, _ = open_renderer(Shot(project), RendererChoice())
    lengths = [int(v) for v in args.frames.split(",")]
    crfs = [int(v) for v in args.crf.split(",")]
    methods = args.methods.split(",")
    fps = Fraction(tracking.fps)
    rows = []
    for detail in (0.0, 1.0):
        rs = RenderSettings(composite=CompositeSettings(detail=detail))
        frames = list(render_frames(project, tracking, renderer, range(0, max(lengths)), settings=rs))
        for how, method in [(h, m) for h in ("changed", "rendered") for m in methods]:
            wm = mark.WatermarkSettings(method=method)
            marked, pixels = [], []
            for f in frames:
                out = f.output.copy()
                m = mark.synthetic_mask(f.original, f.output, f.box, f.weight if how == "rendered" else None)
                if m is not None:
                    mark.embed(out, *m, wm)
                    pixels.append(int(m[2].sum()))
                marked.append(out)
            for n in lengths:
                for crf in crfs:
                    with tempfile.TemporaryDirectory() as d:
                        path = Path(d) / "marked.mp4"
                        encode(marked[:n], path, fps, crf)
                        found = mark.detect(path)
                    rows.append({"detail": detail, "marked_pixels": how, "method": method, "frames": n, "crf": crf,
                                 "score": found["scores"][method], "present": found["scores"][method] > mark.DETECT_THRESHOLD,
                                 "median_marked_pixels": int(np.median(pixels[:n])) if pixels else 0})
                    print(json.dumps(rows[-1]), file=sys.stderr)
    # unmarked: the same frames as rendered, no mark (what an innocent clip scores)
    for n in lengths:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "clean.mp4"
            encode([f.output for f in frames[:n]], path, fps, min(crfs))
            found = mark.detect(path)
        rows.append({"unmarked": True, "frames": n, "crf": min(crfs), "scores": found["scores"], "present": found["present"]})
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"bench": "watermark", "project": project.root.name, "renderer": args.renderer,
                      "frame_size": [tracking.width, tracking.height], "threshold": mark.DETECT_THRESHOLD,
                      "machine": f"{platform.machine()} {os.cpu_count()} cores", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
