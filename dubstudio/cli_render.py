"""CLI commands ``render`` and ``eval`` (wired into ``dubstudio.cli`` via ``register(sub, common)``).

    dubstudio render --project DIR --frames A:B -o OUT [--renderer-checkpoint FILE] [--json]
    dubstudio eval   --project DIR --train-frames A:B --test-frames C:D [--renderer-checkpoint FILE]
                     [--baseline-only] [--json]

The neural renderer is imported lazily from ``dubstudio.rendering.renderer`` (``ActorRenderer.load
(project, device[, checkpoint=...])``); when it is missing, ``render`` and ``eval`` without
``--baseline-only`` stop with a clear message. ``render --renderer copy`` renders the copy
baseline instead (no neural renderer needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dubstudio.core.errors import DubStudioError

__all__ = ["register", "cmd_render", "cmd_eval", "load_renderer"]


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_renderer(project, device: str, checkpoint: str | None = None, mode: str | None = None):
    """``ActorRenderer.load(project, device[, actor=checkpoint][, mode=mode])`` or a clear DubStudioError."""
    import inspect

    try:
        from dubstudio.rendering.renderer import ActorRenderer
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("dubstudio.rendering.renderer"):
            raise DubStudioError(
                "the neural renderer (dubstudio.rendering.renderer) is not part of this build yet; "
                "use `dubstudio eval --baseline-only` or `dubstudio render --renderer copy`, or update DubStudio."
            ) from e
        raise DubStudioError(f"the neural renderer cannot be loaded: missing module {e.name}; reinstall DubStudio.") from e
    params = inspect.signature(ActorRenderer.load).parameters
    kwargs = {}
    if checkpoint:
        ck = Path(checkpoint)
        if not ck.is_file():
            raise DubStudioError(f"renderer checkpoint not found: {ck}; check the path or run `dubstudio adapt` first.")
        name = next((n for n in ("actor", "checkpoint") if n in params), None)
        if name is None:
            raise DubStudioError("this renderer cannot load a given checkpoint; leave out --renderer-checkpoint.")
        kwargs[name] = ck
    if mode:
        if "mode" not in params:
            raise DubStudioError("this renderer has no adaptation modes; leave out --mode.")
        kwargs["mode"] = mode
    return ActorRenderer.load(project, device, **kwargs)


def _open(args):
    from dubstudio.project.store import Project
    from dubstudio.shot.tracking import load_tracking

    project = Project.open(args.project)
    return project, load_tracking(project)


def _composite_settings(args):
    from dubstudio.rendering.composite import CompositeSettings
    from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH

    regions = (MASK_MOUTH,) if args.region == "mouth" else (MASK_LOWER_FACE, MASK_MOUTH)
    detail = float(getattr(args, "detail", CompositeSettings.detail))
    if not 0.0 <= detail <= 1.0:
        from dubstudio.core.errors import DubStudioError

        raise DubStudioError(f"--detail must be between 0 (off) and 1, got {detail:g}.")
    return CompositeSettings(regions=regions, colour=args.colour, detail=detail)


def cmd_render(args) -> int:
    import numpy as np

    from dubstudio.cli import _emit, _progress
    from dubstudio.rendering.background import BackgroundSettings
    from dubstudio.rendering.render_job import RenderSettings, render_range
    from dubstudio.core.frames import parse_frames

    project, tracking = _open(args)
    frames = parse_frames(args.frames, tracking.n_frames) if args.frames else range(tracking.n_frames)
    controls = None
    if args.controls:
        try:
            controls = np.load(args.controls, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DubStudioError(f"cannot read controls {args.controls}: {e}; give a .npy (frames, controls) array.") from e
    video = project.check_video()
    if args.renderer == "copy":
        from dubstudio.eval.copy_baseline import CopyBaseline

        if not args.train_frames:
            raise DubStudioError("--renderer copy needs --train-frames A:B (the frames it copies mouths from).")
        renderer = CopyBaseline.open(tracking, video, parse_frames(args.train_frames, tracking.n_frames), resolution=args.resolution, warp=True)
    else:
        renderer = load_renderer(project, _device(args.device), args.renderer_checkpoint, args.mode)
    settings = RenderSettings(
        batch_size=args.batch_size,
        composite=_composite_settings(args),
        background=None if args.no_postprocess else BackgroundSettings(),
    )
    progress = _progress(args)
    try:
        result = render_range(project, tracking, renderer, frames, Path(args.output), controls, progress, settings)
    finally:
        progress.close()
        close = getattr(renderer, "close", None)
        if callable(close):
            close()
    _emit(args, result, f"rendered {result['frames']} frames ({result['frames_with_face']} with a face) -> {result['output']}  [{result['frames_per_s']} frames/s]")
    return 0


def cmd_eval(args) -> int:
    from dubstudio.cli import _emit, _progress
    from dubstudio.eval.selfreenact import EvalSettings, evaluate
    from dubstudio.core.frames import parse_frames

    project, tracking = _open(args)
    train = parse_frames(args.train_frames, tracking.n_frames)
    test = parse_frames(args.test_frames, tracking.n_frames)
    renderer = None if args.baseline_only else load_renderer(project, _device(args.device), args.renderer_checkpoint, args.mode)
    settings = EvalSettings(
        resolution=args.resolution,
        residual_weight=args.residual_weight,
        lpips=not args.no_lpips,
        device=_device(args.device),
        composite=_composite_settings(args),
        per_frame=args.per_frame,
    )
    progress = _progress(args)
    try:
        result = evaluate(tracking, project.check_video(), train, test, renderer, settings, progress)
    finally:
        progress.close()
    result["project"] = str(project.root)
    _emit(args, result, _table(result))
    return 0


def _fmt(x, digits: int) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}f}"


def _table(result: dict) -> str:
    lines = [
        f"self-reenactment: train {result['train_frames'][0]}:{result['train_frames'][1]}, "
        f"test {result['test_frames'][0]}:{result['test_frames'][1]} ({result['n_test_with_face']} frames with a face), "
        f"crop {result['resolution']} px; median (mean)",
        f"  {'method':22s} {'face PSNR':>16s} {'face SSIM':>16s} {'mouth PSNR':>16s} {'mouth LPIPS':>16s}",
    ]
    for name, m in result["methods"].items():
        cells = []
        for key, d in (("face_psnr", 2), ("face_ssim", 4), ("mouth_psnr", 2), ("mouth_lpips", 4)):
            cells.append(f"{_fmt(m[key]['median'], d)} ({_fmt(m[key]['mean'], d)})")
        lines.append(f"  {name:22s} " + " ".join(f"{c:>16s}" for c in cells))
    if not result["lpips"]["available"]:
        lines.append(f"  LPIPS unavailable: {result['lpips']['reason']}")
    if "renderer_beats_copy" in result:
        lines.append(f"  renderer beats copy baseline: {result['renderer_beats_copy']}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction, common_flags=None) -> None:
    """Add ``render`` and ``eval`` to the ``dubstudio`` command's subparsers. ``common_flags``
    is ``cli.build_parser``'s ``common`` (adds --json / -q); without it they are added here."""

    def common(sp):
        sp.add_argument("--project", required=True, help="project folder (tracked)")
        sp.add_argument("--renderer-checkpoint", help="actor/renderer checkpoint file to use (default: the project's latest adaptation)")
        sp.add_argument("--mode", choices=("texture", "full", "mixed"), help="use the project's adaptation of this mode (default: the latest)")
        sp.add_argument("--device", default="auto", help="torch device for the renderer: auto, cpu, cuda, cuda:1 ... (default auto)")
        sp.add_argument("--region", choices=("lower", "mouth"), default="lower", help="region composited back: lower face + mouth (default) or mouth only")
        sp.add_argument("--colour", choices=("lowfreq", "meanstd", "none"), default="lowfreq", help="colour matching of the generated crop (default lowfreq)")
        sp.add_argument("--detail", type=float, default=1.0, metavar="AMOUNT",
                        help="0..1: put the original's fine skin detail (stubble, pores) back on the render, following the edit, "
                             "never on the mouth (default 1; 0: the render's own, softer skin)")
        sp.add_argument("--resolution", type=int, default=256, help="crop size for the copy baseline when no neural renderer is used (default 256)")
        if common_flags is not None:
            common_flags(sp)
        else:
            sp.add_argument("--json", action="store_true", help="print one JSON object with results as the last stdout line")
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    sp = subparsers.add_parser("render", help="re-render a frame range: render crops, composite, post-process, write video or PNGs")
    common(sp)
    sp.add_argument("--frames", help="frame range A:B, Python slice rules (default: the whole shot; from the end: --frames=-50:)")
    sp.add_argument("-o", "--output", required=True, help="video (.mp4/.mov/.mkv), a folder, or a pattern like out/%%05d.png")
    sp.add_argument("--controls", help=".npy (frames, controls) edited expression curves (default: tracked)")
    sp.add_argument("--renderer", choices=("neural", "copy"), default="neural", help="neural (default) or the copy baseline")
    sp.add_argument("--train-frames", help="frames the copy baseline copies from (with --renderer copy)")
    sp.add_argument("--no-postprocess", action="store_true", help="skip the background-preserving post-process")
    sp.add_argument("--batch-size", type=int, default=8, help="frames rendered at once (default 8)")
    sp.set_defaults(func=cmd_render)

    sp = subparsers.add_parser("eval", help="self-reenactment metrics vs the copy baseline (PSNR/SSIM face crop, mouth PSNR/LPIPS)")
    common(sp)
    sp.add_argument("--train-frames", required=True, help="training frames A:B (copy baseline source)")
    sp.add_argument("--test-frames", required=True, help="held-out test frames C:D (from the end: --test-frames=-50:)")
    sp.add_argument("--baseline-only", action="store_true", help="evaluate only the copy baseline (no neural renderer)")
    sp.add_argument("--residual-weight", type=float, default=0.0, help="copy baseline: weight of residual coefficients in the nearest-frame match")
    sp.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    sp.add_argument("--per-frame", action="store_true", help="include every frame's numbers in the JSON")
    sp.set_defaults(func=cmd_eval)
