"""A display proxy of a shot: every frame as its own JPEG at viewer resolution (Qt-free).

Long-GOP camera files (HEVC/H.264 with a keyframe every 5-10 s) cannot jump: a far frame is
decoded from the keyframe before it, up to 1.5 s on a 1080x1920 shot. NLEs answer with intra-only
proxies; this is ours. One sequential pass (the only fast way through such a file) decodes the shot
at ``PROXY_LONG_SIDE`` and JPEG-encodes each frame; after that any frame is one JPEG decode away
(~3-5 ms). Frames are usable while the pass runs; the finished proxy is written atomically into the
project's cache under a key made of the video's content fingerprint, the size and the format
version, so a relinked or changed video gets a new one and a damaged file is rebuilt.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dubstudio.core.errors import DubStudioError
from dubstudio.io.atomic import atomic_open, file_fingerprint

log = logging.getLogger(__name__)

PROXY_LONG_SIDE = 1280  # covers a full-HD screen's viewer at fit; zooming past it decodes the original
JPEG_QUALITY = 88
FORMAT_VERSION = 1
_MAGIC = b"DSPROXY1"


def proxy_size(width: int, height: int, long_side: int = PROXY_LONG_SIDE) -> tuple[int, int]:
    """The proxy's (width, height): the frame scaled so its long side is at most ``long_side``
    (never enlarged), even numbers."""
    s = min(1.0, long_side / max(width, height))
    return max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)


def proxy_key(video: Path, size: tuple[int, int], fingerprint: str | None = None) -> str:
    fp = (fingerprint or file_fingerprint(video))[:16]
    return f"{fp}-{size[0]}x{size[1]}-q{JPEG_QUALITY}-v{FORMAT_VERSION}"


class FrameProxy:
    """JPEG frames of one shot. Thread-safe: a builder thread ``put``s while readers ``get``."""

    def __init__(self, n_frames: int, size: tuple[int, int], path: Path | None = None) -> None:
        self.n_frames = int(n_frames)
        self.size = (int(size[0]), int(size[1]))
        self.path = path  # where the finished proxy lives (None: kept in memory only)
        self._jpegs: list[bytes | None] = [None] * self.n_frames
        self._count = 0
        self._lock = threading.Lock()

    # -- state --

    @property
    def complete(self) -> bool:
        with self._lock:
            return self._count == self.n_frames

    def count(self) -> int:
        with self._lock:
            return self._count

    def has(self, i: int) -> bool:
        with self._lock:
            return 0 <= i < self.n_frames and self._jpegs[i] is not None

    def put(self, i: int, bgr: np.ndarray) -> None:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise DubStudioError(f"frame {i} could not be encoded for the display proxy")
        with self._lock:
            if self._jpegs[i] is None:
                self._count += 1
            self._jpegs[i] = buf.tobytes()

    # -- reading --

    def frame(self, i: int, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """Frame ``i`` as HxWx4 uint8 BGRA at ``size`` (default: the proxy's), or None when the
        proxy does not have it yet. A much smaller ``size`` decodes at 1/2, 1/4 or 1/8 first."""
        with self._lock:
            data = self._jpegs[i] if 0 <= i < self.n_frames else None
        if data is None:
            return None
        w, h = self.size if size is None else (int(size[0]), int(size[1]))
        flag = cv2.IMREAD_COLOR
        for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
            if self.size[0] / factor >= w and self.size[1] / factor >= h:
                flag = reduced
                break
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if bgr is None:
            return None
        if (bgr.shape[1], bgr.shape[0]) != (w, h):
            shrink = w < bgr.shape[1]
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)

    # -- building, saving, loading --

    def build(self, reader, cancelled: Callable[[], bool] = lambda: False, progress: Callable[[int, int], None] | None = None) -> bool:
        """Decode every frame of ``reader`` (a VideoReader this thread owns) into the proxy, in one
        sequential pass; save it when complete. Returns False if cancelled."""
        for i, bgra in reader.iter_display(self.size):
            if cancelled():
                return False
            if not self.has(i):
                self.put(i, bgra[:, :, :3])
            if progress is not None:
                progress(i + 1, self.n_frames)
        if self.path is not None:
            try:
                self.save(self.path)
            except (OSError, DubStudioError) as e:  # a full disk costs the next opening, not this one
                log.warning("display proxy kept in memory only: %s", e)
        return True

    def save(self, path: Path) -> None:
        with self._lock:
            jpegs = list(self._jpegs)
        if any(j is None for j in jpegs):
            raise DubStudioError("the display proxy is incomplete")
        sizes = [len(j) for j in jpegs]  # type: ignore[arg-type]
        header = json.dumps({"n_frames": self.n_frames, "size": list(self.size), "sizes": sizes}).encode()
        with atomic_open(path) as f:
            f.write(_MAGIC + struct.pack("<Q", len(header)) + header)
            for j in jpegs:
                f.write(j)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> FrameProxy:
        """A saved proxy; raises DubStudioError when it is damaged or truncated."""
        try:
            data = Path(path).read_bytes()
            if data[:8] != _MAGIC:
                raise ValueError("not a display proxy")
            (hlen,) = struct.unpack("<Q", data[8:16])
            header = json.loads(data[16 : 16 + hlen])
            sizes = [int(s) for s in header["sizes"]]
            if len(sizes) != int(header["n_frames"]) or 16 + hlen + sum(sizes) != len(data):
                raise ValueError("truncated")
        except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
            raise DubStudioError(f"display proxy {Path(path).name} is damaged ({e}); it will be rebuilt") from e
        p = cls(int(header["n_frames"]), tuple(header["size"]), path=Path(path))
        offset = 16 + hlen
        for i, n in enumerate(sizes):
            p._jpegs[i] = data[offset : offset + n]
            offset += n
        p._count = p.n_frames
        return p

    @classmethod
    def open_or_new(cls, video: Path, n_frames: int, frame_size: tuple[int, int], cache_dir: Path | None,
                    fingerprint: str | None = None) -> FrameProxy:
        """The shot's saved proxy from ``cache_dir`` if one matches the video, else an empty one
        that will be saved there once built (``cache_dir`` None: memory only). ``fingerprint``: the
        video's content fingerprint if known (else it is computed)."""
        size = proxy_size(*frame_size)
        path = None
        if cache_dir is not None:
            try:
                path = Path(cache_dir) / f"{proxy_key(Path(video), size, fingerprint)}.proxy"
            except OSError as e:
                log.warning("display proxy not cached: %s", e)
        if path is not None and path.is_file():
            try:
                p = cls.load(path)
                if p.n_frames == n_frames and p.size == size:
                    return p
                log.warning("display proxy %s does not match the shot; rebuilding", path.name)
            except DubStudioError as e:
                log.warning("%s", e)
        return cls(n_frames, size, path=path)
