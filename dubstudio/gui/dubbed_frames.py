"""Dubbed frames for the compare modes: neural renders in a worker thread, or a grey-face preview.

With an adaptation in the project, ``DubbedFrames`` renders the edited expression of a frame
with the actor's neural renderer and composites it into the full frame, in its own QThread
(the renderer, a video reader and the compositor live there), newest request first, a couple
of frames ahead when idle; results go into a small byte-bounded LRU and ``ready(i)`` is
emitted. The GUI thread never renders, decodes or waits. Without an adaptation
(``kind == "grey"``) the dubbed side is the grey-face preview of the edited mesh composited
on the frame (``grey_dubbed``, a few milliseconds, done where it is shown).

A neural render is kept as a ``DubbedPatch``: what the render changed (the difference from the
original frame inside the composite's box), scaled to the size the viewer shows frames at. The
compare view lays it over the very image the viewer shows, so outside the face the two sides are
the same pixels whatever path (decoder or display proxy) served the original, and the cache holds
a face box per frame instead of a whole HD frame.

Every cached image carries the generation of its frame; ``invalidate(start, stop)`` (curves or
tracking changed there) bumps the generations of the frames whose render can change (a frame
is rendered as the centre of a 3-frame window, so one frame either side too), so a render that
was in flight when the edit happened is dropped when it arrives instead of being shown.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage, QPainter

from dubstudio.core.errors import DubStudioError
from dubstudio.gui.frames import FrameCache
from dubstudio.gui.overlay_items import FaceDrawing

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 2**20
WINDOW_REACH = 1  # the renderer's window is 3 frames: a frame's render depends on i-1..i+1
PREFETCH = 2  # frames rendered ahead of the wanted one while idle


def grey_dubbed(frame: QImage, session, i: int, size: tuple[int, int] | None = None) -> QImage:
    """The frame with the grey-face preview of the edited mesh composited on it (the dubbed
    side when there is no neural renderer yet). Frames without a face come back unchanged.
    ``size``: the frame's size in pixels when ``frame`` is a smaller display image."""
    s = session
    if s.tracking is None or s.geometry is None or not 0 <= i < s.tracking.n_frames or not s.tracking.has_face[i]:
        return frame
    d = FaceDrawing.build(s.geometry, s.tracking, i, s.controls_at(i), {"grey"})
    if d.grey is None or d.grey_origin is None:
        return frame
    rgb32 = QImage.Format.Format_RGB32
    img = frame.copy() if frame.format() == rgb32 else frame.convertToFormat(rgb32)  # never paint on the cached frame
    p = QPainter(img)
    if size is not None and (size[0], size[1]) != (img.width(), img.height()):
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.scale(img.width() / size[0], img.height() / size[1])
    p.drawImage(d.grey_origin, d.grey)
    p.end()
    return img


def has_adaptation(project_root: Path) -> tuple[bool, str]:
    """Whether the project (read fresh from disk) has an adaptation whose actor file exists."""
    from dubstudio.project.store import Project

    try:
        rec = Project.open(project_root).stage_record("adapt")
    except DubStudioError:
        return False, ""
    if not rec or "actor" not in rec.get("outputs", {}):
        return False, ""
    actor = Path(project_root) / rec["outputs"]["actor"]
    if not actor.is_file():
        return False, ""
    st = actor.stat()
    return True, f"{actor}:{st.st_size}:{st.st_mtime_ns}"


def render_dubbed_frame(renderer, compositor, frame_rgb: np.ndarray, tracking, i: int, window: dict[int, np.ndarray]) -> np.ndarray:
    """Frame ``i`` with the renderer's output for the edited controls ``window[i]`` composited
    (Qt-free). ``window`` holds the edited controls of i and its window neighbours: the
    neighbours are rendered with them as input, and the compositing mask is the union of the
    edited and the tracked mesh as in the final render."""
    from dubstudio.rendering.render_job import render_with_masks

    if not tracking.has_face[i]:
        return frame_rgb
    shot = np.array(tracking.controls, dtype=np.float64, copy=True)
    for f, c in window.items():
        shot[f] = c
    renderer.tracking = tracking  # the snapshot carries the editor's latest corrections
    edited = np.asarray(window[i], np.float64)[None]
    crops, generated, footage = render_with_masks(renderer, [i], edited, shot_controls=shot, footage=True)
    compositor.tracking = tracking
    masks = compositor.masks([i], edited, generated=generated, footage=footage)
    return compositor.composite(frame_rgb, i, crops[0], masks[0])


def load_renderer(project_root: Path, device: str):
    """(renderer, compositor, description) of the project's latest adaptation (worker thread)."""
    from dubstudio.app.renderer import RendererChoice, open_renderer
    from dubstudio.rendering import composite
    from dubstudio.shot import Shot
    from dubstudio.shot.masks import load_user_mask

    shot = Shot.open(project_root)
    project = shot.project
    renderer, _ = open_renderer(shot, RendererChoice(device=device))  # what an export draws
    kw = {}
    try:  # the user's mask edits
        kw["user_mask"] = load_user_mask(project)
    except DubStudioError as e:
        log.warning("mask edits not used in the compare view: %s", e)
    comp = composite.Compositor(renderer.tracking, renderer.resolution, model=renderer.tracking.model(), **kw)
    info = renderer.info
    desc = (f"neural renderer ({info.get('mode', '?')}, {info.get('steps', '?')} steps, {renderer.resolution} px"
            f"{', mouth detail from the footage' if 'mouth_detail' in info else ''})")
    return renderer, comp, desc


_NO_MASK = object()  # a job that leaves the compositor's user mask as loaded
PATCH_MARGIN = 4  # frame pixels around the changed box (the scaler's reach)


@dataclass
class DubbedPatch:
    """A render as the change it makes to the shown frame: ``diff`` (h, w, 3 int16, RGB) to add
    at (x, y) of an image of ``size`` (the viewer's decode size)."""

    x: int
    y: int
    diff: np.ndarray
    size: tuple[int, int]

    def sizeInBytes(self) -> int:  # noqa: N802  (FrameCache counts QImage-like sizes)
        return int(self.diff.nbytes) + 64

    def over(self, base: QImage) -> QImage | None:
        """``base`` (the viewer's image of the same frame) with the render applied; None when
        ``base`` is not at this patch's size (a zoom in between)."""
        if (base.width(), base.height()) != tuple(self.size):
            return None
        rgb32 = QImage.Format.Format_RGB32
        img = base.copy() if base.format() == rgb32 else base.convertToFormat(rgb32)  # the shown frame stays untouched
        h, w = self.diff.shape[:2]
        if h == 0 or w == 0:
            return img
        a = np.frombuffer(img.bits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine() // 4, 4)
        region = a[self.y : self.y + h, self.x : self.x + w, 2::-1]  # BGRA in memory -> RGB view
        region[...] = np.clip(region.astype(np.int16) + self.diff, 0, 255).astype(np.uint8)
        return img


def dubbed_patch(original: np.ndarray, dubbed: np.ndarray, size: tuple[int, int] | None) -> DubbedPatch:
    """The change ``dubbed`` makes to ``original`` (both HxWx3 uint8, full frame), scaled to
    ``size`` (None: full size). Area scaling is linear, so the scaled change laid over the scaled
    original is the scaled render, and zero stays exactly zero outside the box."""
    H, W = original.shape[:2]
    size = (W, H) if size is None else (int(size[0]), int(size[1]))
    changed = np.any(original != dubbed, axis=2)
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return DubbedPatch(0, 0, np.zeros((0, 0, 3), np.int16), size)
    sx, sy = size[0] / W, size[1] / H
    x0 = int(np.floor(max(0, cols[0] - PATCH_MARGIN) * sx))
    x1 = int(np.ceil(min(W, cols[-1] + 1 + PATCH_MARGIN) * sx))
    y0 = int(np.floor(max(0, rows[0] - PATCH_MARGIN) * sy))
    y1 = int(np.ceil(min(H, rows[-1] + 1 + PATCH_MARGIN) * sy))
    x1, y1 = min(x1, size[0]), min(y1, size[1])
    X0, X1 = int(round(x0 / sx)), min(W, int(round(x1 / sx)))
    Y0, Y1 = int(round(y0 / sy)), min(H, int(round(y1 / sy)))
    diff = dubbed[Y0:Y1, X0:X1].astype(np.float32) - original[Y0:Y1, X0:X1].astype(np.float32)
    if (x1 - x0, y1 - y0) != (X1 - X0, Y1 - Y0):
        diff = cv2.resize(diff, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return DubbedPatch(x0, y0, np.rint(diff).astype(np.int16), size)


@dataclass
class _Job:
    frame: int
    key: tuple[int, int]
    tracking: object  # a Tracking snapshot (immutable: corrections make new ones)
    window: dict[int, np.ndarray]
    user_mask: object = _NO_MASK  # a copy of the editor's mask layer (None: no edits)
    detail: float | None = None  # the composite's detail pass (None: the compositor's own)
    size: tuple[int, int] | None = None  # the image's size on screen (None: the frame's)


class _RenderThread(QThread):
    loaded = Signal(str)
    failed = Signal(str)
    rendered = Signal(int, object, object)  # frame, key, DubbedPatch
    frame_failed = Signal(int, str)

    def __init__(self, project_root: Path, device: str, loader: Callable) -> None:
        super().__init__()
        self.setObjectName("dubbed-renderer")
        self.project_root = project_root
        self.device = device
        self.loader = loader
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._stop = False

    def want(self, jobs: list[_Job]) -> None:
        """Replace the queue: the first job is the wanted frame, the rest is read-ahead."""
        with self._cond:
            self._jobs = list(jobs)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._jobs = []
            self._cond.notify()

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._stop and not self._jobs:
                self._cond.wait()
            if self._stop:
                return None
            return self._jobs.pop(0)

    def run(self) -> None:
        try:
            renderer, comp, desc = self.loader(self.project_root, self.device)
        except DubStudioError as e:
            self.failed.emit(str(e))
            return
        except Exception as e:  # a bug or a broken install: a message, never a dead thread
            log.exception("loading the renderer failed")
            self.failed.emit(f"the renderer could not be loaded: {type(e).__name__}: {e}")
            return
        from dubstudio.io.video import VideoReader

        reader = None
        try:
            reader = VideoReader(renderer.project.check_video())
            self.loaded.emit(desc)
            while True:
                job = self._next()
                if job is None:
                    return
                try:
                    if job.user_mask is not _NO_MASK and hasattr(comp, "user_mask"):
                        comp.user_mask = job.user_mask
                    if job.detail is not None and comp.settings.detail != job.detail:
                        comp.settings = dataclasses.replace(comp.settings, detail=job.detail)
                    frame = reader.frame(job.frame)
                    rgb = render_dubbed_frame(renderer, comp, frame.copy(), job.tracking, job.frame, job.window)
                    self.rendered.emit(job.frame, job.key, dubbed_patch(frame, rgb, job.size))
                except DubStudioError as e:
                    self.frame_failed.emit(job.frame, str(e))
                except Exception as e:
                    log.exception("rendering frame %d failed", job.frame)
                    self.frame_failed.emit(job.frame, f"frame {job.frame} could not be rendered: {type(e).__name__}: {e}")
        except DubStudioError as e:
            self.failed.emit(str(e))
        finally:
            if reader is not None:
                reader.close()
            renderer.close()


class DubbedFrames(QObject):
    """The dubbed image of any frame of the open shot (see the module docstring).

    ``kind``: "none" (no tracked shot), "grey" (no adaptation: grey-face preview) or
    "neural". ``status`` says what the neural side is doing ('' when idle and loaded)."""

    ready = Signal(int)  # frame i's neural render is in the cache
    state_changed = Signal()

    def __init__(self, session, device: Callable[[], str] = lambda: "cpu", cache_bytes: int = DEFAULT_CACHE_BYTES,
                 loader: Callable = load_renderer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        # () -> the mask editor's live layer (gui/mask_tool.py) or None; copied once per change
        self.user_mask: Callable[[], object] | None = None
        self._mask_copy: object = _NO_MASK
        # () -> the (width, height) images are shown at (the viewer's decode size), or None
        self.display_size: Callable[[], tuple[int, int] | None] = lambda: None
        # () -> the detail pass the export will use (the export dialog's switch), or None
        self.detail: Callable[[], float] | None = None
        self._detail_used: float | None = None
        self.device = device
        self.loader = loader
        self.cache = FrameCache(cache_bytes)
        self.kind = "none"
        self.status = ""
        self.description = ""
        self._actor_id = ""
        self._thread: _RenderThread | None = None
        self._retired: list[_RenderThread] = []
        self._keys: dict[int, tuple[int, int]] = {}  # frame -> key of its cached image
        self._frame_gen: dict[int, int] = {}
        self._epoch = 0
        self._wanted: int | None = None
        self.errors: dict[int, str] = {}

    # -- state --

    def refresh(self) -> bool:
        """Look at the project again (an adaptation may have finished); True if the kind or the
        actor changed (the renderer is then reloaded on the next request)."""
        s = self.session
        if s.project is None or s.tracking is None:
            kind, actor = "none", ""
        else:
            ok, actor = has_adaptation(s.project.root)
            kind = "neural" if ok else "grey"
        if (kind, actor) == (self.kind, self._actor_id):
            return False
        self._stop_thread()
        self.kind, self._actor_id = kind, actor
        self.status = "" if kind != "neural" else "renderer not loaded"
        self.description = "grey-face preview of the edited mesh (no adaptation yet)" if kind == "grey" else ""
        self.invalidate_all()
        self.state_changed.emit()
        return True

    def key(self, i: int) -> tuple[int, int]:
        return (self._epoch, self._frame_gen.get(int(i), 0))

    def get(self, i: int) -> DubbedPatch | None:
        """The neural render of frame ``i`` if it is cached, still valid and at the view's size
        (after a zoom it is rendered again)."""
        i = int(i)
        if self._keys.get(i) != self.key(i):
            return None
        patch = self.cache.get(i)
        want = self.display_size()
        if patch is not None and want is not None and tuple(patch.size) != tuple(want):
            return None
        return patch

    def is_pending(self, i: int) -> bool:
        return self.kind == "neural" and self.get(i) is None and int(i) not in self.errors

    # -- requests --

    def request(self, i: int, direction: int = 1) -> None:
        """Render frame ``i`` (and a couple ahead) in the worker; ``ready(i)`` follows."""
        s = self.session
        if self.kind != "neural" or s.tracking is None or s.curves is None:
            return
        i = int(i)
        self._wanted = i
        detail = None if self.detail is None else float(self.detail())
        if detail != self._detail_used:  # the export's setting changed: every render is stale
            if self._detail_used is not None:
                self.invalidate_all()
            self._detail_used = detail
        if self._thread is None:
            self._start_thread()
        n = s.tracking.n_frames
        frames = [i] + [i + direction * k for k in range(1, PREFETCH + 1)]
        jobs = []
        for f in frames:
            if 0 <= f < n and self.get(f) is None and f not in self.errors:
                jobs.append(self._job(f))
        if jobs:
            self._thread.want(jobs)

    def _job(self, i: int) -> _Job:
        s = self.session
        n = s.tracking.n_frames
        window = {f: s.curves.at(f) for f in range(max(0, i - WINDOW_REACH), min(n, i + WINDOW_REACH + 1))}
        if self.user_mask is not None and self._mask_copy is _NO_MASK:
            layer = self.user_mask()
            self._mask_copy = None if layer is None else layer.copy()
        return _Job(i, self.key(i), s.tracking, window, self._mask_copy, self._detail_used, self.display_size())

    def mask_changed(self, frames: tuple[int, int] | None) -> None:
        """The user's mask edits changed on frames [start, stop) (None: anywhere)."""
        self._mask_copy = _NO_MASK
        if frames is None:
            self.invalidate_all()
        else:
            self.invalidate(*frames)

    def invalidate(self, start: int, stop: int) -> None:
        """Frames [start, stop) changed (curves or tracking): their renders, and those whose
        window reaches them, are stale."""
        a, b = max(0, int(start) - WINDOW_REACH), int(stop) + WINDOW_REACH
        if b - a > 512:
            self.invalidate_all()
            return
        for f in range(a, b):
            self._frame_gen[f] = self._frame_gen.get(f, 0) + 1
            self._keys.pop(f, None)
            self.errors.pop(f, None)

    def invalidate_all(self) -> None:
        self._epoch += 1
        self._frame_gen.clear()
        self._keys.clear()
        self.errors.clear()
        self.cache.clear()

    # -- the worker --

    def _start_thread(self) -> None:
        s = self.session
        th = _RenderThread(s.project.root, self.device(), self.loader)
        th.loaded.connect(self._on_loaded)
        th.failed.connect(self._on_failed)
        th.rendered.connect(self._on_rendered)
        th.frame_failed.connect(self._on_frame_failed)
        self._thread = th
        self.status = "loading the renderer…"
        self.state_changed.emit()
        th.start()

    def _stop_thread(self, wait: bool = False) -> None:
        th, self._thread = self._thread, None
        if th is None:
            return
        for sig in (th.loaded, th.failed, th.rendered, th.frame_failed):
            sig.disconnect()
        th.stop()
        if wait:
            th.wait()
        elif th.isRunning():
            self._retired.append(th)  # kept alive until its current frame is done
            th.finished.connect(lambda t=th: t in self._retired and self._retired.remove(t))

    def _on_loaded(self, desc: str) -> None:
        self.description, self.status = desc, ""
        self.state_changed.emit()

    def _on_failed(self, msg: str) -> None:
        """The renderer cannot be used: fall back to the grey-face preview, say why."""
        self._stop_thread()
        self.kind = "grey"
        self.description = "grey-face preview of the edited mesh (the neural renderer failed)"
        self.status = msg
        self.state_changed.emit()

    def _on_rendered(self, i: int, key: object, img: DubbedPatch) -> None:
        if key != self.key(i):
            return  # the curves or the tracking changed while it rendered
        self.cache.put(i, img)
        self._keys[i] = key
        self.ready.emit(i)

    def _on_frame_failed(self, i: int, msg: str) -> None:
        self.errors[i] = msg
        self.ready.emit(i)

    def close(self, wait: bool = True) -> None:
        self._stop_thread(wait=wait)
        if wait:
            for th in list(self._retired):
                th.wait()
            self._retired.clear()
        self.kind, self._actor_id = "none", ""
        self.invalidate_all()
