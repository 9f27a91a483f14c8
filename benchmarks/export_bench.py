"""Export benchmark: frames/s per format, the watermark's strength and cost, and peak memory.

    .venv/bin/python benchmarks/export_bench.py [--clip talk_b | --project DIR] [--renderer copy|neural]
        [--formats mp4,mov,png,sbs] [--mem-frames 100,300] [--mem-size 1920x1080] [--threads 1]
        [--work DIR]

1. **Throughput**: exports the whole tracked shot once per format (mp4 = H.264 crf 17 + AAC,
   mov = ProRes 422 HQ + PCM, png = sequence + WAV, sbs = side-by-side mp4) with the copy
   baseline (or the project's neural renderer) and the default post-process; reports frames/s,
   the render / composite / post-process split, and checks every video with ffprobe.
2. **Watermark**: the detector's score on the mp4 export (crf 17), on re-encodes of it at
   crf 18 / 23 / 28, and on the original clip; the PSNR the watermark costs (before
   compression) over whole frames and over the synthetic pixels only.
3. **Memory**: a long synthetic shot at --mem-size made from the clip's frames (scaled, looped;
   its tracking scaled the same way) exported to mp4 in a fresh process per length; peak RSS
   (ru_maxrss) and peak traced Python/numpy memory per length: flat = streaming.

Prints one JSON object. torch runs on --threads threads (1 on a shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _project(args, work: Path):
    from dubstudio.project.store import Project
    from dubstudio.core.paths import media_dir
    from dubstudio.tracking.track import track

    if args.project:
        return Project.open(args.project)
    clip = media_dir() / f"{args.clip}.mp4"
    p = Project.create(work / f"{args.clip}.dubstudio", clip)
    track(clip, p)
    return p


def _renderer(args, project, tracking):
    if args.renderer == "neural":
        from dubstudio.rendering.renderer import ActorRenderer

        return ActorRenderer.load(project, "cpu"), "neural"
    from dubstudio.eval.copy_baseline import CopyBaseline

    train = range(0, min(100, tracking.n_frames))
    return CopyBaseline.open(tracking, project.check_video(), train, resolution=256, warp=True), "copy-baseline"


def throughput(args, project, tracking, work: Path) -> dict:
    from dubstudio.export.audio_track import AudioRequest
    from dubstudio.export.job import ExportSettings, export_shot
    from dubstudio.export.verify import check

    out = {}
    names = {"mp4": "dub.mp4", "mov": "dub.mov", "png": "dub_png", "sbs": "review.mp4"}
    for fmt in args.formats.split(","):
        renderer, rname = _renderer(args, project, tracking)
        target = work / names[fmt]
        s = ExportSettings(audio=AudioRequest("original") if _has_audio(project.video_path) else AudioRequest("none"),
                           side_by_side=fmt == "sbs")
        t0 = time.perf_counter()
        res = export_shot(project, renderer, target, s, renderer_name=rname)
        wall = time.perf_counter() - t0
        getattr(renderer, "close", lambda: None)()
        row = {"frames_per_s": round(tracking.n_frames / wall, 2), "wall_s": round(wall, 2), "timing_s": res["timing_s"],
               "size": f"{res['width']}x{res['height']}", "bytes": _size(target)}
        if fmt != "png":
            v = check(target, tracking.n_frames, tracking.fps, res["audio"]["kind"] != "none")
            row["ffprobe_ok"], row["ffprobe_problems"] = v["ok"], v["problems"]
        out[fmt] = row
        print(f"[export_bench] {fmt}: {row['frames_per_s']} frames/s", file=sys.stderr, flush=True)
    return out


def _has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as c:
        return bool(c.streams.audio)


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.iterdir()) if p.is_dir() else p.stat().st_size


def watermark(args, project, tracking, work: Path) -> dict:
    from dubstudio.export.mark import WatermarkSettings, detect, embed, synthetic_mask
    from dubstudio.rendering.render_job import render_frames

    mp4 = work / "dub.mp4"
    res: dict = {"original": detect(project.video_path)}
    if mp4.exists():
        res["export_crf17"] = detect(mp4)
        for crf in (18, 23, 28):
            re = work / f"reencode_crf{crf}.mp4"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(mp4), "-c:v", "libx264", "-crf", str(crf), "-preset", "medium",
                            "-an", str(re)], check=True)
            res[f"reencoded_crf{crf}"] = detect(re)
    # the cost, before compression, on a sample of frames
    renderer, _ = _renderer(args, project, tracking)
    s = WatermarkSettings()
    se_all = se_syn = n_all = n_syn = 0.0
    for f in render_frames(project, tracking, renderer, range(0, min(60, tracking.n_frames))):
        m = synthetic_mask(f.original, f.output, f.box)
        if m is None:
            continue
        marked = embed(f.output.copy(), *m, s)
        d = (marked.astype(np.float64) - f.output) ** 2
        se_all += d.sum()
        n_all += d.size
        y0, x0, mask = m
        se_syn += d[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]][mask].sum()
        n_syn += mask.sum() * 3
    getattr(renderer, "close", lambda: None)()
    res["psnr_cost_db"] = {"whole_frame": round(10 * np.log10(255**2 / (se_all / n_all)), 2),
                           "synthetic_pixels": round(10 * np.log10(255**2 / (se_syn / n_syn)), 2),
                           "synthetic_fraction": round(n_syn / n_all, 4), "amplitude": s.amplitude}
    return res


# -- memory: a long synthetic shot at high resolution -------------------------------------------------


def make_long_shot(project, tracking, n: int, size: tuple[int, int], work: Path):
    """A shot of ``n`` frames at ``size`` from the clip's frames (scaled, looped), with its
    tracking scaled the same way; returns its Project."""
    import av
    import cv2

    from dubstudio.project.store import Project
    from dubstudio.io.video import VideoReader

    w, h = size
    k = min(w / tracking.width, h / tracking.height)
    sw, sh = int(round(tracking.width * k)), int(round(tracking.height * k))
    ox, oy = (w - sw) // 2, (h - sh) // 2  # centred, black bars (pillarbox) around
    clip = work / f"long_{n}_{w}x{h}.mp4"
    m = min(tracking.n_frames, 100)
    idx = np.arange(n) % m
    if not clip.exists():
        with VideoReader(project.check_video()) as r:
            src = [rgb for _, rgb in r.iter_frames(0, m)]
        tmp = clip.with_name(".tmp_" + clip.name)
        with av.open(str(tmp), "w") as out:
            vs = out.add_stream("libx264", rate=tracking.fps)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"crf": "18", "preset": "ultrafast"}
            for i in idx:
                canvas = np.zeros((h, w, 3), np.uint8)
                canvas[oy : oy + sh, ox : ox + sw] = cv2.resize(src[i], (sw, sh), interpolation=cv2.INTER_LINEAR)
                for p in vs.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
        tmp.replace(clip)
    proj = Project.create(work / f"long_{n}_{w}x{h}.dubstudio", clip)
    per_frame = {"landmarks", "has_face", "scale", "rotation", "translation", "controls", "residual", "crop"}
    kw = {f.name: (np.array(getattr(tracking, f.name)[idx]) if f.name in per_frame else getattr(tracking, f.name)) for f in dataclasses.fields(tracking)}
    shift = np.array([ox, oy, 0.0])
    kw["landmarks"] = kw["landmarks"] * k + shift
    kw["scale"] = kw["scale"] * k
    kw["translation"] = kw["translation"] * k + shift
    kw["crop"] = kw["crop"] * np.array([k, k, k]) + np.array([ox, oy, 0.0])
    kw.update(width=w, height=h)
    t = type(tracking)(**kw)
    proj.cache_dir("track")
    t.save(proj.path("cache/track/tracking.npz"))
    proj.record_stage("track", f"bench-{n}-{w}x{h}", {"tracking": "cache/track/tracking.npz"})
    return proj


def memory_child(project_dir: str, out: str, renderer: str, threads: int) -> None:
    """Runs in a fresh process: export, print peak RSS / traced memory as JSON."""
    import tracemalloc

    import torch

    torch.set_num_threads(threads)
    from dubstudio.export.audio_track import AudioRequest
    from dubstudio.export.job import ExportSettings, export_shot
    from dubstudio.project.store import Project
    from dubstudio.shot.tracking import load_tracking

    p = Project.open(project_dir)
    t = load_tracking(p)
    ns = argparse.Namespace(renderer=renderer)
    r, name = _renderer(ns, p, t)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    res = export_shot(p, r, out, ExportSettings(audio=AudioRequest("none")), renderer_name=name)
    wall = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"frames": res["frames"], "size": f"{res['width']}x{res['height']}", "wall_s": round(wall, 1),
                      "frames_per_s": round(res["frames"] / wall, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "rss_before_export_mb": round(rss0 / 1024, 1), "peak_traced_mb": round(traced / 2**20, 1)}))


def memory(args, project, tracking, work: Path) -> dict:
    w, h = (int(x) for x in args.mem_size.split("x"))
    rows = {}
    for n in (int(x) for x in args.mem_frames.split(",")):
        proj = make_long_shot(project, tracking, n, (w, h), work)
        cmd = [sys.executable, __file__, "--_memory-child", str(proj.root), str(work / f"long_{n}.mp4"), "--threads", str(args.threads)]
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if r.returncode != 0:
            rows[n] = {"error": r.stderr[-1500:]}
            continue
        rows[n] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"[export_bench] memory {n} frames {w}x{h}: {rows[n]}", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="talk_b")
    ap.add_argument("--project", help="a tracked project (copied nowhere; exports go to --work)")
    ap.add_argument("--renderer", choices=("copy", "neural"), default="copy")
    ap.add_argument("--formats", default="mp4,mov,png,sbs")
    ap.add_argument("--mem-frames", default="100,300", help="lengths of the synthetic long shot ('' to skip)")
    ap.add_argument("--mem-size", default="1920x1080")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--skip-watermark", action="store_true")
    ap.add_argument("--_memory-child", nargs=2, metavar=("PROJECT", "OUT"), dest="memory_child")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child[0], args.memory_child[1], args.renderer, args.threads)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="export_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    from dubstudio.shot.tracking import load_tracking

    project = _project(args, work)
    tracking = load_tracking(project)
    result = {
        "bench": "export",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "torch_threads": args.threads,
        "clip": project.video_path.name,
        "frames": tracking.n_frames,
        "fps": str(tracking.fps),
        "size": f"{tracking.width}x{tracking.height}",
        "renderer": args.renderer,
        "work": str(work),
    }
    result["throughput"] = throughput(args, project, tracking, work) if args.formats else {}
    if not args.skip_watermark:
        result["watermark"] = watermark(args, project, tracking, work)
    if args.mem_frames:
        result["memory"] = memory(args, project, tracking, work)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
