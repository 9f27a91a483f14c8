"""The timeline's thumbnail strip: every k-th frame of the shot, small, decoded in a job.

``load_thumbnails`` is Qt-free (it runs in a background job when a shot opens: the GUI thread
never decodes). It streams the shot once in order (no seeking) and keeps every k-th frame,
scaled to ``THUMB_HEIGHT`` px, with k chosen so there are at most ``MAX_THUMBS``.
``ThumbnailItem`` draws them in a timeline row on the frame axis the ruler and the waveform
share: the visible part of the row is cut into thumbnail-wide slots, and each slot shows the
decoded thumbnail nearest to the frame at its centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QTransform

from dubstudio.core.jobs import Progress

THUMB_HEIGHT = 48  # px
MAX_THUMBS = 200


@dataclass(frozen=True)
class Thumbnails:
    """``images[j]`` (RGB uint8, THUMB_HEIGHT high) is frame ``frames[j]`` of an ``n_frames`` shot."""

    frames: np.ndarray  # (n,) int, increasing
    images: list[np.ndarray]
    n_frames: int

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of one thumbnail in pixels."""
        h, w = self.images[0].shape[:2]
        return w, h

    def nearest(self, frame: float) -> int:
        """Index (into ``frames``/``images``) of the thumbnail nearest to ``frame``."""
        j = int(np.searchsorted(self.frames, frame))
        if j <= 0:
            return 0
        if j >= len(self.frames):
            return len(self.frames) - 1
        return j if self.frames[j] - frame < frame - self.frames[j - 1] else j - 1


def thumbnail_step(n_frames: int, max_thumbs: int = MAX_THUMBS) -> int:
    """k: keep frames 0, k, 2k, ... so there are at most ``max_thumbs`` of them."""
    return max(1, math.ceil(max(1, n_frames) / max(1, max_thumbs)))


def load_thumbnails(video: str | Path, progress: Progress | None = None, height: int = THUMB_HEIGHT,
                    max_thumbs: int = MAX_THUMBS) -> Thumbnails:
    """Every k-th frame of ``video`` scaled to ``height`` px (cv2.INTER_AREA). Cancellable
    through ``progress`` (checked at every decoded frame)."""
    import cv2

    from dubstudio.io.video import VideoReader

    progress = progress or Progress()
    progress.stage("thumbnails")
    frames: list[int] = []
    images: list[np.ndarray] = []
    with VideoReader(video, cache_size=1) as reader:
        n = reader.n_frames
        k = thumbnail_step(n, max_thumbs)
        width = max(1, round(reader.width * height / max(1, reader.height)))
        last = (n - 1) // k * k  # nothing after the last kept frame is decoded
        for i, rgb in reader.iter_frames(0, last + 1):
            if i % k == 0:
                frames.append(i)
                images.append(np.ascontiguousarray(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)))
            progress.update(i + 1, last + 1)
    return Thumbnails(np.asarray(frames, dtype=np.int64), images, n)


# -- the Qt row (the function above uses no Qt: it runs in a worker thread) --


class ThumbnailItem(pg.GraphicsObject):
    """Draws ``Thumbnails`` in a timeline plot whose x axis is frames and y range [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.thumbs: Thumbnails | None = None
        self.qimages: list[QImage] = []
        self.slots: list[tuple[float, int]] = []  # (slot's first x in frames, thumbnail index) last drawn
        self.slot_width = 0.0  # in frames, last drawn

    def set_thumbnails(self, thumbs: Thumbnails | None) -> None:
        self.prepareGeometryChange()
        self.thumbs = thumbs
        self.qimages = []
        for im in thumbs.images if thumbs is not None else ():
            h, w = im.shape[:2]
            self.qimages.append(QImage(im.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        n = self.thumbs.n_frames if self.thumbs is not None else 0
        return QRectF(-0.5, 0.0, float(n), 1.0)

    def paint(self, p, *_args) -> None:
        self.slots = []
        t, vb = self.thumbs, self.getViewBox()
        if t is None or not len(t) or vb is None:
            return
        (x0, x1), _ = vb.viewRange()
        tr: QTransform = p.transform()  # item (frames, 0..1) -> device pixels
        a, b = tr.map(QPointF(-0.5, 0.0)), tr.map(QPointF(t.n_frames - 0.5, 1.0))
        top, bottom = min(a.y(), b.y()), max(a.y(), b.y())
        px_per_frame = abs(b.x() - a.x()) / max(1, t.n_frames)
        if px_per_frame <= 0 or bottom - top < 2:
            return
        tw, th = t.size
        slot_px = tw * (bottom - top) / th  # a thumbnail keeps its aspect at the row's height
        w = self.slot_width = slot_px / px_per_frame  # slot width in frames
        first = max(0, math.floor((x0 + 0.5) / w))  # slots start at -0.5 + k w: stable while panning
        end = min(x1, t.n_frames - 0.5)
        p.save()
        p.resetTransform()
        clip_a, clip_b = tr.map(QPointF(-0.5, 0.0)), tr.map(QPointF(t.n_frames - 0.5, 0.0))
        p.setClipRect(QRectF(min(clip_a.x(), clip_b.x()), top, abs(clip_b.x() - clip_a.x()), bottom - top),
                      Qt.ClipOperation.IntersectClip)
        k = first
        while -0.5 + k * w < end:
            s = -0.5 + k * w
            j = t.nearest(min(s + w / 2, t.n_frames - 1))
            xa = tr.map(QPointF(s, 0.0)).x()
            p.drawImage(QRectF(xa, top, slot_px, bottom - top), self.qimages[j])
            self.slots.append((s, j))
            k += 1
        p.restore()
