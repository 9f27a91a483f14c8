"""The curve editor plot: tracked curve (faded) under the edited curve, draggable keyframes.

Mouse (in the plot): click a key to select it, click elsewhere to move the playhead, drag a key
to move it in time and value (Shift: value only), double-click to add a key, right-click for
visemes, resets and interpolation; wheel zooms time, middle-drag pans. Every change is a core
edit pushed through the session: one drag is one ``MoveKey`` merged into one undo step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor

from dubstudio.core.curves import Key

KEY_HIT_PX = 9.0
TRACKED_PEN = pg.mkPen(QColor(150, 150, 160, 140), width=1.5, style=Qt.PenStyle.DashLine)
UNDERLYING_PEN = pg.mkPen(QColor(120, 190, 255, 170), width=1.2, style=Qt.PenStyle.DotLine)
EDITED_PEN = pg.mkPen(QColor(255, 196, 60), width=2.2)
KEY_BRUSH = pg.mkBrush(255, 196, 60)
KEY_SELECTED_BRUSH = pg.mkBrush(255, 255, 255)
NEUTRAL_KEY_BRUSH = pg.mkBrush(40, 40, 44)
KEY_PEN = pg.mkPen(QColor(30, 30, 30), width=1.2)
NEUTRAL_KEY_PEN = pg.mkPen(QColor(255, 196, 60), width=1.5)


class CurveViewBox(pg.ViewBox):
    """ViewBox whose mouse handling edits keys through the owning editor's callbacks."""

    def __init__(self, editor: CurveEditor) -> None:
        super().__init__(enableMenu=False)
        self.editor = editor
        self.setMouseEnabled(x=True, y=False)
        self._drag_key: int | None = None
        self.setAcceptHoverEvents(True)

    def _view(self, scene_pos: QPointF) -> tuple[float, float]:
        p = self.mapSceneToView(scene_pos)
        return p.x(), p.y()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        x, y = self._view(ev.scenePos())
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            hit = self.editor.key_near(ev.scenePos())
            if ev.double():
                if hit is None:
                    self.editor.on_double_click(x, y)
                return
            self.editor.on_click(x, hit)
        elif ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            hit = self.editor.key_near(ev.scenePos())
            self.editor.on_context_menu(x, hit, ev.screenPos())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        x, y = self._view(ev.scenePos())
        if ev.isStart():
            self._drag_key = self.editor.key_near(ev.buttonDownScenePos())
            if self._drag_key is not None:
                self.editor.begin_drag(self._drag_key)
        if self._drag_key is not None:
            lock_frame = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self.editor.drag_to(x, y, lock_frame)
            if ev.isFinish():
                self.editor.end_drag()
                self._drag_key = None
        else:
            self.editor.on_click(x, None)  # dragging on empty space scrubs

    def hoverEvent(self, ev) -> None:  # noqa: N802
        if ev.isExit():
            self.unsetCursor()
            return
        near = self.editor.key_near(ev.scenePos()) is not None
        self.setCursor(QCursor(Qt.CursorShape.SizeAllCursor if near else Qt.CursorShape.CrossCursor))


class CurveEditor:
    """Draws one control's curves and keys into a PlotItem and turns gestures into edits.

    ``callbacks`` are provided by the timeline: ``select(frame|None)``, ``seek(frame)``,
    ``add_key(frame, value)``, ``begin_drag(frame)``, ``drag(frame, value)``, ``end_drag()``,
    ``menu(frame, key_frame|None, screen_pos)``, ``sync()`` (apply a pending redraw now).
    """

    def __init__(self, plot: pg.PlotItem, callbacks: dict[str, Callable]) -> None:
        self.plot = plot
        self.cb = callbacks
        self.tracked = pg.PlotDataItem(pen=TRACKED_PEN, name="tracked")
        self.underlying = pg.PlotDataItem(pen=UNDERLYING_PEN, name="driven")
        self.edited = pg.PlotDataItem(pen=EDITED_PEN, name="edited")
        self.keys = pg.ScatterPlotItem(size=13, symbol="d", pxMode=True)
        self.keys.setZValue(10)
        for item in (self.tracked, self.underlying, self.edited, self.keys):
            plot.addItem(item)
        self.key_frames = np.zeros(0, int)
        self.key_values = np.zeros(0)
        self.selected: int | None = None
        self._range = (-1.0, 1.0)

    @property
    def vb(self) -> CurveViewBox:
        return self.plot.getViewBox()

    def set_data(self, tracked: np.ndarray, underlying: np.ndarray | None, edited: np.ndarray, keys: tuple[Key, ...], soft_range: tuple[float, float]) -> None:
        x = np.arange(len(edited), dtype=float)
        self.tracked.setData(x, tracked)
        if underlying is None:
            self.underlying.setData([], [])
        else:
            self.underlying.setData(x, underlying)
        self.edited.setData(x, edited)
        self.key_frames = np.array([k.frame for k in keys], dtype=int)
        self.key_values = edited[self.key_frames] if len(keys) else np.zeros(0)
        if self.selected is not None and self.selected not in self.key_frames:
            self.selected = None
        spots = []
        for k, v in zip(keys, self.key_values):
            sel = k.frame == self.selected
            neutral = k.mode == "offset"
            spots.append({
                "pos": (k.frame, float(v)),
                "data": k.frame,
                "symbol": "o" if neutral else "d",
                "size": (10 if neutral else 13) + (3 if sel else 0),
                "brush": KEY_SELECTED_BRUSH if sel else (NEUTRAL_KEY_BRUSH if neutral else KEY_BRUSH),
                "pen": NEUTRAL_KEY_PEN if neutral else KEY_PEN,
            })
        self.keys.setData(spots)
        if soft_range != self._range:
            self._range = soft_range
            lo, hi = soft_range
            pad = 0.08 * (hi - lo)
            self.vb.setYRange(lo - pad, hi + pad, padding=0)

    def key_near(self, scene_pos: QPointF) -> int | None:
        """Frame of the key within ``KEY_HIT_PX`` screen pixels of ``scene_pos`` (the nearest)."""
        self.cb["sync"]()  # a redraw may still be pending: hit-test what the curves hold now
        if not len(self.key_frames):
            return None
        best, best_d = None, KEY_HIT_PX
        for f, v in zip(self.key_frames, self.key_values):
            p = self.vb.mapViewToScene(QPointF(float(f), float(v)))
            d = float(np.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y()))
            if d <= best_d:
                best, best_d = int(f), d
        return best

    # -- gestures (called by the view box) --

    def on_click(self, x: float, key: int | None) -> None:
        if key is not None:
            self.cb["select"](key)
            self.cb["seek"](key)
        else:
            self.cb["select"](None)
            self.cb["seek"](int(round(x)))

    def on_double_click(self, x: float, y: float) -> None:
        self.cb["add_key"](int(round(x)), y)

    def on_context_menu(self, x: float, key: int | None, screen_pos) -> None:
        self.cb["menu"](int(round(x)), key, screen_pos)

    def begin_drag(self, frame: int) -> None:
        self.cb["begin_drag"](frame)

    def drag_to(self, x: float, y: float, lock_frame: bool) -> None:
        self.cb["drag"](None if lock_frame else int(round(x)), y)

    def end_drag(self) -> None:
        self.cb["end_drag"]()
