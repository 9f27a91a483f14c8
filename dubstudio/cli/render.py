"""``render`` (a frame range re-rendered) and ``eval`` (self-reenactment against the copy baselines)."""

from __future__ import annotations

from pathlib import Path

from dubstudio.app.device import DEVICE_HELP
from dubstudio.app.renderer import COLOURS, MODES, REGIONS, CompositeChoice, RendererChoice
from dubstudio.cli.common import add_common, emit, path_or_none, with_bar

DETAIL_HELP = ("0..1: put the original's fine skin detail (stubble, pores) back on the render, following the edit, "
               "never on the mouth (default 1; 0: the render's own, softer skin)")


def renderer_flags(sp, copy_resolution_help: str) -> None:
    """The renderer and compositing options render, eval and export share."""
    sp.add_argument("--renderer-checkpoint", help="actor checkpoint file to use (default: the project's latest adaptation)")
    sp.add_argument("--mode", choices=MODES, help="use the project's adaptation of this mode (default: the latest)")
    sp.add_argument("--device", default="auto", help=DEVICE_HELP)
    sp.add_argument("--region", choices=REGIONS, default="lower", help="region composited back: lower face + mouth (default) or mouth only")
    sp.add_argument("--colour", choices=COLOURS, default="lowfreq", help="colour matching of the generated crop (default lowfreq)")
    sp.add_argument("--detail", type=float, default=1.0, metavar="AMOUNT", help=DETAIL_HELP)
    sp.add_argument("--resolution", type=int, default=256, help=copy_resolution_help)
    sp.add_argument("--mouth-detail", choices=("on", "off"), default="on",
                    help="neural: teeth, tongue and lip detail from the actor's own frames at the footage's pixel density "
                         "(default on; off: the renderer's own, softer mouth)")


def renderer_choice(args) -> RendererChoice:
    return RendererChoice(kind=getattr(args, "renderer", "neural"), mode=args.mode, checkpoint=path_or_none(args.renderer_checkpoint),
                          train_frames=getattr(args, "train_frames", None), resolution=args.resolution, device=args.device,
                          mouth_detail=args.mouth_detail == "on")


def composite_choice(args) -> CompositeChoice:
    return CompositeChoice(region=args.region, colour=args.colour, detail=args.detail,
                           postprocess=not getattr(args, "no_postprocess", False), batch_size=getattr(args, "batch_size", 8))


def register(sub) -> None:
    sp = sub.add_parser("render", help="re-render a frame range: render crops, composite, post-process, write video or PNGs")
    sp.add_argument("--project", required=True, help="project folder (tracked)")
    renderer_flags(sp, "crop size of the copy baseline (default 256)")
    sp.add_argument("--frames", help="frame range A:B, Python slice rules (default: the whole shot; from the end: --frames=-50:)")
    sp.add_argument("-o", "--output", required=True, help="video (.mp4/.mov/.mkv), a folder, or a pattern like out/%%05d.png")
    sp.add_argument("--controls", help=".npy (frames, controls) edited expression curves (default: tracked)")
    sp.add_argument("--renderer", choices=("neural", "copy"), default="neural", help="neural (default) or the copy baseline")
    sp.add_argument("--train-frames", help="frames the copy baseline copies from (with --renderer copy)")
    sp.add_argument("--no-postprocess", action="store_true", help="skip the background-preserving post-process")
    sp.add_argument("--batch-size", type=int, default=8, help="frames rendered at once (default 8)")
    add_common(sp)
    sp.set_defaults(func=cmd_render)

    sp = sub.add_parser("eval", help="self-reenactment metrics vs the copy baseline (PSNR/SSIM face crop, mouth PSNR/LPIPS)")
    sp.add_argument("--project", required=True, help="project folder (tracked)")
    renderer_flags(sp, "crop size for the copy baseline when no neural renderer is used (default 256)")
    sp.add_argument("--train-frames", required=True, help="training frames A:B (copy baseline source)")
    sp.add_argument("--test-frames", required=True, help="held-out test frames C:D (from the end: --test-frames=-50:)")
    sp.add_argument("--baseline-only", action="store_true", help="evaluate only the copy baseline (no neural renderer)")
    sp.add_argument("--residual-weight", type=float, default=0.0, help="copy baseline: weight of residual coefficients in the nearest-frame match")
    sp.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    sp.add_argument("--per-frame", action="store_true", help="include every frame's numbers in the JSON")
    add_common(sp)
    sp.set_defaults(func=cmd_eval)


def cmd_render(args) -> int:
    from dubstudio.app.render import RenderRequest, render_job

    req = RenderRequest(Path(args.project), Path(args.output), frames=args.frames, controls=path_or_none(args.controls),
                        renderer=renderer_choice(args), composite=composite_choice(args))
    emit(args, with_bar(args, render_job, req))
    return 0


def cmd_eval(args) -> int:
    from dataclasses import replace

    from dubstudio.app.render import EvalRequest, eval_job

    choice = None if args.baseline_only else replace(renderer_choice(args), train_frames=None)
    req = EvalRequest(Path(args.project), args.train_frames, args.test_frames, renderer=choice, composite=composite_choice(args),
                      resolution=args.resolution, residual_weight=args.residual_weight, lpips=not args.no_lpips,
                      per_frame=args.per_frame, device=args.device)
    emit(args, with_bar(args, eval_job, req))
    return 0
