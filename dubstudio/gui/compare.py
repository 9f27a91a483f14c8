"""Compare modes of the viewer: original | dubbed side by side, a wipe, and a toggle.

``CompareController`` owns the items it adds to the viewer's scene (the dubbed image, the wipe
divider, two tags), the View ▸ Compare actions and a HUD line. The dubbed image comes from
``DubbedFrames``: the neural renderer when the project has an adaptation (rendered in a worker,
"rendering…" and the grey-face preview as a placeholder until it arrives), else the grey-face
preview of the edited mesh composited on the frame. It follows the viewer (``frame_shown``),
never a frame number of its own; edits of the curves or the tracking invalidate the dubbed
frames they touch.

Modes (View ▸ Compare): Off (Alt+0), Side by Side (Alt+1), Wipe (Alt+2, drag the divider),
Toggle (Alt+3); Q flips original <-> dubbed in Toggle (and enters it from any other mode).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QFontMetricsF, QImage, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QMenu, QStyleOptionGraphicsItem, QToolButton, QWidget

from dubstudio.gui.dubbed_frames import DubbedFrames, grey_dubbed
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices


log = logging.getLogger(__name__)

MODES = ("off", "side", "wipe", "toggle")
MODE_LABELS = {"off": "Compare &Off", "side": "&Side by Side", "wipe": "&Wipe", "toggle": "&Toggle Original/Dubbed"}
MODE_KEYS = {"off": "Alt+0", "side": "Alt+1", "wipe": "Alt+2", "toggle": "Alt+3"}
FLIP_KEY = "Q"
SIDE_GAP = 0.02  # gap between the two images, in frame widths
HUD_NAMES = {"side": "side by side (original | dubbed)", "wipe": "wipe (original | dubbed; drag the divider)"}


class DubbedItem(QGraphicsItem):
    """The dubbed image, optionally clipped to the part right of ``clip_x`` (wipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.image: QImage | None = None
        self.clip_x: float | None = None
        self._rect = QRectF()
        self.setZValue(0.5)  # over the frame, under the overlays

    def set_image(self, image: QImage | None, size: tuple[int, int] | None = None) -> None:
        if image is None:
            rect = QRectF()
        else:  # drawn over the frame's size in image pixels (the image may be smaller: see gui/frames.py)
            w, h = size if size is not None else (image.width(), image.height())
            rect = QRectF(0, 0, w, h)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self.image = image
        self.update()

    def set_clip(self, x: float | None) -> None:
        self.clip_x = x
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.image is None:
            return
        scale = painter.worldTransform().m11() * self._rect.width() / max(1, self.image.width())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 0.999)
        if self.clip_x is not None:
            painter.setClipRect(QRectF(self.clip_x, 0, max(0.0, self._rect.width() - self.clip_x), self._rect.height()))
        painter.drawImage(self._rect, self.image)


class WipeDivider(QGraphicsObject):
    """A vertical line over the frame that the user drags sideways (``moved(x)``, image px)."""

    moved = Signal(float)
    GRAB_PX = 10  # half-width of the grab band, screen pixels

    def __init__(self) -> None:
        super().__init__()
        self.height = 0.0
        self.width = 0.0
        self.zoom = 1.0
        self.labels = ("ORIGINAL", "DUBBED")
        self.label_color = QColor(235, 235, 235)
        self.font = QFont()
        self.font.setPointSizeF(max(8.0, self.font.pointSizeF()))
        self.font.setBold(True)
        self.setZValue(3)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.SplitHCursor)

    def set_frame(self, width: float, height: float, zoom: float) -> None:
        self.prepareGeometryChange()
        self.width, self.height, self.zoom = float(width), float(height), max(zoom, 1e-6)

    def boundingRect(self) -> QRectF:  # noqa: N802
        tol = self.GRAB_PX / self.zoom
        return QRectF(-tol, 0, 2 * tol, self.height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        t = painter.worldTransform()
        top, bottom = t.map(QPointF(0, 0)), t.map(QPointF(0, self.height))
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 4))
        painter.drawLine(top, bottom)
        painter.setPen(QPen(QColor(255, 255, 255, 235), 2))
        painter.drawLine(top, bottom)
        mid = (top + bottom) / 2
        if widget is not None:  # the grip stays in the visible part of the line
            lo, hi = max(top.y(), 0.0), min(bottom.y(), float(widget.height()))
            if hi - lo > 160:
                mid.setY(hi - 60)  # low in the view, where it hides the least of a face
            elif lo < hi:
                mid.setY((lo + hi) / 2)
        self._paint_labels(painter, mid)
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1.5))
        painter.drawEllipse(mid, 9, 9)
        painter.setPen(QPen(QColor(40, 40, 40), 1.5))
        for sgn in (-1, 1):  # the two arrow heads of the grip
            tip = mid + QPointF(sgn * 6, 0)
            painter.drawLine(tip, tip + QPointF(-sgn * 3, -3))
            painter.drawLine(tip, tip + QPointF(-sgn * 3, 3))
        painter.restore()

    def _paint_labels(self, painter: QPainter, grip: QPointF) -> None:
        fm = QFontMetricsF(self.font)
        painter.setFont(self.font)
        for k, text in enumerate(self.labels):
            w, h = fm.horizontalAdvance(text) + 12, fm.height() + 6
            x = grip.x() - 16 - w if k == 0 else grip.x() + 16
            box = QRectF(x, grip.y() - h / 2, w, h)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 170))
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(self.label_color if k == 1 else QColor(235, 235, 235))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
        else:
            event.ignore()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        x = min(max(event.scenePos().x(), 0.0), self.width)
        self.setPos(x, 0)
        self.moved.emit(x)


class TagItem(QGraphicsItem):
    """A small label just above-right of a scene point (an image's bottom-left corner),
    constant size on screen (ORIGINAL / DUBBED)."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.color = QColor(235, 235, 235)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(4)
        self.font = QFont()
        self.font.setPointSizeF(max(8.0, self.font.pointSizeF()))
        self.font.setBold(True)

    def set_text(self, text: str, color: QColor | None = None) -> None:
        self.prepareGeometryChange()
        self.text = text
        if color is not None:
            self.color = color
        self.update()

    def _box(self) -> QRectF:
        fm = QFontMetricsF(self.font)
        w, h = fm.horizontalAdvance(self.text) + 12, fm.height() + 6
        return QRectF(8, -h - 8, w, h)

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._box().adjusted(-1, -1, 1, 1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.text:
            return
        box = self._box()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(box, 4, 4)
        painter.setFont(self.font)
        painter.setPen(self.color)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.text)


class CompareController(QObject):
    """Compare modes for one main window (see the module docstring)."""

    mode_changed = Signal(str)
    dubbed_shown = Signal(int)  # the final dubbed image of this frame is on screen

    def __init__(self, session: ShotSession, viewer, services: EditorServices, masks=None, parent: QObject | None = None) -> None:
        """``masks``: the mask editor's controller (gui/mask_controller.py), whose live layer the
        dubbed view composites with; None: the saved mask."""
        super().__init__(parent)
        self.services = services
        self.viewer = v = viewer
        self.session = s = session
        self.mode = "off"
        self.showing_dubbed = True  # toggle mode
        self.wipe_fraction = 0.5
        self.shown_final: int | None = None  # frame whose final dubbed image is on screen
        self.provider = DubbedFrames(s, device=services.device, parent=self)
        self.provider.display_size = lambda: None if viewer.source is None else viewer.source.display_size
        # show what the export will make: the export dialog's skin-detail switch
        settings = services.settings
        self.provider.detail = lambda: 0.0 if str(settings.value("export/detail", "true")).lower() == "false" else 1.0
        self._revision = 0
        self._grey_cache: tuple[int, int, QImage] | None = None
        self._last_frame = 0

        self.dubbed_item = DubbedItem()
        self.divider = WipeDivider()
        self.tag_left, self.tag_right = TagItem(), TagItem()
        for item in (self.dubbed_item, self.divider, self.tag_left, self.tag_right):
            item.setVisible(False)
            v.scene().addItem(item)
        self.divider.moved.connect(self._on_wipe_moved)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.update_view)

        v.frame_shown.connect(lambda _i: self.schedule())
        v.zoom_changed.connect(lambda _z: self._layout())
        s.curves_changed.connect(lambda _c, a, b: self._on_changed(a, b))
        s.tracking_corrected.connect(self._on_changed)
        s.tracking_changed.connect(self._on_tracking_changed)
        s.shot_closed.connect(self._on_closed)
        self.provider.ready.connect(self._on_ready)
        self.provider.state_changed.connect(self.schedule)
        services.jobs.job_finished.connect(lambda _j: self.mode != "off" and self.provider.refresh())
        if masks is not None:  # the mask editor's live layer
            self.provider.user_mask = lambda: masks.layer
            masks.changed.connect(self._on_mask_changed)
        v.hud_providers.append(self._hud)
        self.actions = self._build_actions()

    # -- actions and menu --

    def _build_actions(self) -> dict[str, QAction]:
        sv = self.services
        group = QActionGroup(self)
        group.setExclusive(True)
        acts: dict[str, QAction] = {}
        for mode in MODES:
            a = sv.new_action(f"compare_{mode}", MODE_LABELS[mode], lambda _on=False, m=mode: self.set_mode(m),
                              QKeySequence(MODE_KEYS[mode]), checkable=True)
            a.setStatusTip(f"Compare: {MODE_LABELS[mode].replace('&', '').lower()} ({MODE_KEYS[mode]})")
            group.addAction(a)
            acts[f"compare_{mode}"] = a
        acts["compare_off"].setChecked(True)
        flip = sv.new_action("compare_flip", "&Flip Original/Dubbed", self.flip, QKeySequence(FLIP_KEY))
        flip.setStatusTip(f"Show the other side in Toggle mode ({FLIP_KEY})")
        acts["compare_flip"] = flip

        menu = QMenu("&Compare", sv.parent)
        menu.addActions([acts[f"compare_{m}"] for m in MODES])
        menu.addSeparator()
        menu.addAction(flip)
        self.menu = menu
        view = sv.menu("&View")
        view.addSeparator()
        view.addMenu(menu)
        tb = sv.toolbar()
        if tb is not None:
            button = QToolButton(tb)
            button.setText("Compare")
            button.setToolTip("Compare original and dubbed: off, side by side, wipe, toggle (Alt+0…3, Q flips)")
            button.setMenu(menu)
            button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            tb.addSeparator()
            tb.addWidget(button)
            self.button = button
        return acts

    # -- modes --

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise KeyError(f"unknown compare mode {mode!r}; known: {', '.join(MODES)}")
        self.actions[f"compare_{mode}"].setChecked(True)
        if mode == self.mode:
            return
        self.mode = mode
        if mode != "off":
            self.provider.refresh()
        self.shown_final = None
        self.update_view()
        self.mode_changed.emit(mode)

    def flip(self) -> None:
        """Toggle mode: original <-> dubbed; from another mode: Toggle showing the dubbed side."""
        if self.mode != "toggle":
            self.showing_dubbed = True
            self.set_mode("toggle")
            return
        self.showing_dubbed = not self.showing_dubbed
        self.update_view()
        self.mode_changed.emit(self.mode)

    # -- following the models --

    def schedule(self, *_: object) -> None:
        if self.mode != "off":
            self._timer.start()

    def _on_changed(self, start: int, stop: int) -> None:
        self.provider.invalidate(start, stop)
        self._revision += 1
        i = self.viewer.shown_frame
        if i is not None and start - 1 <= i < stop + 1:
            self.shown_final = None
            self.schedule()

    def _on_mask_changed(self, frames) -> None:
        self.provider.mask_changed(frames)
        i = self.viewer.shown_frame
        if i is not None and (frames is None or frames[0] - 1 <= i < frames[1] + 1):
            self.shown_final = None
            self.schedule()

    def _on_tracking_changed(self) -> None:
        self._revision += 1
        self.provider.invalidate_all()
        if self.mode != "off":
            self.provider.refresh()
        self.schedule()

    def _on_closed(self) -> None:
        self.provider.close(wait=False)
        self._grey_cache = None
        self.update_view()

    def _on_ready(self, i: int) -> None:
        if i == self.viewer.shown_frame:
            self.update_view()

    def _on_wipe_moved(self, x: float) -> None:
        src = self.viewer.source
        if src is not None and src.size[0] > 0:
            self.wipe_fraction = x / src.size[0]
        self.dubbed_item.set_clip(x)
        self._layout_tags()

    # -- drawing --

    def _grey(self, i: int, frame: QImage) -> QImage:
        c = self._grey_cache
        if c is not None and c[0] == i and c[1] == self._revision:
            return c[2]
        img = grey_dubbed(frame, self.session, i, self.viewer.source.size if self.viewer.source is not None else None)
        self._grey_cache = (i, self._revision, img)
        return img

    def update_view(self) -> None:
        v = self.viewer
        i = v.shown_frame
        items = (self.dubbed_item, self.divider, self.tag_left, self.tag_right)
        if self.mode == "off" or i is None or v.source is None or v.frame_item.image is None:
            for item in items:
                item.setVisible(False)
            self.dubbed_item.set_image(None)
            if v.content_extent is not None:
                v.set_content_extent(None)
            v.viewport().update()
            return
        p = self.provider
        if p.kind == "none" and self.session.tracking is not None:
            p.refresh()
        final = True
        img = None
        if p.kind == "neural":
            patch = p.get(i)
            img = None if patch is None else patch.over(v.frame_item.image)
            if img is None:
                if i not in p.errors:
                    final = False
                    direction = -1 if i < self._last_frame else 1
                    p.request(i, direction)
        self._last_frame = i
        if img is None:
            img = self._grey(i, v.frame_item.image)  # the grey face, or a placeholder while rendering
        self.dubbed_item.set_image(img, v.source.size)
        self._layout()
        v.viewport().update()
        if final:
            self.shown_final = i
            self.dubbed_shown.emit(i)
        else:
            self.shown_final = None

    def _layout(self) -> None:
        v, mode = self.viewer, self.mode
        if mode == "off" or v.source is None:
            return
        w, h = v.source.size
        item = self.dubbed_item
        if mode == "side":
            gap = round(SIDE_GAP * w)
            item.setPos(w + gap, 0)
            item.set_clip(None)
            item.setVisible(True)
            self.divider.setVisible(False)
            extent = QRectF(0, 0, 2 * w + gap, h)
        elif mode == "wipe":
            x = self.wipe_fraction * w
            item.setPos(0, 0)
            item.set_clip(x)
            item.setVisible(True)
            self.divider.set_frame(w, h, v.zoom)
            self.divider.setPos(x, 0)
            self.divider.setVisible(True)
            extent = None
        else:
            item.setPos(0, 0)
            item.set_clip(None)
            item.setVisible(self.showing_dubbed)
            self.divider.setVisible(False)
            extent = None
        if (extent is None) != (v.content_extent is None) or (extent is not None and extent != v.content_extent):
            v.set_content_extent(extent)
        self._layout_tags()

    def _dubbed_tag(self) -> tuple[str, QColor]:
        p = self.provider
        i = self.viewer.shown_frame
        if p.kind == "neural":
            if i is not None and p.is_pending(i):
                return "DUBBED · rendering…", QColor(255, 205, 80)
            return "DUBBED · neural", QColor(235, 235, 235)
        return "DUBBED · grey-face preview", QColor(200, 200, 200)

    def _layout_tags(self) -> None:
        v, mode = self.viewer, self.mode
        if v.source is None or mode == "off":
            return
        w, h = v.source.size
        left, right = self.tag_left, self.tag_right
        text, color = self._dubbed_tag()
        if mode == "side":
            left.set_text("ORIGINAL")
            left.setPos(0, h)
            right.set_text(text, color)
            right.setPos(w + round(SIDE_GAP * w), h)
        else:  # the wipe divider labels its sides; Toggle says it in the HUD
            self.divider.labels = ("ORIGINAL", text)
            self.divider.label_color = color
            self.divider.update()
        left.setVisible(mode == "side")
        right.setVisible(mode == "side")

    def _hud(self) -> list[tuple[str, QColor]]:
        if self.mode == "off" or not self.session.is_tracked:
            return []
        white, amber, grey = QColor(235, 235, 235), QColor(255, 205, 80), QColor(170, 170, 170)
        if self.mode == "toggle":
            name = f"toggle: showing {'DUBBED' if self.showing_dubbed else 'ORIGINAL'} ({FLIP_KEY} flips)"
        else:
            name = HUD_NAMES[self.mode]
        lines = [(f"compare: {name}", white)]
        p = self.provider
        i = self.viewer.shown_frame
        desc = p.description or ("neural renderer" if p.kind == "neural" else "grey-face preview of the edited mesh")
        if p.kind == "neural" and i is not None and p.is_pending(i):
            lines.append((f"dubbed: {desc} · {p.status or 'rendering…'} (grey face until it arrives)", amber))
        else:
            lines.append((f"dubbed: {desc}", grey))
        if p.kind == "grey" and p.status:
            lines.append((p.status, amber))
        if i is not None and i in p.errors:
            lines.append((p.errors[i], amber))
        return lines

    def shutdown(self) -> None:
        self._timer.stop()
        self.provider.close(wait=True)
