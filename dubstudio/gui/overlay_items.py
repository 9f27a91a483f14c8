"""Graphics items the viewer stacks over a frame: the frame itself and the face overlays.

All geometry is in image pixels (the scene's units). Overlays are drawn natively with QPainter
(cosmetic pens stay one pixel wide at any zoom); the mask tint reuses the core's rasterizer so
the editor shows exactly the mask the renderer will use.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as pgfn
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from dubstudio.gui.model.mesh import MeshGeometry, shade_triangles
from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH, rasterize_mask
from dubstudio.tracking.result import Tracking

OVERLAYS = ("mesh", "landmarks", "crop", "mask", "grey")
OVERLAY_LABELS = {
    "mesh": "Mesh",
    "landmarks": "Landmarks",
    "crop": "Crop box",
    "mask": "Mask",
    "grey": "Grey face",
}
MESH_COLOR = QColor(90, 255, 140, 200)
LANDMARK_COLOR = QColor(255, 255, 255, 230)
CROP_COLOR = QColor(255, 215, 0)
LOWER_TINT = (40, 110, 255, 80)  # RGBA
MOUTH_TINT = (255, 60, 60, 120)
GREY = np.array([205.0, 200.0, 195.0])  # warm clay
MOUTH_INSIDE = np.array([120.0, 45.0, 50.0])


class FrameItem(QGraphicsItem):
    """The decoded frame (a QImage), drawn at (0, 0) over ``size`` image pixels (the frame's
    size; the image itself may be smaller: it comes at the size the view shows it)."""

    def __init__(self) -> None:
        super().__init__()
        self.image: QImage | None = None
        self._rect = QRectF()
        self.setZValue(0)

    def set_image(self, image: QImage | None, size: tuple[int, int] | None = None) -> None:
        if image is None:
            rect = QRectF()
        else:
            w, h = size if size is not None else (image.width(), image.height())
            rect = QRectF(0, 0, w, h)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self.image = image
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.image is None:
            return
        scale = painter.worldTransform().m11() * self._rect.width() / max(1, self.image.width())  # screen px per image px
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 0.999)
        painter.drawImage(self._rect, self.image)


@dataclass
class FaceDrawing:
    """Everything the overlay item paints for one frame (built once per frame/edit)."""

    frame: int
    vertices: np.ndarray  # (514, 3) edited mesh
    wire: QPainterPath | None = None
    landmarks: QPolygonF | None = None
    crop: QRectF | None = None
    mask: QImage | None = None
    mask_origin: QPointF | None = None
    grey: QImage | None = None
    grey_origin: QPointF | None = None

    @classmethod
    def build(cls, geometry: MeshGeometry, tracking: Tracking, i: int, controls: np.ndarray | None, enabled: set[str]) -> FaceDrawing:
        verts = geometry.vertices(tracking, i, controls)
        d = cls(i, verts)
        if "mesh" in enabled:
            seg = verts[geometry.edges][:, :, :2]  # (E, 2, 2)
            d.wire = pg.arrayToQPath(seg[:, :, 0].ravel(), seg[:, :, 1].ravel(), connect="pairs")
        if "landmarks" in enabled:
            lm = tracking.landmarks[i, :, :2]
            d.landmarks = _polygon(lm[np.isfinite(lm).all(axis=1)])
        if "crop" in enabled:
            cx, cy, side = (float(v) for v in tracking.crop[i])
            d.crop = QRectF(cx - side / 2, cy - side / 2, side, side)
        if "mask" in enabled:
            d.mask, d.mask_origin = _mask_image(geometry, verts, tracking.width, tracking.height)
        if "grey" in enabled:
            d.grey, d.grey_origin = _grey_image(geometry, verts, tracking.width, tracking.height)
        return d


def _polygon(xy: np.ndarray) -> QPolygonF:
    """(N, 2) points -> QPolygonF, filled through a numpy view of its memory."""
    poly = pgfn.create_qpolygonf(len(xy))
    if len(xy):
        pgfn.ndarray_from_qpolygonf(poly)[:] = xy
    return poly


def _bbox(xy: np.ndarray, width: int, height: int, margin: int = 2) -> tuple[int, int, int, int] | None:
    x0 = int(np.clip(np.floor(xy[:, 0].min()) - margin, 0, width))
    y0 = int(np.clip(np.floor(xy[:, 1].min()) - margin, 0, height))
    x1 = int(np.clip(np.ceil(xy[:, 0].max()) + margin, 0, width))
    y1 = int(np.clip(np.ceil(xy[:, 1].max()) + margin, 0, height))
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _mask_image(geometry: MeshGeometry, verts: np.ndarray, width: int, height: int) -> tuple[QImage | None, QPointF | None]:
    """The lower-face / mouth mask of the edited mesh as an RGBA tint over its bounding box."""
    xy = verts[:, :2]
    box = _bbox(xy, width, height)
    if box is None:
        return None, None
    x0, y0, x1, y1 = box
    mask = rasterize_mask(xy - np.array([x0, y0]), geometry.lower, geometry.mouth, (y1 - y0, x1 - x0))
    lut = np.zeros((3, 4), np.uint8)
    lut[MASK_LOWER_FACE] = LOWER_TINT
    lut[MASK_MOUTH] = MOUTH_TINT
    rgba = np.ascontiguousarray(lut[mask])
    h, w = mask.shape
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    return img, QPointF(x0, y0)


GREY_SUPERSAMPLE = 3


def _grey_image(geometry: MeshGeometry, verts: np.ndarray, width: int, height: int) -> tuple[QImage | None, QPointF | None]:
    """The edited mesh flat-shaded (Lambert), far-to-near, supersampled and box-filtered: an
    RGBA image over the face's bounding box. The mouth cavity is darker and red."""
    xy = verts[:, :2]
    box = _bbox(xy, width, height)
    if box is None:
        return None, None
    x0, y0, x1, y1 = box
    tris = geometry.triangles
    order, shade = shade_triangles(verts, tris)
    base = np.where((np.arange(len(tris)) >= geometry.n_surface)[:, None], MOUTH_INSIDE, GREY)
    rgba = np.concatenate([np.clip(base * shade[:, None], 0, 255), np.full((len(tris), 1), 255.0)], axis=1)
    colors = rgba.astype(int).tolist()
    ss, shift = GREY_SUPERSAMPLE, 4
    pts = np.round((xy - np.array([x0, y0])) * (ss * (1 << shift))).astype(np.int32)
    corners = pts[tris]  # (T, 3, 2)
    canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss, 4), np.uint8)
    for t in order.tolist():
        cv2.fillConvexPoly(canvas, corners[t], colors[t], lineType=cv2.LINE_8, shift=shift)
    img = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    return QImage(img.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy(), QPointF(x0, y0)


class FaceOverlayItem(QGraphicsItem):
    """Paints a ``FaceDrawing``: grey face, mask tint, wireframe, landmarks, crop box."""

    def __init__(self) -> None:
        super().__init__()
        self.drawing: FaceDrawing | None = None
        self._rect = QRectF()
        self.setZValue(1)

    def set_bounds(self, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(-0.5 * width, -0.5 * height, 2.0 * width, 2.0 * height)  # crops may overhang

    def set_drawing(self, drawing: FaceDrawing | None) -> None:
        self.drawing = drawing
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        d = self.drawing
        if d is None:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if d.grey is not None and d.grey_origin is not None:
            painter.drawImage(d.grey_origin, d.grey)
        if d.mask is not None and d.mask_origin is not None:
            painter.drawImage(d.mask_origin, d.mask)
        if d.wire is not None:
            pen = QPen(MESH_COLOR, 0)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(d.wire)
        if d.landmarks is not None and not d.landmarks.isEmpty():
            pen = QPen(LANDMARK_COLOR, 2.5)
            pen.setCosmetic(True)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            painter.drawPoints(d.landmarks)
        if d.crop is not None:
            pen = QPen(CROP_COLOR, 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(d.crop)
