"""Frames for the viewer: a decode thread with its own ``VideoReader`` and a byte-bounded cache.

The GUI thread never decodes. ``request(i)`` records the newest wanted frame (older requests
are dropped: scrubbing and playback only ever need the latest one) and wakes the thread, which
decodes it, converts it to a ready-to-paint ``QImage`` and emits ``frame_ready``. When idle it
reads ahead in the playing direction; a backwards request decodes a short block ending at the
frame, because on long-GOP files every backwards seek decodes from a keyframe anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from dubstudio.core.errors import DubStudioError
from dubstudio.io.video import VideoReader

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 768 * 2**20
BACK_BLOCK = 12  # frames decoded (and cached) before a backwards request
IDLE_READAHEAD = 4  # after a jump or a step; playback (sequential requests) reads further


def to_qimage(rgb: np.ndarray) -> QImage:
    """HxWx3 uint8 RGB -> an independent QImage in the raster engine's fastest format."""
    h, w = rgb.shape[:2]
    rgb = np.ascontiguousarray(rgb)
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

    def _serve(self, i: int, direction: int) -> None:
        img = self.cache.get(i)
        if img is not None:
            self.decoded.emit(i, img)
            return
        if direction < 0 or i < self._last_decoded:
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
        try:
            img = to_qimage(self.reader.frame(i))
        except DubStudioError as e:
            self.error.emit(i, str(e))
            return None
        except Exception as e:  # never let the decode thread die silently
            log.exception("decoding frame %d failed", i)
            self.error.emit(i, f"frame {i} could not be decoded: {e}")
            return None
        self._last_decoded = i
        self.cache.put(i, img)
        return img


class FrameSource(QObject):
    """Frames of one video for the GUI: ``get`` (cache only, instant) and ``request`` (async)."""

    frame_ready = Signal(int, QImage)
    error = Signal(int, str)

    def __init__(self, reader: VideoReader, cache_bytes: int = DEFAULT_CACHE_BYTES, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.n_frames = reader.n_frames
        self.size = (reader.width, reader.height)
        self.cache = FrameCache(cache_bytes)
        frame_bytes = reader.width * reader.height * 4
        readahead = min(50, max(2, self.cache.capacity_frames(frame_bytes) // 3))
        self._thread = _DecodeThread(reader, self.cache, readahead)
        self._thread.decoded.connect(self.frame_ready)
        self._thread.error.connect(self.error)
        self._thread.start()

    def get(self, i: int) -> QImage | None:
        return self.cache.get(i)

    def request(self, i: int, direction: int = 1) -> None:
        """Ask for frame ``i``; ``frame_ready(i, image)`` follows (at once if cached)."""
        if 0 <= i < self.n_frames:
            self._thread.want(int(i), 1 if direction >= 0 else -1)

    @property
    def finished(self):
        """The decode thread's ``finished`` signal (after ``close``, once the reader is closed)."""
        return self._thread.finished

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def close(self, wait: bool = True, timeout_ms: int = 10_000) -> bool:
        """Stop the decode thread (it finishes the frame in hand, which on a long-GOP file can
        take seconds) and close the reader. ``wait=False`` returns at once: keep this object
        alive until ``finished``. Returns True when the thread has ended."""
        self._thread.stop()
        if not wait:
            return not self._thread.isRunning()
        if not self._thread.wait(timeout_ms):
            log.error("frame decoder did not stop within %d ms", timeout_ms)
            return False
        return True
