"""Mask painting (issue 5): brush the mouth-region mask on the frame, in the face's UV space.

``MaskTool`` is the mode of the main window: a dock (``MaskPanel``), actions (B toggles the
mode, [ and ] change the brush size, X swaps paint/erase), an event filter on the viewer's
viewport (left drag paints, Alt or right drag erases, middle drag pans; the wheel still zooms)
and ``MaskOverlayItem``, which shows the *effective* mask (automatic + edits, what compositing
uses) as a tint with its 0.5 outline, what the edits removed in red, and the brush circle.
While it draws the mask, the viewer's own region tint is left out (``QtViewer.mask_override``).
The edits themselves, their storage and the per-frame mappings are ``MaskController``'s.
"""

from __future__ import annotations


import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QImage, QKeySequence, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QDockWidget, QGraphicsItem, QGraphicsView, QStyleOptionGraphicsItem, QWidget

from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices
from dubstudio.gui.mask_controller import MAP_RESOLUTION, MaskController
from dubstudio.gui.mask_panel import MaskPanel
from dubstudio.masks.layer import ClearMask, SetGrow


INCLUDED_RGB = np.array([70.0, 150.0, 255.0])
ERASED_RGB = np.array([255.0, 70.0, 70.0])
INCLUDED_ALPHA, ERASED_ALPHA = 0.42, 0.38
OUTLINE_COLOR = QColor(140, 205, 255, 230)
BRUSH_COLORS = {1.0: QColor(255, 255, 255), -1.0: QColor(255, 110, 110), 0.0: QColor(255, 215, 90)}


# --------------------------------------------------------------------------------------------
# The overlay


def tint_image(effective: np.ndarray, auto: np.ndarray) -> QImage:
    """RGBA tint: the effective mask in blue, what the edits removed from the automatic mask in red."""
    a_in = INCLUDED_ALPHA * effective
    a_out = ERASED_ALPHA * np.clip(auto - effective, 0.0, 1.0)
    total = np.clip(a_in + a_out, 0.0, 1.0)
    w_in = np.divide(a_in, a_in + a_out, out=np.ones_like(a_in), where=(a_in + a_out) > 0)
    rgb = w_in[..., None] * INCLUDED_RGB + (1.0 - w_in[..., None]) * ERASED_RGB
    rgba = np.empty((*effective.shape, 4), np.uint8)
    rgba[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.round(total * 255).astype(np.uint8)
    h, w = effective.shape
    rgba = np.ascontiguousarray(rgba)
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def outline_path(effective: np.ndarray) -> QPainterPath:
    """The 0.5 contour of the mask in crop pixels."""
    contours, _ = cv2.findContours((effective >= 0.5).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for c in contours:
        pts = c[:, 0, :].astype(np.float64) + 0.5
        if len(pts) < 2:
            continue
        path.moveTo(*pts[0])
        for x, y in pts[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
    return path


class MaskOverlayItem(QGraphicsItem):
    """The effective mask over the frame (drawn into the crop box) and the brush circle."""

    def __init__(self) -> None:
        super().__init__()
        self.image: QImage | None = None
        self.outline: QPainterPath | None = None
        self.box: QRectF | None = None  # the crop in image pixels
        self.resolution = MAP_RESOLUTION
        self.brush_centre: QPointF | None = None
        self.brush_radius = 0.0
        self.brush_color = QColor(255, 255, 255)
        self._rect = QRectF()
        self.setZValue(0.5)  # over the frame, under the mesh and landmarks

    def set_bounds(self, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(-0.5 * width, -0.5 * height, 2.0 * width, 2.0 * height)

    def set_mask(self, image: QImage | None, box: QRectF | None = None, outline: QPainterPath | None = None) -> None:
        self.image, self.box, self.outline = image, box, outline
        self.update()

    def set_brush(self, centre: QPointF | None, radius: float = 0.0, color: QColor | None = None) -> None:
        self.brush_centre, self.brush_radius = centre, radius
        if color is not None:
            self.brush_color = color
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.image is not None and self.box is not None:
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.translate(self.box.topLeft())
            k = self.box.width() / self.resolution
            painter.scale(k, k)
            painter.drawImage(QRectF(0, 0, self.resolution, self.resolution), self.image)
            if self.outline is not None:
                pen = QPen(OUTLINE_COLOR, 1.3)
                pen.setCosmetic(True)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(self.outline)
            painter.restore()
        if self.brush_centre is not None and self.brush_radius > 0:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for color, width in ((QColor(0, 0, 0, 160), 3.0), (self.brush_color, 1.4)):
                pen = QPen(color, width)
                pen.setCosmetic(True)
                painter.setPen(pen)
                painter.drawEllipse(self.brush_centre, self.brush_radius, self.brush_radius)


# --------------------------------------------------------------------------------------------
# The mode


class MaskTool(QObject):
    """The mask-painting mode of the main window (see the module docstring)."""

    mode_changed = Signal(bool)
    overlay_updated = Signal(int)  # the effective mask shown was rebuilt for this frame
    stroke_finished = Signal(object)  # the MaskEdit pushed, or None if the stroke changed nothing

    def __init__(self, session: ShotSession, viewer, services: EditorServices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.session = session
        self.viewer = viewer
        self.controller = MaskController(self.session, self)
        self.active = False
        self._drawing_mask = False
        self._pan_from: QPointF | None = None
        self._hover: QPointF | None = None
        self._alt_erase = False

        self.item = MaskOverlayItem()
        self.viewer.scene().addItem(self.item)
        self.panel = MaskPanel()
        self.dock = QDockWidget("Mask", services.parent)
        self.dock.setObjectName("mask_dock")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        services.add_dock(self.dock)  # shares the right column as a tab, full height
        services.modes.join("mask", lambda: self.active, self.set_active)
        self.dock.hide()

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self._refresh)

        self._build_actions()
        self._connect()
        vp = self.viewer.viewport()
        vp.setMouseTracking(True)
        vp.installEventFilter(self)
        self.viewer.mask_override = self.draws_mask
        self._update_enabled()

    # -- wiring --

    def _build_actions(self) -> None:
        sv = self.services

        def act(key: str, text: str, slot, shortcut: str, checkable: bool = False, tip: str = "") -> QAction:
            return sv.new_action(key, text, slot, QKeySequence(shortcut), checkable=checkable, tip=tip)

        self.mode_action = act("mask_mode", "Paint &Mask", self.set_active, "B", checkable=True,
                               tip="Paint or erase the mouth-region mask on the face (B)")
        self.bigger_action = act("mask_bigger", "Bigger Brush", lambda: self.scale_brush(1.25), "]")
        self.smaller_action = act("mask_smaller", "Smaller Brush", lambda: self.scale_brush(1 / 1.25), "[")
        self.swap_action = act("mask_swap", "Swap Paint/Erase", self.swap_mode, "X")
        self.clear_action = act("mask_clear", "Clear Mask Edits", self.clear, "Ctrl+Shift+Backspace")
        menu = sv.menu("&Mask")
        menu.addAction(self.mode_action)
        menu.addSeparator()
        menu.addActions([self.bigger_action, self.smaller_action, self.swap_action])
        menu.addSeparator()
        menu.addAction(self.clear_action)
        sv.add_to_toolbar(self.mode_action)

    def _connect(self) -> None:
        s, c, v, p = self.session, self.controller, self.viewer, self.panel
        c.changed.connect(self._on_mask_changed)
        c.frame_ready.connect(lambda i: self.schedule_refresh() if i == v.shown_frame else None)
        c.warning.connect(lambda msg: self.services.messages.show_message(msg, "warning"))
        v.frame_shown.connect(self.schedule_refresh)
        v.overlays_toggled.connect(lambda name, _on: self._sync_override() if name == "mask" else None)
        s.curves_changed.connect(lambda _c, a, b: self.schedule_refresh() if v.shown_frame is not None and a <= v.shown_frame < b else None)
        for sig in (s.tracking_changed, s.shot_opened, s.shot_closed):
            sig.connect(self._update_enabled)
            sig.connect(self._sync_override)
        corrected = getattr(s, "tracking_corrected", None)
        if corrected is not None:
            corrected.connect(lambda *_: self.schedule_refresh())
        s.playhead.range_changed.connect(lambda *_: self._update_panel())
        s.playhead.shot_changed.connect(lambda *_: self._update_panel())
        p.grow_changed.connect(self.set_grow)
        p.clear_requested.connect(self.clear)
        p.done_requested.connect(lambda: self.set_active(False))
        p.mode_group.idClicked.connect(lambda _id: self._update_brush())
        p.size_spin.valueChanged.connect(lambda _v: self._update_brush())

    def _update_enabled(self, *_: object) -> None:
        ok = self.session.is_tracked
        self.mode_action.setEnabled(ok)
        if not ok and self.active:
            self.set_active(False)
        for a in (self.bigger_action, self.smaller_action, self.swap_action):
            a.setEnabled(self.active)
        self.clear_action.setEnabled(ok)
        self._update_panel()

    # -- the mode --

    def set_active(self, on: bool) -> None:
        on = bool(on)
        if on and not self.session.is_tracked:
            self.mode_action.setChecked(False)
            self.services.messages.show_message("Track the face before painting its mask (Shot ▸ Track Face).", "info", 6000)
            return
        if on == self.active:
            self.mode_action.setChecked(on)
            return
        self.active = on
        self.mode_action.setChecked(on)
        v = self.viewer
        if on:
            self.services.modes.entering("mask")  # one mouse mode at a time
            v.setDragMode(QGraphicsView.DragMode.NoDrag)
            v.viewport().setCursor(Qt.CursorShape.CrossCursor)
            if not v.overlay_enabled("mask"):
                v.set_overlay("mask", True)
            self.dock.show()
            self.dock.raise_()
        else:
            self.controller.cancel_stroke()
            self._pan_from = None
            v.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            v.viewport().unsetCursor()
            self.item.set_brush(None)
            self.dock.hide()
        self._update_enabled()
        self._sync_override()
        self.mode_changed.emit(on)

    def draws_mask(self) -> bool:
        """This tool (not the viewer's region tint) draws the mask overlay now."""
        layer = self.controller.layer
        return (self.viewer.overlay_enabled("mask") and layer is not None and self.session.tracking is not None
                and (self.active or not layer.is_empty))

    def _sync_override(self, *_: object) -> None:
        now = self.draws_mask()
        if now != self._drawing_mask:
            self._drawing_mask = now
            self.viewer.schedule_rebuild()
        self.schedule_refresh()

    def _on_mask_changed(self, frames) -> None:
        self._sync_override()
        self._update_panel()

    def schedule_refresh(self, *_: object) -> None:
        self._refresh_timer.start()

    def _refresh(self) -> None:
        v, s = self.viewer, self.session
        i = v.shown_frame
        if not self.draws_mask() or i is None or s.tracking is None:
            self.item.set_mask(None)
            return
        if v.source is not None:
            w, h = v.source.size
            if self.item.boundingRect().width() != 2.0 * w:
                self.item.set_bounds(w, h)
        got = self.controller.effective(i)
        if got is None:
            return  # being computed: frame_ready schedules another refresh
        eff, data = got
        if not data.has_face:
            self.item.set_mask(None)
        else:
            cx, cy, side = (float(x) for x in data.maps[0].box)
            box = QRectF(cx - side / 2, cy - side / 2, side, side)
            self.item.set_mask(tint_image(eff, data.auto), box, outline_path(eff))
        self.overlay_updated.emit(i)

    # -- brush --

    def _brush_value(self, swap: bool = False) -> float:
        v = self.panel.brush_value
        if swap and v != 0.0:
            v = -v
        return v

    def _update_brush(self) -> None:
        if self._hover is None or not self.active:
            self.item.set_brush(None)
            return
        value = self._brush_value(self._alt_erase)
        self.item.set_brush(self._hover, self.panel.radius, BRUSH_COLORS[value])

    def hover(self, x: float, y: float) -> None:
        """Show the brush circle at image position (x, y) (what a mouse move over the frame does)."""
        self._hover = QPointF(x, y)
        self._update_brush()

    def scale_brush(self, factor: float) -> None:
        r = self.panel.radius
        new = r * factor
        if abs(new - r) < 1:
            new = r + (1 if factor > 1 else -1)
        self.panel.set_radius(new)
        self._update_brush()

    def swap_mode(self) -> None:
        self.panel.set_mode({"paint": "erase", "erase": "paint"}.get(self.panel.mode, "paint"))
        self._update_brush()

    def stroke_frames(self) -> tuple[int, int] | None:
        ph = self.session.playhead
        if self.panel.range_only and ph.has_range:
            return ph.in_point, ph.out_point + 1
        return None

    def set_grow(self, px: float) -> None:
        layer = self.controller.layer
        if layer is None or float(px) == layer.grow_px:
            return
        self.controller.push(SetGrow(px))

    def clear(self) -> None:
        layer = self.controller.layer
        if layer is None:
            return
        frames = self.stroke_frames()
        if frames is None:
            if layer.is_empty:
                return
            self.controller.push(ClearMask())
        elif layer.range_layer(frames) is not None:
            self.controller.push(ClearMask(frames))

    def _update_panel(self) -> None:
        p, ph, layer = self.panel, self.session.playhead, self.controller.layer
        p.set_range((ph.in_point, ph.out_point) if self.session.is_open and ph.has_range else None)
        if layer is None:
            p.set_info("")
            return
        p.set_grow(layer.grow_px)
        n = len(layer.ranges)
        if layer.is_empty:
            text = "No edits: the automatic mask is used."
        else:
            parts = ["edits on all frames" if not layer.base.is_empty else "no edits on all frames"]
            if n:
                parts.append(f"{n} range override{'s' if n != 1 else ''} (" + ", ".join(f"{r.start}–{r.stop - 1}" for r in layer.ranges[:4]) + ("…" if n > 4 else "") + ")")
            if layer.grow_px:
                parts.append(f"{'grown' if layer.grow_px > 0 else 'shrunk'} {abs(layer.grow_px):g} px")
            text = "Mask: " + "; ".join(parts) + "."
        p.set_info(text)

    # -- mouse on the viewer --

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802
        if not self.active:
            return False
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress:
            return self._press(ev)
        if t == QEvent.Type.MouseMove:
            return self._move(ev)
        if t == QEvent.Type.MouseButtonRelease:
            return self._release(ev)
        if t == QEvent.Type.MouseButtonDblClick:
            return True
        if t == QEvent.Type.Leave:
            self._hover = None
            self._update_brush()
        return False

    def _scene_pos(self, ev) -> QPointF:
        return self.viewer.mapToScene(ev.position().toPoint())

    def _press(self, ev) -> bool:
        b = ev.button()
        if b == Qt.MouseButton.MiddleButton:
            self._pan_from = ev.position()
            self.viewer.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return True
        if b not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) or self.controller.stroking:
            return True
        i = self.viewer.shown_frame
        pos = self._scene_pos(ev)
        self._hover = pos
        self._alt_erase = b == Qt.MouseButton.RightButton or bool(ev.modifiers() & Qt.KeyboardModifier.AltModifier)
        self._update_brush()
        if i is None:
            return True
        ok = self.controller.begin_stroke(i, (pos.x(), pos.y()), self.panel.radius, self.panel.feather,
                                          self._brush_value(self._alt_erase), self.stroke_frames())
        if not ok:
            self.services.status("No face on this frame: nothing to paint.", 3000)
        return True

    def _move(self, ev) -> bool:
        if self._pan_from is not None:
            d = ev.position() - self._pan_from
            self._pan_from = ev.position()
            h, vbar = self.viewer.horizontalScrollBar(), self.viewer.verticalScrollBar()
            h.setValue(h.value() - int(round(d.x())))
            vbar.setValue(vbar.value() - int(round(d.y())))
            return True
        pos = self._scene_pos(ev)
        self._hover = pos
        if not self.controller.stroking:
            self._alt_erase = bool(ev.modifiers() & Qt.KeyboardModifier.AltModifier)
        self._update_brush()
        self.controller.extend_stroke((pos.x(), pos.y()))
        return True

    def _release(self, ev) -> bool:
        if ev.button() == Qt.MouseButton.MiddleButton and self._pan_from is not None:
            self._pan_from = None
            self.viewer.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return True
        if self.controller.stroking:
            edit = self.controller.end_stroke()
            self._alt_erase = bool(ev.modifiers() & Qt.KeyboardModifier.AltModifier)
            self._update_brush()
            self.stroke_finished.emit(edit)
        return True

    # -- the window's save / autosave / recovery / quit --

    def save(self) -> str | None:
        return self.controller.save()

    def autosave(self) -> str | None:
        return self.controller.autosave()

    def discard_autosave(self) -> None:
        self.controller.discard_autosave()

    def shutdown(self) -> None:
        self.controller.cancel_stroke()
        self.controller.shutdown()
