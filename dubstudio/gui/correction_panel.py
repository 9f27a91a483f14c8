"""What the tracking correction mode draws and shows: the handle layer and the dock panel.

``HandleLayer`` draws the handles and their contours at a constant size on screen and routes a
press on a handle to the tool (``gui/correction_tool.py``); presses elsewhere fall through to
the viewer, which pans. ``CorrectionPanel`` says what is corrected on the shown frame and has
the nudge and reset buttons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGridLayout, QLabel, QPushButton, QStyleOptionGraphicsItem, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from dubstudio.gui.correction_tool import CorrectionTool

NUDGE_PX = 1.0
NUDGE_PX_BIG = 5.0
NUDGE_DEG = 0.5
NUDGE_JAW = 0.02
NUDGE_MERGE_S = 1.0  # nudges of one frame closer than this merge into one undo step
HIT_PX = 10.0
HANDLE_PX = 4.0
MOVE_MIN_PX = 0.25  # a release closer than this (image px) to the press changes nothing

CONTOUR_COLOR = QColor(0, 210, 255, 170)
HANDLE_COLOR = QColor(0, 210, 255)
MOVED_COLOR = QColor(255, 150, 40)
ACTIVE_COLOR = QColor(255, 255, 255)


class HandleLayer(QGraphicsItem):
    """Draws the handles and their contours (constant size on screen) and routes presses on a
    handle to the tool; presses elsewhere fall through to the viewer (pan)."""

    def __init__(self, tool: CorrectionTool) -> None:
        super().__init__()
        self.tool = tool
        self.points: np.ndarray | None = None  # (H, 2) handle positions, image px
        self.contours: list[np.ndarray] = []
        self.moved: set[int] = set()  # handle indices (into HANDLE_LANDMARKS) the user moved
        self.hover: int | None = None
        self.active: int | None = None
        self.anchor: QPointF | None = None  # where the dragged handle started
        self._rect = QRectF()
        self.setZValue(2.5)
        self.setAcceptHoverEvents(True)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)

    def set_bounds(self, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(-0.5 * width, -0.5 * height, 2.0 * width, 2.0 * height)

    def set_geometry(self, points: np.ndarray | None, contours: list[np.ndarray], moved: set[int]) -> None:
        self.points, self.contours, self.moved = points, contours, moved
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def hit(self, pos: QPointF) -> int | None:
        """The handle within HIT_PX screen pixels of a scene point, nearest first."""
        if self.points is None or not len(self.points):
            return None
        zoom = self.tool.viewer.zoom
        d = np.hypot(self.points[:, 0] - pos.x(), self.points[:, 1] - pos.y()) * zoom
        j = int(np.argmin(d))
        return j if d[j] <= HIT_PX else None

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.points is None:
            return
        t = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pen = QPen(CONTOUR_COLOR, 1.3)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for line in self.contours:
            path = QPainterPath()
            for k, (x, y) in enumerate(line):
                p = t.map(QPointF(float(x), float(y)))
                path.moveTo(p) if k == 0 else path.lineTo(p)
            painter.drawPath(path)
        if self.active is not None and self.anchor is not None:
            painter.setPen(QPen(ACTIVE_COLOR, 1.2, Qt.PenStyle.DashLine))
            x, y = self.points[self.active]
            painter.drawLine(t.map(self.anchor), t.map(QPointF(float(x), float(y))))
        for j, (x, y) in enumerate(self.points):
            p = t.map(QPointF(float(x), float(y)))
            big = j in (self.hover, self.active)
            fill = ACTIVE_COLOR if j == self.active else (MOVED_COLOR if j in self.moved else QColor(20, 20, 24, 200))
            painter.setPen(QPen(ACTIVE_COLOR if big else (MOVED_COLOR if j in self.moved else HANDLE_COLOR), 1.6))
            painter.setBrush(fill)
            r = HANDLE_PX + (2.0 if big else 0.0)
            painter.drawEllipse(p, r, r)
        painter.restore()

    # -- mouse --

    def hoverMoveEvent(self, event) -> None:  # noqa: N802
        j = self.hit(event.scenePos())
        if j != self.hover:
            self.hover = j
            if j is None:
                self.unsetCursor()
            else:
                self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.update()

    def hoverLeaveEvent(self, event) -> None:  # noqa: N802
        if self.hover is not None:
            self.hover = None
            self.unsetCursor()
            self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        j = self.hit(event.scenePos()) if event.button() == Qt.MouseButton.LeftButton else None
        if j is None or not self.tool.begin_drag(j, event.scenePos()):
            event.ignore()  # the viewer pans
            return
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        self.tool.drag_to(event.scenePos())

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self.tool.end_drag(event.scenePos())


class CorrectionPanel(QWidget):
    """The dock panel: what is corrected on this frame, nudge buttons, resets."""

    def __init__(self, tool: CorrectionTool) -> None:
        super().__init__()
        self.tool = tool
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(8)
        self.state = QLabel()
        self.state.setWordWrap(True)
        lay.addWidget(self.state)
        grid = QGridLayout()
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(4)
        rows = [
            ("Move", [("◀", "Move the head left 1 px (Alt+Left)", dict(d_translation=(-NUDGE_PX, 0, 0))),
                      ("▶", "Move the head right 1 px (Alt+Right)", dict(d_translation=(NUDGE_PX, 0, 0))),
                      ("▲", "Move the head up 1 px (Alt+Up)", dict(d_translation=(0, -NUDGE_PX, 0))),
                      ("▼", "Move the head down 1 px (Alt+Down)", dict(d_translation=(0, NUDGE_PX, 0)))]),
            ("Roll", [("⟲", f"Roll the head {NUDGE_DEG}° anticlockwise (Alt+[)", dict(d_rotation=(0, 0, -np.deg2rad(NUDGE_DEG)))),
                      ("⟳", f"Roll the head {NUDGE_DEG}° clockwise (Alt+])", dict(d_rotation=(0, 0, np.deg2rad(NUDGE_DEG))))]),
            ("Turn", [("◁", f"Turn the head {NUDGE_DEG}° to its left", dict(d_rotation=(0, -np.deg2rad(NUDGE_DEG), 0))),
                      ("▷", f"Turn the head {NUDGE_DEG}° to its right", dict(d_rotation=(0, np.deg2rad(NUDGE_DEG), 0)))]),
            ("Nod", [("△", f"Tilt the head {NUDGE_DEG}° up", dict(d_rotation=(np.deg2rad(NUDGE_DEG), 0, 0))),
                     ("▽", f"Tilt the head {NUDGE_DEG}° down", dict(d_rotation=(-np.deg2rad(NUDGE_DEG), 0, 0)))]),
            ("Jaw", [("−", f"Close the jaw by {NUDGE_JAW} (Alt+PgDown)", dict(d_jaw=-NUDGE_JAW)),
                     ("+", f"Open the jaw by {NUDGE_JAW} (Alt+PgUp)", dict(d_jaw=NUDGE_JAW))]),
        ]
        self.nudge_buttons: list[QPushButton] = []
        for r, (name, buttons) in enumerate(rows):
            grid.addWidget(QLabel(name), r, 0)
            for c, (text, tip, kw) in enumerate(buttons):
                b = QPushButton(text)
                b.setToolTip(tip)
                b.setFixedWidth(34)
                b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                b.setAutoRepeat(True)
                b.clicked.connect(lambda _c=False, kw=kw, name=name: tool.nudge(kind=name, **kw))
                grid.addWidget(b, r, c + 1)
                self.nudge_buttons.append(b)
        grid.setColumnStretch(5, 1)
        lay.addLayout(grid)
        self.reset_frame = QPushButton("Reset Frame to Tracker")
        self.reset_frame.setToolTip("Remove this frame's correction (Alt+Backspace)")
        self.reset_frame.clicked.connect(tool.reset_frame)
        self.reset_range = QPushButton("Reset In–Out to Tracker")
        self.reset_range.setToolTip("Remove the corrections between the In and Out points")
        self.reset_range.clicked.connect(tool.reset_range)
        for b in (self.reset_frame, self.reset_range):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            lay.addWidget(b)
        hint = QLabel(
            "Drag a handle where the landmark belongs: the frame is re-fitted and its neighbours "
            "blend in. Alt+arrows move the head, Alt+[ ] roll it, Alt+PgUp/PgDn move the jaw."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #9a9a9a;")
        lay.addWidget(hint)
        lay.addStretch(1)
