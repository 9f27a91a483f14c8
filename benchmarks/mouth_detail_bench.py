"""Issue 21: how sharp and how true the rendered mouth is, on held-out frames of real clips.

    .venv/bin/python benchmarks/mouth_detail_bench.py [--clips talk_b,talk_c,talk_long,talk_d]
        [--variants neural,detail,detail_auto,copy,copy_warp] [--steps 600] [--train 0:100] [--test -50:]
        [--detail k=3,sigma=1.0] [--work /tmp/md] [--threads 2] [--json OUT.json] [--sheets DIR]

Protocol (the issue's): a new user's adaptation (no prior, ``run``'s steps and settings) on the
training frames, then the held-out frames rendered from their tracked expression and real audio,
composited into the full frames exactly as an export does, written as near-lossless H.264, and
measured against the real frames:

- ``../shared/tools/mouth_sharpness.py`` (independent of this code): gradient ratio in the lip box,
  all frames and the open-mouth third, and inside the open inner lips; mouth-box PSNR;
- mouth LPIPS (alex) and PSNR on the tracked mouth, in crop space at the detail resolution, all
  frames and the open-mouth third (largest tracked jaw opening);
- flicker: the mouth box's mean frame-to-frame change, render / real (1.0 = as much as the real).

``detail_auto`` is the product's per-shot choice of the detail's settings (``app.detail``): the
candidates are checked on runs of frames outside both the training and the test frames, with the
training frames as references, and the test frames rendered with the winner.

Projects are tracked and adapted into --work once and reused. One job at a time (2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from dubstudio.project.store import Project

sys.path.insert(0, str(Path(__file__).parent))
from renderer_eval_bench import tracked  # noqa: E402  (the same tracked projects: --work/projects/<clip>)

TOOLS = Path(__file__).resolve().parents[2] / "shared" / "tools"


def adapted(p: Project, train: range, steps: int, device: str = "cpu", preset: str | None = None) -> tuple[Path, dict | None]:
    """The actor as a new user's ``run`` adapts it (from scratch; on CUDA the cuda preset)."""
    from dubstudio.app.adapt import train_config
    from dubstudio.training.trainer import adapt

    cfg = train_config(config_file=preset, device=device)
    tag = "" if preset is None else "_" + hashlib.sha256(json.dumps(cfg.key_dict(), sort_keys=True, default=str).encode()).hexdigest()[:8]
    out = p.root / f"bench_actor_{train.start}_{train.stop}_{steps}_{cfg.resolution}{tag}.pt"
    if out.is_file():
        return out, None
    t0 = time.perf_counter()
    res = adapt(p, "full", steps, frames=train, cfg=cfg, device=device, restart=True)
    wall = time.perf_counter() - t0
    shutil.copyfile(res.path, out)
    return out, {"adapt_s": round(wall, 1), "steps_per_s": round(res.steps_per_s, 2), "resolution": cfg.resolution}


def parse_range(text: str, n: int) -> range:
    a, b = text.split(":")
    a = int(a) if a else 0
    b = int(b) if b else n
    return range(a % n if a < 0 else a, b % n if b < 0 else b)


def write_video(path: Path, frames, fps) -> None:
    from dubstudio.io.video_writer import VideoWriter

    w = None
    for f in frames:
        if w is None:
            w = VideoWriter(path, fps, f.shape[1], f.shape[0], options={"crf": "8", "preset": "fast"})
        w.write(f)
    w.close(keep=True)


def sharpness(real: Path, rendered: Path, first: int) -> dict:
    tool = TOOLS / "mouth_sharpness.py"
    r = subprocess.run([sys.executable, str(tool), str(real), str(rendered), "--first-real", str(first)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def crop_metrics(tracking, idx: list[int], outs: list[np.ndarray], reals: list[np.ndarray], res: int, lp) -> dict:
    from dubstudio.eval.metrics import masked_psnr
    from dubstudio.rendering.crop_io import extract_crop
    from dubstudio.rendering.rasterizer import rasterize_frames
    from dubstudio.tracking.crops import MASK_MOUTH

    mouth = rasterize_frames(tracking, idx, res).regions.numpy() == MASK_MOUTH
    g = np.stack([extract_crop(o, tracking.crop[i], res) for i, o in zip(idx, outs)])
    r = np.stack([extract_crop(o, tracking.crop[i], res) for i, o in zip(idx, reals)])
    lpips = np.array(lp.score_batch(g, r, mouth), float)
    psnr = np.array([masked_psnr(a, b, m) for a, b, m in zip(g, r, mouth)])
    jaw = np.asarray(tracking.controls)[idx, 0]
    open3 = jaw >= np.quantile(jaw, 2 / 3)
    # flicker: mean absolute change between consecutive frames inside the union mouth box
    ys, xs = np.nonzero(mouth.any(0))
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    dg = np.abs(np.diff(g[:, box[0], box[1]].astype(np.float32), axis=0)).mean()
    dr = np.abs(np.diff(r[:, box[0], box[1]].astype(np.float32), axis=0)).mean()
    return {"mouth_lpips": round(float(np.median(lpips)), 4), "mouth_lpips_open": round(float(np.median(lpips[open3])), 4),
            "mouth_psnr": round(float(np.median(psnr)), 2), "mouth_psnr_open": round(float(np.median(psnr[open3])), 2),
            "flicker_ratio": round(float(dg / max(dr, 1e-6)), 3)}


def far_references(tracking, refs: list[int], test: range, far: float) -> list[int]:
    """``refs`` less every frame within ``far`` spacings of a test frame's expression: each test
    frame's nearest reference is then at least that far, as a dub's widest mouths find them (a
    dubbed expression the shot never shows)."""
    from dubstudio.rendering.mouth_detail import expression_spacing

    c = np.asarray(tracking.controls, np.float64)
    unit = expression_spacing(c[np.asarray(tracking.has_face, bool)])  # what ReferenceBank.scale measures
    d = np.sqrt(((c[refs][:, None] - c[list(test)][None]) ** 2).sum(-1)).min(1) / unit
    return [i for i, x in zip(refs, d) if x >= far]


def render_variant(p: Project, tracking, name: str, actor: Path, train: range, test: range, detail: dict, device: str,
                   exclude: int = 0, references: str = "train", far: float = 0.0):
    from dubstudio.eval.copy_baseline import CopyBaseline
    from dubstudio.io.video import VideoReader
    from dubstudio.rendering.mouth_detail import DetailedRenderer, DetailSettings, detail_resolution
    from dubstudio.rendering.render_job import render_frames
    from dubstudio.rendering.renderer import ActorRenderer

    reader = VideoReader(p.check_video())
    # references: the training frames (or every frame with a face, as a dub of the whole shot has
    # them), less those within ``exclude`` of the test range
    pool = train if references == "train" else [i for i in range(tracking.n_frames) if tracking.has_face[i]]
    refs = [i for i in pool if not test.start - exclude <= i < test.stop + exclude]
    check_refs = refs  # the product's check has the whole shot (less the test frames), not --far's thinned one
    if far > 0:
        refs = far_references(tracking, refs, test, far)
    if name == "neural":
        renderer = ActorRenderer.load(p, device, actor=actor)
    elif name == "detail":
        t0 = time.perf_counter()
        renderer = DetailedRenderer.over(ActorRenderer.load(p, device, actor=actor), reader, refs, DetailSettings(**detail))
        renderer.bank_s = round(time.perf_counter() - t0, 2)  # decoding the references
    elif name == "detail_auto":  # the product's per-shot choice (app.detail), on frames outside train and test
        from dubstudio.app.detail import plan_check
        from dubstudio.eval.detail_check import CheckSettings, check_detail
        from dubstudio.eval.metrics import LpipsScorer

        t0 = time.perf_counter()
        base = ActorRenderer.load(p, device, actor=actor)
        near = CheckSettings().exclude
        runs, _ = plan_check(tracking.has_face, list(train))
        runs = [[i for i in r if not test.start - near <= i < test.stop + near] for r in runs]
        runs = [r for r in runs if len(r) >= CheckSettings().length // 2]
        runs = runs if len(runs) >= 2 else free_runs(tracking.has_face, train, test, near)
        check = check_detail(base, reader, check_refs, runs, LpipsScorer(device=device))
        renderer = DetailedRenderer.over(base, reader, refs, check.settings(DetailSettings(**detail)))
        renderer.bank_s = round(time.perf_counter() - t0, 2)  # the check and decoding the references
        renderer.check = check
    elif name in ("copy", "copy_warp"):
        res = detail_resolution(tracking, 128, DetailSettings(**detail))  # the footage's density, like the detail
        renderer = CopyBaseline(tracking, reader, refs, res, warp=name == "copy_warp")
    else:
        raise SystemExit(f"unknown variant {name}")
    t0 = time.perf_counter()
    outs, reals, idx = [], [], []
    for f in render_frames(p, tracking, renderer, test):
        outs.append(f.output)
        reals.append(f.original)
        idx.append(f.index)
    wall = time.perf_counter() - t0
    reader.close()
    return renderer, outs, reals, idx, wall


def free_runs(has_face, train, test: range, near: int) -> list[list[int]]:
    """Check runs for a shot too short for the product's own places once train and test frames are
    taken (talk_e: 199 frames, train 0:100, test 149:199): two or three runs of the check's length,
    spread over the frames free of both (runs of consecutive frames with a face). The choice is then
    made on fewer frames than the product's 24, so the row says how many."""
    from dubstudio.eval.detail_check import CheckSettings

    L = CheckSettings().length
    taken = set(int(i) for i in train) | set(range(test.start - near, test.stop + near))
    free = [i for i in range(len(has_face)) if i not in taken and has_face[i]]
    count = min(3, len(free) // (2 * L))
    if count < 2:
        return []
    starts = np.linspace(0, len(free) - L, count).round().astype(int)
    runs = [free[s:s + L] for s in starts]
    return [r for r in runs if r[-1] - r[0] == L - 1]  # consecutive frames only


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="talk_b,talk_c,talk_long,talk_d")
    ap.add_argument("--variants", default="neural,detail,copy,copy_warp")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--train", default="0:100")
    ap.add_argument("--test", default="-50:")
    ap.add_argument("--detail", default="", help="DetailSettings overrides, e.g. k=3,sigma=1.0; several split by ';' "
                    "(detail_auto lays the check's choice over the first: leave it out to measure the product)")
    ap.add_argument("--bank-exclude", type=int, default=0, metavar="N",
                    help="keep references N frames away from the test frames (for test frames inside --train)")
    ap.add_argument("--references", choices=("train", "all"), default="train",
                    help="where the detail and the copies take mouths from: the training frames (default), or every "
                         "frame of the shot less --bank-exclude around the test frames (as a dub of the whole shot)")
    ap.add_argument("--far", type=float, default=0.0, metavar="D",
                    help="leave out every reference within D x the shot's spacing of expressions of a test frame's "
                         "(a dub's widest mouths are that far from anything the shot shows)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/md"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", help="adaptation preset or config file (default: the CPU defaults; on cuda the cuda preset)")
    ap.add_argument("--no-tool", action="store_true", help="skip ../shared/tools/mouth_sharpness.py (no mediapipe here)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheets", type=Path, help="write a mouth contact sheet per clip here")
    args = ap.parse_args()

    import torch

    from dubstudio.eval.metrics import LpipsScorer
    from dubstudio.rendering.mouth_detail import DetailSettings, detail_resolution
    from dubstudio.shot.tracking import load_tracking

    torch.set_num_threads(args.threads)
    details = [{k: (int(v) if k in ("k", "max_resolution", "bank_size") else v if k == "interp" else float(v))
                for k, v in (kv.split("=") for kv in spec.split(",") if kv)} for spec in args.detail.split(";")]
    lp = LpipsScorer()
    rows = []
    for clip in args.clips.split(","):
        p = tracked(args.work, clip)
        t = load_tracking(p)
        train, test = parse_range(args.train, t.n_frames), parse_range(args.test, t.n_frames)
        actor, adapt_info = adapted(p, train, args.steps, args.device, args.preset)
        sheet = []
        res = detail_resolution(t, 128, DetailSettings())  # every variant measured at the footage's density
        todo = [(v, d) for v in args.variants.split(",") for d in (details if v == "detail" else [details[0]])]
        for v, detail in todo:
            renderer, outs, reals, idx, wall = render_variant(p, t, v, actor, train, test, detail, args.device, args.bank_exclude,
                                                                 args.references, args.far)
            tag = v + ("_" + "_".join(f"{k}{x}" for k, x in detail.items()) if v == "detail" and detail else "")
            vid = args.work / "videos" / f"{clip}_{tag}.mp4"
            vid.parent.mkdir(parents=True, exist_ok=True)
            write_video(vid, outs, t.fps)
            row = {"clip": clip, "variant": v, "train": [train.start, train.stop], "test": [test.start, test.stop],
                   "bank_exclude": args.bank_exclude, "far": args.far, "references": args.references, "metric_resolution": res, "render_resolution": int(renderer.resolution), "crop_box_px": round(float(np.median(np.asarray(t.crop)[:, 2])), 1),
                   "adapt": adapt_info, "render_s_per_frame": round(wall / len(outs), 3),
                   **crop_metrics(t, idx, outs, reals, res, lp), "tool": sharpness(p.check_video(), vid, test.start) if not args.no_tool else None}
            if v in ("detail", "detail_auto"):
                row["detail"] = detail
                row["bank_s"] = renderer.bank_s
            if v == "detail_auto":  # what was rendered: the check's choice over --detail (the product has no --detail)
                row["check"] = renderer.check.to_json()
                row["detail_base"], row["detail"] = detail, {**detail, **renderer.check.chosen}
            rows.append(row)
            print(json.dumps(row), flush=True)
            sheet.append((v, outs, reals, idx))
        if args.sheets:
            contact_sheet(t, sheet, args.sheets / f"{clip}.png")
    out = {"machine": platform.node(), "cpu_threads": args.threads, "steps": args.steps, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def contact_sheet(tracking, sheet, path: Path, n: int = 4) -> None:
    """Rows: the n most open held-out frames; columns: real, then each variant; mouth boxes at 2x."""
    _, outs, reals, idx = sheet[0]
    jaw = np.asarray(tracking.controls)[idx, 0]
    pick = np.argsort(-jaw)[:n]
    rows = []
    for k in sorted(pick):
        i = idx[k]
        cx, cy, s = tracking.crop[i][:3]
        x0, y0 = int(cx - 0.25 * s), int(cy + 0.05 * s)
        w = int(0.5 * s)
        cells = [reals[k]] + [o[k] for _, o, _, _ in sheet]
        row = [cv2.resize(c[y0 : y0 + w // 2, x0 : x0 + w], (512, 256), interpolation=cv2.INTER_NEAREST) for c in cells]
        rows.append(np.concatenate(row, axis=1))
    img = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    raise SystemExit(main())
