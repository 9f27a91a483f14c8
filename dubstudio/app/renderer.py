"""Which renderer draws the face, and how its crops go back into the frame: chosen once here
for render, eval, export and the editor's export dialog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dubstudio.app.detail import chosen_settings
from dubstudio.app.device import resolve_device
from dubstudio.core.errors import DubStudioError, ProjectError
from dubstudio.core.frames import parse_frames
from dubstudio.rendering.background import BackgroundSettings
from dubstudio.rendering.composite import CompositeSettings
from dubstudio.rendering.render_job import RenderSettings
from dubstudio.shot import Shot
from dubstudio.shot.adaptation import actor_file_of
from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH

RENDERERS = ("neural", "copy")
MODES = ("texture", "full", "mixed")
REGIONS = ("lower", "mouth")
COLOURS = ("lowfreq", "meanstd", "none")


@dataclass(frozen=True)
class RendererChoice:
    """The neural renderer (an adaptation of the shot, or a given actor file) or the copy
    baseline (real mouths pasted from ``train_frames``)."""

    kind: str = "neural"  # neural | copy
    mode: str | None = None  # neural: the adaptation of this mode (None: the latest)
    checkpoint: Path | None = None  # neural: this actor file instead of the project's adaptation
    train_frames: str | None = None  # copy: the frames it copies mouths from, A:B
    resolution: int = 256  # copy: crop size
    device: str = "auto"  # neural: torch device
    # neural: teeth, tongue and lip detail from the actor's own frames, at the footage's pixel
    # density (``rendering.mouth_detail``)
    mouth_detail: bool = True

    def check(self) -> None:
        """A clear error for a choice that cannot work, before anything is opened."""
        if self.kind not in RENDERERS:
            raise DubStudioError(f"renderer must be one of {', '.join(RENDERERS)}, got {self.kind!r}.")
        if self.kind == "copy" and not self.train_frames:
            raise DubStudioError("--renderer copy needs --train-frames A:B (the frames it copies mouths from), e.g. --train-frames 0:100.")
        if self.kind == "neural" and self.train_frames:
            raise DubStudioError("--train-frames is for the copy baseline; add --renderer copy, or leave it out.")
        if self.mode is not None and self.mode not in MODES:
            raise DubStudioError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}.")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise DubStudioError(f"renderer checkpoint not found: {self.checkpoint}; check the path or run `dubstudio adapt` first.")


def open_renderer(shot: Shot, choice: RendererChoice, reference_frames=None):
    """(renderer, name) for ``shot``: a crop renderer (``render_crops``) and how exports and
    results name it ("neural-full", "copy-baseline"). Close it with ``close_renderer``.

    ``reference_frames``: where the mouth detail may come from (default: every frame of the shot
    with a face, the actor's own footage; a self-reenactment passes its training frames)."""
    choice.check()
    if choice.kind == "copy":
        from dubstudio.eval.copy_baseline import CopyBaseline

        train = parse_frames(choice.train_frames, shot.tracking.n_frames)
        return CopyBaseline.open(shot.tracking, shot.video(), train, resolution=choice.resolution, warp=True), "copy-baseline"
    from dubstudio.rendering.renderer import ActorRenderer

    stage = "adapt" if not choice.mode else f"adapt_{choice.mode}"
    if choice.checkpoint is None and shot.project.stage_record(stage) is None:
        what = "an adaptation" if not choice.mode else f"a '{choice.mode}' adaptation"
        raise ProjectError(
            f"{shot.root} has no {what} of the neural renderer yet; run `dubstudio adapt --project {shot.root}` "
            f"first, or export with the copy baseline: --renderer copy --train-frames 0:100."
        )
    r = ActorRenderer.load(shot.project, resolve_device(choice.device), mode=choice.mode, actor=choice.checkpoint)
    mode = r.info.get("mode") if isinstance(r.info, dict) else None
    name = f"neural-{mode}" if mode else "neural"
    if not choice.mouth_detail:
        return r, name
    from dubstudio.io.video import VideoReader
    from dubstudio.rendering.mouth_detail import DetailedRenderer

    frames = range(shot.tracking.n_frames) if reference_frames is None else reference_frames
    # the settings checked on this actor's held-out frames (app.detail), else the default
    actor = choice.checkpoint or actor_file_of(shot.project, choice.mode)
    settings = chosen_settings(shot.project, Path(actor))
    try:
        with VideoReader(shot.video()) as reader:
            return DetailedRenderer.over(r, reader, list(frames), settings), name + "+detail"
    except BaseException:
        r.close()
        raise


def close_renderer(renderer) -> None:
    close = getattr(renderer, "close", None)
    if callable(close):
        close()


@dataclass(frozen=True)
class CompositeChoice:
    """How rendered crops go back into the frame."""

    region: str = "lower"  # lower face + mouth, or the mouth only
    colour: str = "lowfreq"  # colour matching of the generated crop
    detail: float = 1.0  # 0..1: the original's fine skin detail put back on the render (never on the mouth)
    postprocess: bool = True  # keep the original's background where both frames show background
    batch_size: int = 8  # frames rendered at once

    def render_settings(self) -> RenderSettings:
        if self.region not in REGIONS:
            raise DubStudioError(f"region must be one of {', '.join(REGIONS)}, got {self.region!r}.")
        if self.colour not in COLOURS:
            raise DubStudioError(f"colour matching must be one of {', '.join(COLOURS)}, got {self.colour!r}.")
        if not 0.0 <= float(self.detail) <= 1.0:
            raise DubStudioError(f"--detail must be between 0 (off) and 1, got {float(self.detail):g}.")
        if self.batch_size < 1:
            raise DubStudioError("--batch-size must be at least 1.")
        regions = (MASK_MOUTH,) if self.region == "mouth" else (MASK_LOWER_FACE, MASK_MOUTH)
        return RenderSettings(
            batch_size=self.batch_size,
            composite=CompositeSettings(regions=regions, colour=self.colour, detail=float(self.detail)),
            background=BackgroundSettings() if self.postprocess else None,
        )
