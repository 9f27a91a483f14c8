"""The viewer: the current frame with face overlays, zoom (wheel) and pan (drag).

It follows the session's playhead and curves (never a frame number of its own): a playhead
move shows the cached frame at once or asks the decode thread for it; an edit of the curves
that touches the shown frame rebuilds the overlay on the next event-loop turn, once however
many edits arrived (ARCHITECTURE rule 4: only the latest state is drawn).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QTransform, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QWidget

from dubstudio.gui.frames import FrameSource
from dubstudio.gui.overlay_items import OVERLAYS, FaceDrawing, FaceOverlayItem, FrameItem
from dubstudio.gui.model.session import ShotSession
from dubstudio.core.controls import CONTROL_NAMES, JAW

log = logging.getLogger(__name__)

MIN_ZOOM, MAX_ZOOM = 0.02, 40.0


class QtViewer(QGraphicsView):
    frame_shown = Signal(int)  # a new image is on screen (its frame index)
    overlay_rebuilt = Signal(int)  # overlays were rebuilt for this frame
    overlays_toggled = Signal(str, bool)
    zoom_changed = Signal(float)

    def __init__(self, session: ShotSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.source: FrameSource | None = None
        self.shown_frame: int | None = None  # index of the image on screen
        self.enabled: set[str] = {"mesh", "crop"}
        self._drawing: FaceDrawing | None = None
        self._last_request = 0
        self._fit_mode = True
        self.last_build_ms = 0.0
        # Compare modes (gui/compare.py) put a dubbed image beside the frame: what "fit" shows
        # then, in scene units (None: the frame). HUD providers add (text, colour) lines.
        self.content_extent: QRectF | None = None
        self.hud_providers: list = []
        # () -> bool: True while another item (the mask editor, gui/mask_tool.py) draws the
        # "mask" overlay, so the region tint of FaceDrawing is left out.
        self.mask_override = None

        self.setScene(QGraphicsScene(self))
        self.frame_item = FrameItem()
        self.overlay_item = FaceOverlayItem()
        self.scene().addItem(self.frame_item)
        self.scene().addItem(self.overlay_item)
        self.setBackgroundBrush(QColor(24, 24, 27))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 200)

        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(0)
        self._rebuild_timer.timeout.connect(self._rebuild_overlay)

        session.playhead.frame_changed.connect(self._on_frame_changed)
        session.curves_changed.connect(self._on_curves_changed)
        session.tracking_changed.connect(self.schedule_rebuild)
        session.tracking_corrected.connect(lambda start, stop: self._on_curves_changed("", start, stop))
        session.shot_closed.connect(self._on_closed)
        self.zoom_changed.connect(self._update_decode_scale)

    # -- source --

    def set_source(self, source: FrameSource | None) -> None:
        if self.source is not None:
            self.source.frame_ready.disconnect(self._on_frame_ready)
        self.source = source
        self.shown_frame = None
        self.frame_item.set_image(None)
        self._drawing = None
        self.overlay_item.set_drawing(None)
        if source is not None:
            w, h = source.size
            self.overlay_item.set_bounds(w, h)
            self._update_scene_rect()
            source.frame_ready.connect(self._on_frame_ready)
            self._fit_mode = True
            self.fit()
            self._on_frame_changed(self.session.playhead.frame)

    def _on_closed(self) -> None:
        self.set_source(None)
        self.viewport().update()

    # -- overlays --

    def set_overlay(self, name: str, on: bool) -> None:
        if name not in OVERLAYS:
            raise KeyError(f"unknown overlay {name!r}; known: {', '.join(OVERLAYS)}")
        if (name in self.enabled) == bool(on):
            return
        (self.enabled.add if on else self.enabled.discard)(name)
        self.overlays_toggled.emit(name, bool(on))
        self.schedule_rebuild()

    def overlay_enabled(self, name: str) -> bool:
        return name in self.enabled

    def mesh_vertices(self) -> np.ndarray | None:
        """(514, 3) image-space vertices of the mesh as drawn now (edited controls)."""
        return None if self._drawing is None else self._drawing.vertices.copy()

    def schedule_rebuild(self, *_: object) -> None:
        self._rebuild_timer.start()

    def _on_curves_changed(self, control: str, start: int, stop: int) -> None:
        if self.shown_frame is not None and start <= self.shown_frame < stop:
            self.schedule_rebuild()

    def _rebuild_overlay(self) -> None:
        s = self.session
        i = self.shown_frame
        if i is None or s.tracking is None or s.geometry is None or not s.tracking.has_face[i]:
            self._drawing = None
            self.overlay_item.set_drawing(None)
            self.viewport().update()
            return
        t0 = time.perf_counter()
        enabled = self.enabled - {"mask"} if self.mask_override is not None and self.mask_override() else self.enabled
        self._drawing = FaceDrawing.build(s.geometry, s.tracking, i, s.controls_at(i), enabled)
        self.last_build_ms = (time.perf_counter() - t0) * 1000
        self.overlay_item.set_drawing(self._drawing)
        self.viewport().update()
        self.overlay_rebuilt.emit(i)

    # -- frames --

    def _on_frame_changed(self, frame: int) -> None:
        src = self.source
        if src is None:
            self.viewport().update()
            return
        direction = -1 if frame < self._last_request else 1
        self._last_request = frame
        img = src.get(frame)
        if img is not None:
            self._show(frame, img)
        else:
            src.request(frame, direction)
            self.viewport().update()  # HUD shows the wanted frame at once

    def _on_frame_ready(self, i: int, img: QImage) -> None:
        want = self.session.playhead.frame
        # Show it if it is the wanted frame or closer to it than what is on screen (playback
        # that decodes slower than real time advances instead of freezing).
        if self.shown_frame is None or abs(i - want) < abs(self.shown_frame - want) or i == want:
            self._show(i, img)

    def _show(self, i: int, img: QImage) -> None:
        changed = i != self.shown_frame
        self.frame_item.set_image(img, self.source.size if self.source is not None else None)
        self.shown_frame = i
        if changed or self._drawing is None:
            self._rebuild_overlay()
        self.viewport().update()
        self.frame_shown.emit(i)

    def _update_decode_scale(self, *_: object) -> None:
        """Frames are decoded at the size they are shown (device pixels); a zoom that needs
        more (or far fewer) pixels asks again for the frame on screen."""
        src = self.source
        if src is None:
            return
        t = self.transform()
        needed = max(abs(t.m11()), abs(t.m22())) * self.devicePixelRatioF()
        if src.set_view_scale(needed) and self.shown_frame is not None:
            src.request(self.session.playhead.frame)

    # -- zoom and pan --

    @property
    def zoom(self) -> float:
        """Screen pixels per image row (anamorphic shots are drawn ``sar`` times wider than that)."""
        return self.transform().m22()

    def pixel_aspect(self) -> float:
        """How much wider than tall the shot's pixels are displayed (anamorphic footage: > 1)."""
        info = getattr(self.session, "info", None)
        sar = float(getattr(info, "sar", 1) or 1)
        return sar if 0.1 < sar < 10 else 1.0

    def _fit_rect(self, rect: QRectF) -> None:
        """fitInView with the shot's pixel aspect: an anamorphic frame is shown unsqueezed (scene
        units stay image pixels, so every overlay, tool and mouse mapping is unchanged)."""
        sar = self.pixel_aspect()
        if sar == 1.0:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            return
        vw, vh = self.viewport().width(), self.viewport().height()
        if rect.isEmpty() or vw <= 0 or vh <= 0:
            return
        z = min(vw / (rect.width() * sar), vh / rect.height())
        self.setTransform(QTransform.fromScale(z * sar, z))
        self.centerOn(rect.center())

    def content_rect(self) -> QRectF:
        """The frame, or the frame and what a compare mode shows beside it (scene units)."""
        if self.source is None:
            return QRectF()
        w, h = self.source.size
        return QRectF(self.content_extent) if self.content_extent is not None else QRectF(0, 0, w, h)

    def set_content_extent(self, rect: QRectF | None) -> None:
        self.content_extent = None if rect is None else QRectF(rect)
        self._update_scene_rect()
        if self._fit_mode:
            self.fit()

    def _update_scene_rect(self) -> None:
        r = self.content_rect()
        if not r.isEmpty():
            self.setSceneRect(r.adjusted(-r.width(), -r.height(), r.width(), r.height()))  # room to pan past the edges

    def fit(self) -> None:
        """Whole frame in view (and keep fitting on resize until the user zooms)."""
        if self.source is None:
            return
        self._fit_rect(self.content_rect())
        self._fit_mode = True
        self.zoom_changed.emit(self.zoom)

    def frame_face(self, margin: float = 1.7) -> bool:
        """Zoom to the tracked face of the shown frame (its crop box, enlarged by ``margin``)."""
        s, i = self.session, self.shown_frame
        if s.tracking is None or i is None:
            return False
        cx, cy, side = (float(v) for v in s.tracking.crop[i])
        if not side > 0:
            return False
        half = side * margin / 2
        self._fit_rect(QRectF(cx - half, cy - half, 2 * half, 2 * half))
        self._fit_mode = False
        self.zoom_changed.emit(self.zoom)
        return True

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        z = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        factor = z / self.zoom
        if anchor is not None:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
            before = self.mapToScene(anchor.toPoint())
            self.scale(factor, factor)
            after = self.mapToScene(anchor.toPoint())
            self.translate(after.x() - before.x(), after.y() - before.y())
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        else:
            self.scale(factor, factor)
        self._fit_mode = False
        self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom * (1.25**steps), event.position())
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # -- heads-up display --

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        painter.setFont(font)
        lines = self._hud_lines()
        fm = painter.fontMetrics()
        y = 8 + fm.ascent()
        for text, color in lines:
            w = fm.horizontalAdvance(text)
            painter.fillRect(QRectF(6, y - fm.ascent() - 2, w + 8, fm.height() + 4), QColor(0, 0, 0, 150))
            painter.setPen(color)
            painter.drawText(QPointF(10, y), text)
            y += fm.height() + 6
        painter.restore()

    def _hud_lines(self) -> list[tuple[str, QColor]]:
        s = self.session
        white, amber, red, grey = QColor(235, 235, 235), QColor(255, 205, 80), QColor(255, 110, 110), QColor(170, 170, 170)
        if not s.is_open:
            return [("Open a video or a project (File ▸ Open Video…, Ctrl+O)", grey)]
        ph = s.playhead
        text = f"frame {ph.frame} / {ph.n_frames - 1}   {ph.timecode()}"
        if self.shown_frame is not None and self.shown_frame != ph.frame:
            text += f"   (decoding, showing {self.shown_frame})"
        lines = [(text, white)]
        if s.tracking is None:
            note = s.tracking_note or "not tracked yet"
            busy = note.startswith(("tracking…", "loading"))
            lines.append((note if busy else f"{note} — Shot ▸ Track Face (Ctrl+T)", amber))
        elif self.shown_frame is not None and not s.tracking.has_face[self.shown_frame]:
            lines.append(("no face on this frame (passed through untouched)", red))
        elif s.curves is not None:
            f = ph.frame
            jaw = float(s.curves.evaluate(JAW)[f])
            tracked = float(s.curves.tracked[f, JAW])
            edited = abs(jaw - tracked) > 1e-6
            lines.append((f"{CONTROL_NAMES[JAW]} {jaw:+.2f}" + (f"  (tracked {tracked:+.2f})" if edited else ""), amber if edited else white))
        if "grey" in self.enabled:
            lines.append(("grey-face preview (edited mesh)", grey))
        for provider in self.hud_providers:
            lines += provider()
        return lines
