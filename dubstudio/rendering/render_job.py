"""The render job: decode -> render crops -> composite -> post-process -> write, streaming.

``render_range`` works with any :class:`CropRenderer` (an object with ``resolution`` and
``render_crops(indices, controls=None) -> (n, R, R, 3) uint8``): the neural ``ActorRenderer``, the
copy baseline, or a test double. Frames are decoded in order and handled in batches of
``batch_size``; at most one batch of frames and crops is alive, so memory does not grow with the
range. Frames without a face are written untouched and never sent to the renderer.

Output: a video file (``.mp4``/``.mov``/``.mkv``, H.264 via ``VideoWriter``, at the shot's frame
rate; no audio yet) or a PNG sequence when ``out`` is a folder (``frame_%05d.png`` inside it) or
a pattern with ``%d``/``%05d``. PNGs are named by the *source* frame index and written atomically;
a cancelled video export leaves no half-file.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.errors import DubStudioError, ProjectError
from dubstudio.rendering.background import BackgroundKeeper, BackgroundSettings
from dubstudio.rendering.composite import CompositeSettings, Compositor

__all__ = [
    "CropRenderer",
    "RenderSettings",
    "render_range",
    "render_with_masks",
    "load_tracking",
    "parse_frames",
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


def load_tracking(project):
    """The project's Tracking; a clear ProjectError when the shot was not tracked yet."""
    from dubstudio.tracking.result import Tracking

    rec = project.stage_record("track")
    if not rec or "tracking" not in rec.get("outputs", {}):
        raise ProjectError(f"{project.root} has no tracking yet; run `dubstudio track VIDEO --project {project.root}` first.")
    return Tracking.load(project.path(rec["outputs"]["tracking"]))


def parse_frames(spec: str, n_frames: int) -> range:
    """'A:B' (Python slice rules: 'A:', ':B', negative counts from the end) -> range, checked."""
    parts = str(spec).split(":")
    if len(parts) != 2:
        raise DubStudioError(f"frame range {spec!r} is not A:B; e.g. --frames 0:100 or --frames 150: .")
    try:
        a = int(parts[0]) if parts[0].strip() else None
        b = int(parts[1]) if parts[1].strip() else None
    except ValueError as e:
        raise DubStudioError(f"frame range {spec!r} is not A:B with whole numbers; e.g. 0:100.") from e
    r = range(n_frames)[slice(a, b)]
    if len(r) == 0:
        raise DubStudioError(f"frame range {spec!r} is empty for a shot of {n_frames} frames; pick frames inside 0:{n_frames}.")
    return r


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
    from dubstudio.io.video import VideoReader
    from dubstudio.io.video_writer import VideoWriter

    progress = progress or Progress()
    settings = settings or RenderSettings()
    frames = range(frames.start, frames.stop, frames.step) if isinstance(frames, range) else range(*frames)
    if frames.step != 1:
        raise DubStudioError("render needs a contiguous frame range (step 1).")
    if not (0 <= frames.start < frames.stop <= tracking.n_frames):
        raise DubStudioError(f"frames {frames.start}:{frames.stop} are outside the shot (0:{tracking.n_frames}); pick a range inside it.")
    ctrl = frame_controls(controls, frames, tracking.n_frames)
    kind, target = output_kind(Path(out))
    video = Path(video_path) if video_path is not None else project.check_video()
    r = int(renderer.resolution)
    comp = Compositor(tracking, r, settings.composite)
    keeper = BackgroundKeeper(settings.background) if settings.background is not None else None
    t0 = time.perf_counter()
    stats = {"frames": 0, "frames_with_face": 0, "render_s": 0.0, "composite_s": 0.0, "post_s": 0.0}
    progress.stage("render")
    progress.update(0, len(frames))
    writer = None
    try:
        with VideoReader(video) as reader:
            if reader.n_frames != tracking.n_frames:
                raise ProjectError(f"the video has {reader.n_frames} frames but the tracking {tracking.n_frames}; track the shot again.")
            if kind == "video":
                writer = VideoWriter(target, tracking.fps, reader.width, reader.height)
            batch: list[tuple[int, np.ndarray]] = []
            for i, rgb in reader.iter_frames(frames.start, frames.stop):
                batch.append((i, rgb))
                if len(batch) == settings.batch_size or i == frames.stop - 1:
                    for j, frame in _process_batch(batch, tracking, renderer, comp, keeper, ctrl, frames.start, r, stats):
                        if writer is not None:
                            writer.write(frame)
                        else:
                            _write_png(target, j, frame, settings.png_compression)
                        stats["frames"] += 1
                    batch = []
                    progress.update(stats["frames"], len(frames))
            if writer is not None:
                writer.close(keep=True)
                writer = None
    finally:
        if writer is not None:  # an error or cancel: no half-file under the final name
            writer.close(keep=False)
        if keeper is not None:
            keeper.close()
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


def _accepts_return_masks(renderer) -> bool:
    try:
        return "return_masks" in inspect.signature(renderer.render_crops).parameters
    except (TypeError, ValueError):
        return False


def render_with_masks(renderer, indices: list[int], controls: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(crops, generated masks or None): the masks when the renderer can report them
    (``render_crops(..., return_masks=True)``), so the composite can hide their hard edge."""
    r = int(renderer.resolution)
    if _accepts_return_masks(renderer):
        crops, masks = renderer.render_crops(indices, controls, return_masks=True)
        masks = np.asarray(masks, bool)
        if masks.shape != (len(indices), r, r):
            masks = None
    else:
        crops, masks = renderer.render_crops(indices, controls), None
    return _check_crops(crops, len(indices), r), masks


def _process_batch(batch, tracking, renderer, comp: Compositor, keeper, ctrl, first: int, r: int, stats: dict):
    """Yield (index, output frame) for one decoded batch, in order."""
    face = [i for i, _ in batch if tracking.has_face[i]]
    crops: dict[int, np.ndarray] = {}
    masks = {}
    if face:
        c = None if ctrl is None else ctrl[[i - first for i in face]]
        t = time.perf_counter()
        rendered, generated = render_with_masks(renderer, face, c)
        stats["render_s"] += time.perf_counter() - t
        t = time.perf_counter()
        for i, m, crop in zip(face, comp.masks(face, c, generated), rendered):
            masks[i], crops[i] = m, crop
        stats["composite_s"] += time.perf_counter() - t
    for i, frame in batch:
        if i not in crops:
            yield i, frame
            continue
        t = time.perf_counter()
        out = comp.composite(frame, i, crops[i], masks[i])
        stats["composite_s"] += time.perf_counter() - t
        if keeper is not None:
            t = time.perf_counter()
            out = keeper.apply(frame, out, tracking.crop[i])
            stats["post_s"] += time.perf_counter() - t
        stats["frames_with_face"] += 1
        yield i, out
