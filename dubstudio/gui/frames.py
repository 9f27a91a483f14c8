"""Frames for the viewer: a decode thread with its own ``VideoReader`` and a byte-bounded cache.

The GUI thread never decodes or scales. ``request(i)`` records the newest wanted frame (older
requests are dropped: scrubbing and playback only ever need the latest one) and wakes the thread,
which makes a ready-to-paint ``QImage`` at the size the viewer shows it (``set_view_scale``: one
libswscale pass converts and scales, so a 1080x1920 frame costs what a 270x480 one does to paint)
and emits ``frame_ready``. Images are smaller than the frame; the viewer draws them into the
frame's rectangle, so scene coordinates stay image pixels.

A second thread builds the shot's display proxy (``io.proxy``: each frame its own JPEG) in one
sequential pass on opening, or loads it from the project's cache. Once a frame is in the proxy a
jump to it costs one JPEG decode instead of decoding from the keyframe before it (up to 1.5 s on
long-GOP camera files). When idle the decode thread reads ahead in the playing direction; a
backwards request the proxy cannot serve decodes a short block ending at the frame.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from dubstudio.core.errors import DubStudioError
from dubstudio.io.proxy import FrameProxy
from dubstudio.io.video import VideoReader

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 768 * 2**20
BACK_BLOCK = 12  # frames decoded (and cached) before a backwards request
IDLE_READAHEAD = 4  # after a jump or a step; playback (sequential requests) reads further


SCALE_STEP = 1 / 16  # view scales are rounded up to this: a zoom step re-decodes once, not per pixel


def view_level(needed: float) -> float:
    """The decode scale for a view that shows ``needed`` screen pixels per frame pixel."""
    if not needed > 0:
        return 1.0
    return min(1.0, max(SCALE_STEP, np.ceil(needed / SCALE_STEP - 0.02) * SCALE_STEP))


def bgra_to_qimage(bgra: np.ndarray) -> QImage:
    """HxWx4 uint8 BGRA (libswscale's / OpenCV's order) -> an independent RGB32 QImage."""
    h, w = bgra.shape[:2]
    bgra = np.ascontiguousarray(bgra)
    return QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()


def to_qimage(rgb: np.ndarray) -> QImage:
    """HxWx3 uint8 RGB -> an independent QImage in the raster engine's fastest format."""
    h, w = rgb.shape[:2]
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.convertToFormat(QImage.Format.Format_RGB32)  # a deep copy, painted without conversion


class FrameCache:
    """LRU of QImages bounded by bytes; shared by the GUI and the decode thread (locked)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, QImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, i: int) -> QImage | None:
        with self._lock:
            img = self._items.get(i)
            if img is not None:
                self._items.move_to_end(i)
            return img

    def __contains__(self, i: int) -> bool:
        with self._lock:
            return i in self._items

    def put(self, i: int, img: QImage) -> None:
        with self._lock:
            old = self._items.pop(i, None)
            if old is not None:
                self._bytes -= old.sizeInBytes()
            self._items[i] = img
            self._bytes += img.sizeInBytes()
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.sizeInBytes()

    def capacity_frames(self, frame_bytes: int) -> int:
        return max(1, self.max_bytes // max(1, frame_bytes))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class _DecodeThread(QThread):
    decoded = Signal(int, QImage)
    error = Signal(int, str)

    def __init__(self, reader: VideoReader, cache: FrameCache, readahead: int) -> None:
        super().__init__()
        self.setObjectName("frame-decoder")
        self.reader = reader
        self.cache = cache
        self.readahead = readahead
        self.proxy: FrameProxy | None = None  # set by the proxy thread once loaded or started
        self.size = (reader.width, reader.height)  # the images' size (the view's scale)
        self._cond = threading.Condition()
        self._wanted: int | None = None
        self._direction = 1
        self._stop = False
        self._last_decoded = -1
        self._ahead_left = 0

    def want(self, i: int, direction: int) -> None:
        with self._cond:
            self._wanted, self._direction = i, direction
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _take(self) -> tuple[int | None, int]:
        with self._cond:
            w, self._wanted = self._wanted, None
            return w, self._direction

    def _pending(self) -> bool:
        with self._cond:
            return self._stop or self._wanted is not None

    def run(self) -> None:
        n = self.reader.n_frames
        ahead_from: int | None = None  # next frame to read ahead
        direction = 1
        previous: int | None = None
        try:
            while True:
                with self._cond:
                    while not self._stop and self._wanted is None and ahead_from is None:
                        self._cond.wait()
                    if self._stop:
                        return
                wanted, d = self._take()
                if wanted is not None:
                    direction = d
                    self._serve(wanted, direction)
                    ahead_from = wanted + 1 if direction >= 0 else None
                    playing = previous is not None and 0 < wanted - previous <= 3
                    self._ahead_left = self.readahead if playing else IDLE_READAHEAD
                    previous = wanted
                    continue
                # idle: read ahead in the playing direction, one frame at a time
                if ahead_from is None or ahead_from >= n or self._ahead_left <= 0:
                    ahead_from = None
                    continue
                i = ahead_from
                ahead_from += 1
                self._ahead_left -= 1
                if i not in self.cache:
                    self._decode(i)
        finally:
            self.reader.close()

    def _from_proxy(self, i: int) -> bool:
        # only for a scaled-down view: at 1:1 and beyond the editor sees the decoder's exact pixels
        p = self.proxy
        return (p is not None and self.size[0] < self.reader.width and self.size[0] <= p.size[0] * 1.02
                and self.size[1] <= p.size[1] * 1.02 and p.has(i))

    def _serve(self, i: int, direction: int) -> None:
        img = self.cache.get(i)
        if img is not None:
            self.decoded.emit(i, img)
            return
        if not self._from_proxy(i) and (direction < 0 or i < self._last_decoded):
            # Backwards: one seek, then a block of frames forward; newest request still wins.
            for j in range(max(0, i - BACK_BLOCK + 1), i + 1):
                if self._pending():
                    return  # a newer request (or stop) supersedes this one
                if j != i and j in self.cache:
                    continue
                img = self._decode(j)
            if img is not None:
                self.decoded.emit(i, img)
            return
        img = self._decode(i)
        if img is not None:
            self.decoded.emit(i, img)

    def _decode(self, i: int) -> QImage | None:
        size = self.size
        try:
            bgra = self.proxy.frame(i, size) if self._from_proxy(i) else None  # type: ignore[union-attr]
            if bgra is None:
                bgra = self.reader.display_frame(i, size)
                self._last_decoded = i
            img = bgra_to_qimage(bgra)
        except DubStudioError as e:
            self.error.emit(i, str(e))
            return None
        except Exception as e:  # never let the decode thread die silently
            log.exception("decoding frame %d failed", i)
            self.error.emit(i, f"frame {i} could not be decoded: {e}")
            return None
        if size == self.size:  # not superseded by a zoom while it decoded
            self.cache.put(i, img)
        return img


def _lower_priority() -> None:
    """Make the calling thread yield the CPU to the GUI and the decoder. Qt's thread priorities
    do nothing under Linux's default scheduler; a per-thread nice value does (on two cores the
    proxy pass otherwise takes a third of the CPU exactly when the user starts scrubbing)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux/BSD, or not permitted: Qt's hint stays
        pass


class _ProxyThread(QThread):
    """Loads the shot's display proxy from the cache, or builds it in one pass (own reader)."""

    def __init__(self, video: Path, n_frames: int, frame_size: tuple[int, int], cache_dir: Path | None,
                 fingerprint: str | None, decoder: _DecodeThread) -> None:
        super().__init__()
        self.setObjectName("display-proxy")
        self.video, self.n_frames, self.frame_size, self.cache_dir = video, n_frames, frame_size, cache_dir
        self.fingerprint = fingerprint
        self.decoder = decoder
        self.proxy: FrameProxy | None = None
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def run(self) -> None:
        _lower_priority()
        try:
            proxy = FrameProxy.open_or_new(self.video, self.n_frames, self.frame_size, self.cache_dir, self.fingerprint)
            self.proxy = self.decoder.proxy = proxy
            if not proxy.complete:
                with VideoReader(self.video) as reader:
                    if reader.n_frames != self.n_frames:
                        log.warning("display proxy skipped: the video changed on disk")
                        return
                    proxy.build(reader, cancelled=lambda: self._stop)
        except Exception as e:  # the proxy only speeds things up: never an error for the user
            log.warning("display proxy unavailable: %s", e)


class FrameSource(QObject):
    """Frames of one video for the GUI: ``get`` (cache only, instant) and ``request`` (async).

    ``size`` is the frame's size in pixels (the scene's units); images come at ``display_size``.
    ``fingerprint``: the video's content fingerprint when the caller knows it (the project does),
    so the proxy's cache key does not hash the video again."""

    frame_ready = Signal(int, QImage)
    error = Signal(int, str)
    finished = Signal()  # after ``close``: every thread has ended and the reader is closed

    def __init__(self, reader: VideoReader, cache_bytes: int = DEFAULT_CACHE_BYTES, parent: QObject | None = None,
                 proxy_dir: Path | None = None, proxy: bool = True, defer_proxy: bool = False,
                 fingerprint: str | None = None) -> None:
        super().__init__(parent)
        self.n_frames = reader.n_frames
        self.size = (reader.width, reader.height)
        self.cache = FrameCache(cache_bytes)
        frame_bytes = reader.width * reader.height * 4
        readahead = min(50, max(2, self.cache.capacity_frames(frame_bytes) // 3))
        self._thread = _DecodeThread(reader, self.cache, readahead)
        self._thread.decoded.connect(self.frame_ready)
        self._thread.error.connect(self.error)
        self._proxy_thread: _ProxyThread | None = None
        self._closed = False
        if proxy:
            self._proxy_thread = _ProxyThread(reader.path, reader.n_frames, self.size, proxy_dir, fingerprint, self._thread)
        for t in self._threads():
            t.finished.connect(self._on_thread_finished)
        self._thread.start()
        if not defer_proxy:
            self.start_proxy()

    def start_proxy(self) -> None:
        """Load or build the display proxy in the background (once; ``defer_proxy`` waits for this
        call, so that opening a shot, which loads its tracking and sound, is not slowed by it)."""
        th = self._proxy_thread
        if th is not None and not th.isRunning() and not th.isFinished() and not self._closed:
            th.start(QThread.Priority.LowPriority)

    @property
    def display_size(self) -> tuple[int, int]:
        """The size images come at: the frame at the view's scale."""
        return self._thread.size

    def set_view_scale(self, needed: float) -> bool:
        """The viewer shows ``needed`` screen pixels per frame pixel; True when the images' size
        changed (the cache is emptied: ask again for what is on screen)."""
        level = view_level(needed)
        w, h = self.size
        size = (max(2, int(round(w * level))), max(2, int(round(h * level))))
        if size == self._thread.size:
            return False
        self._thread.size = size
        self.cache.clear()
        return True

    def prepared(self) -> bool:
        """True once the display proxy is loaded or built and saved (or there is none to wait for)."""
        th = self._proxy_thread
        return th is None or th.isFinished()

    def proxy_frames(self) -> tuple[int, int]:
        """(frames in the display proxy, frames in the shot)."""
        th = self._proxy_thread
        p = None if th is None else th.proxy
        return (0 if p is None else p.count()), self.n_frames

    def get(self, i: int) -> QImage | None:
        return self.cache.get(i)

    def request(self, i: int, direction: int = 1) -> None:
        """Ask for frame ``i``; ``frame_ready(i, image)`` follows (at once if cached)."""
        if 0 <= i < self.n_frames:
            self._thread.want(int(i), 1 if direction >= 0 else -1)

    def _threads(self) -> list[QThread]:
        return [t for t in (self._thread, self._proxy_thread) if t is not None]

    def _on_thread_finished(self) -> None:
        if not self.is_running():
            self.finished.emit()

    def is_running(self) -> bool:
        return any(t.isRunning() for t in self._threads())

    def close(self, wait: bool = True, timeout_ms: int = 10_000) -> bool:
        """Stop the decode thread (it finishes the frame in hand, which on a long-GOP file can
        take seconds) and close the reader. ``wait=False`` returns at once: keep this object
        alive until ``finished``. Returns True when the thread has ended."""
        self._closed = True
        for t in self._threads():
            t.stop()
        if not wait:
            return not self.is_running()
        ok = all([t.wait(timeout_ms) for t in self._threads()])
        if not ok:
            log.error("frame decoder did not stop within %d ms", timeout_ms)
            return False
        return True
