"""Render a frame range of a shot (crops rendered, composited, post-processed; a video or PNGs),
and evaluate a renderer by self-reenactment against the copy baselines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dubstudio.app.device import resolve_device
from dubstudio.app.renderer import CompositeChoice, RendererChoice, close_renderer, open_renderer
from dubstudio.core.errors import DubStudioError
from dubstudio.core.frames import parse_frames
from dubstudio.core.jobs import Progress
from dubstudio.shot import Shot


@dataclass(frozen=True)
class RenderRequest:
    project: Path
    output: Path  # a video (.mp4/.mov/.mkv), a folder, or a pattern like out/%05d.png
    frames: str | None = None  # A:B (default: the whole shot)
    controls: Path | None = None  # .npy (frames, controls) edited curves (default: tracked)
    renderer: RendererChoice = field(default_factory=RendererChoice)
    composite: CompositeChoice = field(default_factory=CompositeChoice)


class RenderResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        return (f"rendered {self['frames']} frames ({self['frames_with_face']} with a face) -> {self['output']}  "
                f"[{self['frames_per_s']} frames/s]")


def render_job(req: RenderRequest, progress: Progress | None = None) -> RenderResult:
    from dubstudio.rendering.render_job import render_range

    settings = req.composite.render_settings()
    shot = Shot.open(req.project)
    tracking = shot.tracking
    frames = parse_frames(req.frames, tracking.n_frames)
    controls = None
    if req.controls:
        try:
            controls = np.load(req.controls, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DubStudioError(f"cannot read controls {req.controls}: {e}; give a .npy (frames, controls) array.") from e
    shot.video()
    renderer, _ = open_renderer(shot, req.renderer)
    try:
        return RenderResult(render_range(shot.project, tracking, renderer, frames, Path(req.output), controls,
                                         progress or Progress(), settings))
    finally:
        close_renderer(renderer)


@dataclass(frozen=True)
class EvalRequest:
    project: Path
    train_frames: str  # the copy baselines' source frames
    test_frames: str  # held-out frames
    renderer: RendererChoice | None = field(default_factory=RendererChoice)  # None: only the copy baselines
    composite: CompositeChoice = field(default_factory=CompositeChoice)
    resolution: int = 256  # crop size for the baselines when no neural renderer is used
    residual_weight: float = 0.0
    lpips: bool = True
    per_frame: bool = False
    device: str = "auto"  # where LPIPS (and the neural renderer) run


class EvalResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        r = self
        lines = [
            f"self-reenactment: train {r['train_frames'][0]}:{r['train_frames'][1]}, "
            f"test {r['test_frames'][0]}:{r['test_frames'][1]} ({r['n_test_with_face']} frames with a face), "
            f"crop {r['resolution']} px; median (mean)",
            f"  {'method':22s} {'face PSNR':>16s} {'face SSIM':>16s} {'mouth PSNR':>16s} {'mouth LPIPS':>16s}",
        ]
        for name, m in r["methods"].items():
            cells = [f"{_fmt(m[key]['median'], d)} ({_fmt(m[key]['mean'], d)})"
                     for key, d in (("face_psnr", 2), ("face_ssim", 4), ("mouth_psnr", 2), ("mouth_lpips", 4))]
            lines.append(f"  {name:22s} " + " ".join(f"{c:>16s}" for c in cells))
        if not r["lpips"]["available"]:
            lines.append(f"  LPIPS unavailable: {r['lpips']['reason']}")
        if "renderer_beats_copy" in r:
            lines.append(f"  renderer beats copy baseline: {r['renderer_beats_copy']}")
        return "\n".join(lines)


def _fmt(x, digits: int) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}f}"


def eval_job(req: EvalRequest, progress: Progress | None = None) -> EvalResult:
    from dubstudio.eval.selfreenact import EvalSettings, evaluate

    shot = Shot.open(req.project)
    tracking = shot.tracking
    train = parse_frames(req.train_frames, tracking.n_frames)
    test = parse_frames(req.test_frames, tracking.n_frames)
    renderer = None
    if req.renderer is not None:
        if req.renderer.kind != "neural":
            raise DubStudioError("eval compares the neural renderer with the copy baselines; leave out --renderer copy.")
        renderer, _ = open_renderer(shot, req.renderer, reference_frames=train)  # held-out frames lend nothing
    device = resolve_device(req.device)
    settings = EvalSettings(resolution=req.resolution, residual_weight=req.residual_weight, lpips=req.lpips, device=device,
                            composite=req.composite.render_settings().composite, per_frame=req.per_frame)
    try:
        result = evaluate(tracking, shot.video(), train, test, renderer, settings, progress or Progress())
    finally:
        if renderer is not None:
            close_renderer(renderer)
    result["project"] = str(shot.root)
    return EvalResult(result)
