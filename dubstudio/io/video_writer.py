"""Streaming video writer (PyAV): frames go straight to the encoder, never held in memory."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dubstudio.errors import MediaError


class VideoWriter:
    """Write RGB frames at a rational frame rate. H.264 (yuv420p) by default.

    Usage: ``with VideoWriter(path, fps, w, h) as w: w.write(rgb)``. The file is written to a
    temporary name and renamed on a clean close, so an interrupted export never leaves a
    half-file under the final name.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction,
        width: int,
        height: int,
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        options: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        # yuv420p needs even sizes; pad by one pixel rather than fail.
        self.width, self.height = width + width % 2, height + height % 2
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._c = av.open(str(self._tmp), mode="w")
            for k, v in (metadata or {}).items():
                self._c.metadata[k] = v
            self._s = self._c.add_stream(codec, rate=Fraction(fps))
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"cannot write {self.path}: {e}") from e
        self._s.width, self._s.height = self.width, self.height
        self._s.pix_fmt = pix_fmt
        self._s.time_base = 1 / Fraction(fps)
        self._s.options = options or ({"crf": "18", "preset": "veryfast"} if codec == "libx264" else {})
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if (w, h) != (self.width, self.height):
            padded = np.zeros((self.height, self.width, 3), np.uint8)
            padded[:h, :w] = rgb[: self.height, : self.width]
            rgb = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        frame.pts = self.frames
        for packet in self._s.encode(frame):
            self._c.mux(packet)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        if self._c is None:
            return
        try:
            if keep:
                for packet in self._s.encode():
                    self._c.mux(packet)
            self._c.close()
        finally:
            self._c = None
        if keep:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(keep=exc_type is None)
