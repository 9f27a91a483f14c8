"""The render job: decode -> render crops -> composite -> post-process -> write, streaming.

``render_frames`` is the pipeline itself, a generator of :class:`RenderedFrame` (index, original,
output, crop box) that ``render_range`` writes out and ``dubstudio.export`` muxes with audio. It
works with any :class:`CropRenderer` (an object with ``resolution`` and
``render_crops(indices, controls=None) -> (n, R, R, 3) uint8``): the neural ``ActorRenderer``, the
copy baseline, or a test double. Frames are decoded in order and handled in batches of
``batch_size``; at most one batch of frames and crops is alive, so memory does not grow with the
range. Frames without a face are passed through untouched and never sent to the renderer.

Output: a video file (``.mp4``/``.mov``/``.mkv``, H.264 via ``VideoWriter``, at the shot's frame
rate; no audio yet) or a PNG sequence when ``out`` is a folder (``frame_%05d.png`` inside it) or
a pattern with ``%d``/``%05d``. PNGs are named by the *source* frame index and written atomically;
a cancelled video export leaves no half-file.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import DubStudioError, ProjectError
from dubstudio.rendering.background import BackgroundKeeper, BackgroundSettings
from dubstudio.rendering.composite import CompositeSettings, Compositor
from dubstudio.shot.masks import load_user_mask

__all__ = [
    "CropRenderer",
    "RenderSettings",
    "render_range",
    "render_frames",
    "RenderedFrame",
    "new_stats",
    "render_with_masks",
    "frame_controls",
    "output_kind",
    "VIDEO_SUFFIXES",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")


@runtime_checkable
class CropRenderer(Protocol):
    """Anything that renders face crops of a tracked shot."""

    resolution: int

    def render_crops(self, indices: Sequence[int], controls: np.ndarray | None = None) -> np.ndarray:
        """(len(indices), R, R, 3) uint8 crops; ``controls`` (len(indices), C) or None = tracked."""
        ...


@dataclass(frozen=True)
class RenderSettings:
    batch_size: int = 8
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    background: BackgroundSettings | None = field(default_factory=BackgroundSettings)  # None: off
    png_compression: int = 3


def frame_controls(controls: np.ndarray | None, frames: range, n_frames: int) -> np.ndarray | None:
    """Controls for ``frames`` as (len(frames), C): ``controls`` may cover the whole shot
    (n_frames, C) or exactly the range (len(frames), C)."""
    if controls is None:
        return None
    c = np.asarray(controls, np.float64)
    if c.ndim != 2:
        raise DubStudioError(f"controls must be a (frames, controls) array, got shape {c.shape}.")
    if len(c) == n_frames:
        return c[frames.start : frames.stop : frames.step]
    if len(c) == len(frames):
        return c
    raise DubStudioError(f"controls have {len(c)} rows; give one per shot frame ({n_frames}) or per rendered frame ({len(frames)}).")


def output_kind(out: Path) -> tuple[str, str]:
    """('video', path) or ('png', pattern) for an output argument."""
    s = str(out)
    if "%" in Path(s).name:
        if not Path(s).name.lower().endswith(".png"):
            raise DubStudioError(f"image sequence pattern {Path(s).name} must end in .png (e.g. frame_%05d.png).")
        try:
            Path(s).name % 0
        except (TypeError, ValueError) as e:
            raise DubStudioError(f"bad image sequence pattern {Path(s).name}: use one %05d-style field.") from e
        return "png", s
    if out.is_dir() or out.suffix == "":
        return "png", str(out / "frame_%05d.png")
    if out.suffix.lower() in VIDEO_SUFFIXES:
        return "video", s
    raise DubStudioError(
        f"cannot write {out.name}: give a video name ({', '.join(VIDEO_SUFFIXES)}), a folder, or a pattern like frames/%05d.png."
    )


def _write_png(pattern: str, index: int, rgb: np.ndarray, compression: int) -> None:
    path = Path(pattern % index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression]):
        raise DubStudioError(f"cannot write {path}; check free space and permissions.")
    os.replace(tmp, path)


def _check_crops(crops: np.ndarray, n: int, r: int) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.shape != (n, r, r, 3):
        raise DubStudioError(f"the renderer returned crops of shape {crops.shape}, expected {(n, r, r, 3)}.")
    if crops.dtype != np.uint8:
        crops = np.clip(np.round(crops), 0, 255).astype(np.uint8)
    return crops


@dataclass
class RenderedFrame:
    """One frame out of :func:`render_frames`.

    ``output`` is ``original`` itself (the same array) when the frame was passed through; ``box``
    is the crop box (centre x, centre y, side in pixels) the rendered face was composited into,
    or None for a pass-through frame: pixels outside the box are always the original ones."""

    index: int
    original: np.ndarray
    output: np.ndarray
    box: np.ndarray | None
    # (y0, x0, weight): the share of each pixel of the box's frame rectangle that is rendered (the
    # composite's alpha less what the background post-process gave back); None on pass-through
    weight: tuple[int, int, np.ndarray] | None = None

    @property
    def synthetic(self) -> bool:
        return self.box is not None


def new_stats() -> dict:
    return {"frames": 0, "frames_with_face": 0, "render_s": 0.0, "composite_s": 0.0, "post_s": 0.0}


def render_frames(
    project,
    tracking,
    renderer: CropRenderer,
    frames: range | None = None,
    controls: np.ndarray | None = None,
    progress: Progress | None = None,
    settings: RenderSettings | None = None,
    video_path: str | Path | None = None,
    stats: dict | None = None,
    mel: np.ndarray | None = None,
) -> Iterator[RenderedFrame]:
    """The streaming render pipeline: decode -> render crops (batches) -> composite -> keep
    background. Yields one :class:`RenderedFrame` per frame of ``frames`` (default: the whole
    shot), in order.

    Arguments are checked when called (errors raise here, before any frame); the work happens
    while iterating. ``progress.update(done, total)`` is called after every batch, so a cancel
    raises ``Cancelled`` out of the iteration; closing the generator early releases the decoder
    and the segmenter. ``stats`` (see :func:`new_stats`) is updated in place. ``mel``: per-frame
    audio windows for the whole shot (n_frames, ...) handed to renderers whose ``render_crops``
    takes ``mel`` (the neural renderer hears the dubbed audio instead of the shot's own).
    """
    settings = settings or RenderSettings()
    frames = range(tracking.n_frames) if frames is None else frames
    frames = range(frames.start, frames.stop, frames.step) if isinstance(frames, range) else range(*frames)
    if frames.step != 1:
        raise DubStudioError("render needs a contiguous frame range (step 1).")
    if not (0 <= frames.start < frames.stop <= tracking.n_frames):
        raise DubStudioError(f"frames {frames.start}:{frames.stop} are outside the shot (0:{tracking.n_frames}); pick a range inside it.")
    ctrl = frame_controls(controls, frames, tracking.n_frames)
    if mel is not None and len(mel) != tracking.n_frames:
        raise DubStudioError(f"audio windows cover {len(mel)} frames but the shot has {tracking.n_frames}.")
    video = Path(video_path) if video_path is not None else project.check_video()
    # the editor's painted mask (UV space) when the project has one; the automatic regions otherwise
    user_mask = load_user_mask(project) if project is not None else None
    # the window neighbours of the range's edge frames: from the caller's whole-shot curves when
    # given, else tracked
    whole = ctrl is not None and len(controls) == tracking.n_frames
    shot = np.asarray(controls, np.float64) if whole else shot_controls_for(tracking, ctrl, frames)
    return _render_frames(tracking, renderer, frames, ctrl, progress or Progress(), settings, video,
                          stats if stats is not None else new_stats(), mel, user_mask, shot)


def shot_controls_for(tracking, ctrl: np.ndarray | None, frames: range) -> np.ndarray | None:
    """The whole shot's controls with ``ctrl`` (one row per frame of ``frames``) in place: what a
    windowed renderer reads for the neighbours of a batch's edge frames (tracked outside ``frames``)."""
    if ctrl is None:
        return None
    shot = np.array(tracking.controls, np.float64, copy=True)
    shot[frames.start : frames.stop] = ctrl
    return shot


def _render_frames(tracking, renderer, frames: range, ctrl, progress: Progress, settings: RenderSettings, video: Path, stats: dict, mel,
                   user_mask=None, shot=None) -> Iterator[RenderedFrame]:
    from dubstudio.io.video import VideoReader

    r = int(renderer.resolution)
    comp = Compositor(tracking, r, settings.composite, user_mask=user_mask)
    keeper = BackgroundKeeper(settings.background) if settings.background is not None else None
    done = 0
    try:
        with VideoReader(video) as reader:
            if reader.n_frames != tracking.n_frames:
                raise ProjectError(f"the video has {reader.n_frames} frames but the tracking {tracking.n_frames}; track the shot again.")
            batch: list[tuple[int, np.ndarray]] = []
            for i, rgb in reader.iter_frames(frames.start, frames.stop):
                batch.append((i, rgb))
                if len(batch) == settings.batch_size or i == frames.stop - 1:
                    yield from _process_batch(batch, tracking, renderer, comp, keeper, ctrl, frames.start, r, stats, mel, shot)
                    done += len(batch)
                    batch = []
                    progress.update(done, len(frames))
    finally:
        if keeper is not None:
            keeper.close()


def render_range(
    project,
    tracking,
    renderer: CropRenderer,
    frames: range,
    out: str | Path,
    controls: np.ndarray | None = None,
    progress: Progress | None = None,
    settings: RenderSettings | None = None,
    video_path: str | Path | None = None,
) -> dict:
    """Render ``frames`` (step 1) of the shot to ``out``; returns a summary dict.

    ``controls``: edited expressions, (n_frames, C) for the whole shot or (len(frames), C), or
    None for the tracked ones. ``video_path`` overrides the project's source video (tests).
    """
    from dubstudio.io.video_writer import VideoWriter

    progress = progress or Progress()
    settings = settings or RenderSettings()
    stats = new_stats()
    frames = range(frames.start, frames.stop, frames.step) if isinstance(frames, range) else range(*frames)
    kind, target = output_kind(Path(out))
    gen = render_frames(project, tracking, renderer, frames, controls, progress, settings, video_path, stats)
    r = int(renderer.resolution)
    t0 = time.perf_counter()
    progress.stage("render")
    progress.update(0, len(frames))
    writer = None
    try:
        with contextlib.closing(gen):
            for f in gen:
                if kind == "video":
                    if writer is None:
                        from dubstudio.io.video import color_tags, sample_aspect

                        src = video_path or project.video_path
                        writer = VideoWriter(target, tracking.fps, f.output.shape[1], f.output.shape[0],
                                             color=color_tags(src), sar=sample_aspect(src))
                    writer.write(f.output)
                else:
                    _write_png(target, f.index, f.output, settings.png_compression)
        if writer is not None:
            writer.close(keep=True)
            writer = None
    finally:
        if writer is not None:  # an error or cancel: no half-file under the final name
            writer.close(keep=False)
    wall = time.perf_counter() - t0
    return {
        "output": target,
        "kind": kind,
        "first_frame": frames.start,
        "fps": str(tracking.fps),
        "resolution": r,
        "wall_s": round(wall, 3),
        "frames_per_s": round(stats["frames"] / wall, 3) if wall > 0 else None,
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()},
    }


def _accepts(renderer, name: str) -> bool:
    try:
        return name in inspect.signature(renderer.render_crops).parameters
    except (TypeError, ValueError):
        return False


def _accepts_return_masks(renderer) -> bool:
    return _accepts(renderer, "return_masks")


def render_with_masks(renderer, indices: list[int], controls: np.ndarray | None, mel: np.ndarray | None = None,
                      shot_controls: np.ndarray | None = None, footage: bool = False):
    """(crops, generated masks or None): the masks when the renderer can report them
    (``render_crops(..., return_masks=True)``), so the composite can hide their hard edge.
    ``mel`` (len(indices), ...) audio windows go to renderers that take them, else are ignored;
    so do ``shot_controls`` (the whole shot's, for renderers that look at neighbouring frames).
    With ``footage``: (crops, masks, footage share or None), the share of each pixel a renderer
    took from the shot's own frames (``render_crops(..., return_footage=True)``; the composite
    leaves its colours)."""
    r = int(renderer.resolution)
    kw = {"mel": mel} if mel is not None and _accepts(renderer, "mel") else {}
    if shot_controls is not None and _accepts(renderer, "shot_controls"):
        kw["shot_controls"] = shot_controls
    if footage and _accepts(renderer, "return_footage"):
        crops, masks, share = renderer.render_crops(indices, controls, return_masks=True, return_footage=True, **kw)
        masks = np.asarray(masks, bool)
        if masks.shape != (len(indices), r, r):
            masks = None
        share = np.asarray(share, np.float32)
        return _check_crops(crops, len(indices), r), masks, (share if share.shape == (len(indices), r, r) else None)
    if footage:
        return (*render_with_masks(renderer, indices, controls, mel, shot_controls), None)
    if _accepts_return_masks(renderer):
        crops, masks = renderer.render_crops(indices, controls, return_masks=True, **kw)
        masks = np.asarray(masks, bool)
        if masks.shape != (len(indices), r, r):
            masks = None
    else:
        crops, masks = renderer.render_crops(indices, controls, **kw), None
    return _check_crops(crops, len(indices), r), masks


def _process_batch(batch, tracking, renderer, comp: Compositor, keeper, ctrl, first: int, r: int, stats: dict, mel=None, shot=None):
    """Yield a RenderedFrame for each frame of one decoded batch, in order."""
    face = [i for i, _ in batch if tracking.has_face[i]]
    crops: dict[int, np.ndarray] = {}
    masks = {}
    if face:
        c = None if ctrl is None else ctrl[[i - first for i in face]]
        t = time.perf_counter()
        rendered, generated, footage = render_with_masks(renderer, face, c, None if mel is None else mel[face], shot, footage=True)
        stats["render_s"] += time.perf_counter() - t
        t = time.perf_counter()
        for i, m, crop in zip(face, comp.masks(face, c, generated, footage), rendered):
            masks[i], crops[i] = m, crop
        stats["composite_s"] += time.perf_counter() - t
    for i, frame in batch:
        stats["frames"] += 1
        if i not in crops:
            yield RenderedFrame(i, frame, frame, None)
            continue
        t = time.perf_counter()
        out = comp.composite(frame, i, crops[i], masks[i])
        weight = comp.weight(frame.shape, i, masks[i])
        stats["composite_s"] += time.perf_counter() - t
        if keeper is not None:
            t = time.perf_counter()
            out, kept = keeper.apply_weighted(frame, out, tracking.crop[i])
            weight = _less_kept(weight, kept)
            stats["post_s"] += time.perf_counter() - t
        stats["frames_with_face"] += 1
        yield RenderedFrame(i, frame, out, np.asarray(tracking.crop[i], np.float64), weight)


def _less_kept(weight, kept):
    """The rendered share ``weight`` (y0, x0, w) times (1 - the post-process's kept share)."""
    if weight is None or kept is None:
        return weight
    y0, x0, w = weight
    rows, cols, k = kept
    h, wd = w.shape
    ya, yb = max(y0, rows.start), min(y0 + h, rows.stop)
    xa, xb = max(x0, cols.start), min(x0 + wd, cols.stop)
    w = w.copy()
    if ya < yb and xa < xb:
        w[ya - y0 : yb - y0, xa - x0 : xb - x0] *= 1.0 - k[ya - rows.start : yb - rows.start, xa - cols.start : xb - cols.start]
    return y0, x0, w
