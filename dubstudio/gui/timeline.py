"""The timeline: frame ruler with in/out points, thumbnails, the shot's audio waveform, and the curve editor.

All the plots share the time axis (frames). The playhead line and the in/out region follow
the session's ``Playhead``; clicking or dragging in the ruler or the waveform scrubs. The
public methods (``add_key``, ``delete_key``, ``begin_key_drag``/``drag_key_to``/
``end_key_drag``, ``insert_viseme``, ``reset_frame``, ``reset_range``) are what the mouse uses
and what tests and menus call.
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QPainter
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from dubstudio.core.curves import INTERPOLATIONS, Key
from dubstudio.core.edits import DeleteKey, Edit, MoveKey, ResetRange, SetKey
from dubstudio.core.visemes import LABELS as VISEME_LABELS
from dubstudio.core.visemes import viseme_edit
from dubstudio.core.errors import DubStudioError
from dubstudio.gui.curve_editor import CurveEditor, CurveViewBox
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.thumbnails import THUMB_HEIGHT, ThumbnailItem, Thumbnails
from dubstudio.core.controls import CONTROL_NAMES, CONTROL_RANGE

log = logging.getLogger(__name__)

AXIS_WIDTH = 52
PLAYHEAD_PEN = pg.mkPen(QColor(255, 90, 70), width=1.6)
RANGE_BRUSH = pg.mkBrush(90, 140, 255, 38)
WAVE_PEN = pg.mkPen(QColor(70, 200, 190), width=1)


def control_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when it is narrower than its text (full text as tooltip)."""

    def setText(self, text: str) -> None:  # noqa: N802
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event) -> None:  # noqa: N802
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(self.contentsRect(), int(self.alignment()), text)
        p.end()

    def minimumSizeHint(self):  # noqa: N802
        return QSize(60, super().minimumSizeHint().height())


class ScrubViewBox(pg.ViewBox):
    """Click or drag with the left button moves the playhead; wheel zooms time."""

    def __init__(self, seek) -> None:
        super().__init__(enableMenu=False)
        self.seek = seek
        self.setMouseEnabled(x=True, y=False)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.seek(int(round(self.mapSceneToView(ev.scenePos()).x())))
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.seek(int(round(self.mapSceneToView(ev.scenePos()).x())))
        else:
            super().mouseDragEvent(ev, axis)


class QtTimeline(QWidget):
    control_changed = Signal(str)
    edit_failed = Signal(str)  # a user-facing message (the window shows it)
    curves_redrawn = Signal()
    thumbnails_changed = Signal()  # the thumbnail strip got (or lost) its thumbnails

    def __init__(self, session: ShotSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.control = CONTROL_NAMES[0]
        self._drag_token: object | None = None
        self._drag_frame: int | None = None

        # header: control selector, key info, actions
        self.combo = QComboBox()
        for name in CONTROL_NAMES:
            self.combo.addItem(control_label(name), name)
        self.combo.currentIndexChanged.connect(lambda i: self.set_control(self.combo.itemData(i)))
        self.combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.key_label = ElidedLabel()
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.time_label = QLabel()
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.add_button = self._tool("◆ Key", "Add or update a key at the playhead (double-click in the curve)", lambda: self._safe(self.add_key))
        self.del_button = self._tool("Delete key", "Delete the selected key, or the key at the playhead (Delete)", lambda: self._safe(self.delete_key))
        self.viseme_button = self._tool("Viseme ▾", "Insert a viseme preset at the playhead", None)
        self.viseme_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.viseme_button.setMenu(self._viseme_menu(lambda: session.playhead.frame))
        head = QHBoxLayout()
        head.setContentsMargins(6, 2, 6, 2)
        head.addWidget(QLabel("Control"))
        head.addWidget(self.combo)
        head.addWidget(self.add_button)
        head.addWidget(self.del_button)
        head.addWidget(self.viseme_button)
        head.addSpacing(12)
        head.addWidget(self.key_label, 1)
        head.addWidget(self.time_label)

        # plots
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(QColor(30, 30, 34))
        self.glw.ci.setSpacing(0)
        self.glw.ci.setContentsMargins(0, 2, 8, 0)
        self.ruler = self.glw.addPlot(row=0, col=0, viewBox=ScrubViewBox(self.seek))
        # the thumbnail strip (gui/thumbnails.py; decoded by the window's Thumbnails job)
        self.thumbs = self.glw.addPlot(row=1, col=0, viewBox=ScrubViewBox(self.seek))
        self.wave = self.glw.addPlot(row=2, col=0, viewBox=ScrubViewBox(self.seek))
        # the dubbed audio's row (drawn by gui/dubbing.py's DubWaveRow; hidden until a dub exists)
        self.dub_wave = self.glw.addPlot(row=3, col=0, viewBox=ScrubViewBox(self.seek))
        self.curve_plot = self.glw.addPlot(row=4, col=0, viewBox=CurveViewBox(None))  # editor set below
        for p, h in ((self.ruler, 28), (self.thumbs, THUMB_HEIGHT + 4), (self.wave, 56), (self.dub_wave, 56)):
            p.setFixedHeight(h)
        self.glw.ci.layout.setRowStretchFactor(4, 1)
        self.dub_wave.hideAxis("bottom")
        self.dub_wave.setYRange(-1, 1, padding=0.05)
        self.dub_wave.setXLink(self.ruler)
        self.dub_wave.setVisible(False)
        for p in (self.ruler, self.thumbs, self.wave, self.dub_wave, self.curve_plot):
            p.hideButtons()
            p.setMenuEnabled(False)
            p.getAxis("left").setWidth(AXIS_WIDTH)
        self.ruler.showAxis("top")
        self.ruler.hideAxis("bottom")
        self.ruler.getAxis("left").setStyle(showValues=False)
        self.ruler.getAxis("left").setTicks([])
        self.ruler.setYRange(0, 1, padding=0)
        self.thumbs.hideAxis("bottom")
        self.thumbs.getAxis("left").setTicks([[(0.5, "video")], []])
        self.thumbs.setYRange(0, 1, padding=0)
        self.thumbs.setXLink(self.ruler)
        self.thumb_item = ThumbnailItem()
        self.thumbs.addItem(self.thumb_item)
        self.wave.hideAxis("bottom")
        self.wave.getAxis("left").setTicks([[(0.0, "audio")], []])
        self.wave.setYRange(-1, 1, padding=0.05)
        self.wave.setXLink(self.ruler)
        self.curve_plot.setXLink(self.ruler)
        self.curve_plot.showGrid(x=True, y=True, alpha=0.12)

        self.editor = CurveEditor(self.curve_plot, {
            "select": self.select_key, "seek": self.seek, "add_key": lambda f, v: self._safe(self.add_key, f, v),
            "begin_drag": self.begin_key_drag, "drag": self.drag_key_to, "end_drag": self.end_key_drag,
            "menu": self._popup_menu, "sync": self.flush_redraw,
        })
        self.curve_plot.getViewBox().editor = self.editor
        self.wave_item = pg.PlotDataItem(pen=WAVE_PEN, connect="pairs")
        self.wave.addItem(self.wave_item)
        self.no_audio = pg.TextItem("", color=(140, 140, 140), anchor=(0, 0.5))
        self.wave.addItem(self.no_audio)
        self.lines = []
        for p in (self.ruler, self.thumbs, self.wave, self.dub_wave, self.curve_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=PLAYHEAD_PEN)
            line.setZValue(20)
            p.addItem(line)
            self.lines.append(line)
        self.range_item = pg.LinearRegionItem(brush=RANGE_BRUSH, movable=True)
        self.range_item.sigRegionChangeFinished.connect(self._on_region_dragged)
        self.ruler.addItem(self.range_item)
        self.range_shades = []  # not over the thumbnails: they keep their colours
        for p in (self.wave, self.dub_wave, self.curve_plot):
            shade = pg.LinearRegionItem(brush=RANGE_BRUSH, movable=False)
            for ln in shade.lines:
                ln.setPen(pg.mkPen(None))
            p.addItem(shade)
            self.range_shades.append(shade)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(head)
        lay.addWidget(self.glw, 1)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumHeight(272)

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(0)
        self._redraw_timer.timeout.connect(self.redraw_curves)
        self.ruler.getViewBox().sigXRangeChanged.connect(lambda *_: self._update_wave())

        ph = session.playhead
        ph.frame_changed.connect(self._on_frame)
        ph.range_changed.connect(self._on_range)
        ph.shot_changed.connect(lambda n: self._on_shot())
        session.shot_opened.connect(self._on_shot)
        session.shot_closed.connect(self._on_shot)
        for sig in (session.shot_opened, session.shot_closed):
            sig.connect(lambda: self.set_thumbnails(None))
        session.tracking_changed.connect(self.schedule_redraw)
        session.curves_changed.connect(self._on_curves_changed)
        session.waveform_changed.connect(self._update_wave)
        self._on_shot()

    # -- construction helpers --

    def _tool(self, text: str, tip: str, slot) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        if slot is not None:
            b.clicked.connect(slot)
        return b

    def _viseme_menu(self, frame_of) -> QMenu:
        menu = QMenu("Insert viseme", self)
        for name, label in VISEME_LABELS.items():
            act = menu.addAction(label)
            act.triggered.connect(lambda _=False, n=name: self._safe(self.insert_viseme, frame_of(), n))
        return menu

    # -- shot / control --

    def _on_shot(self) -> None:
        n = self.session.playhead.n_frames if self.session.is_open else 1
        for p in (self.ruler,):
            p.getViewBox().setLimits(xMin=-2, xMax=n + 1, minXRange=4)
        self.ruler.setXRange(-0.5, n - 0.5, padding=0.01)
        self._on_range(self.session.playhead.in_point, self.session.playhead.out_point)
        self._on_frame(self.session.playhead.frame)
        self.schedule_redraw()
        self._update_wave()

    def set_control(self, name: str) -> None:
        if name not in CONTROL_NAMES:
            raise KeyError(f"unknown control {name!r}; known: {', '.join(CONTROL_NAMES)}")
        if name == self.control:
            return
        self.control = name
        self.editor.selected = None
        i = self.combo.findData(name)
        if i != self.combo.currentIndex():
            self.combo.setCurrentIndex(i)
        self.redraw_curves()
        self.control_changed.emit(name)

    # -- drawing --

    def schedule_redraw(self, *_: object) -> None:
        self._redraw_timer.start()

    def flush_redraw(self) -> None:
        if self._redraw_timer.isActive():
            self._redraw_timer.stop()
            self.redraw_curves()

    def _on_curves_changed(self, control: str, start: int, stop: int) -> None:
        if control == self.control:
            self.schedule_redraw()

    def redraw_curves(self) -> None:
        c = self.session.curves
        if c is None:
            self.editor.set_data(np.zeros(0), None, np.zeros(0), (), CONTROL_RANGE[self.control])
        else:
            lo, hi = CONTROL_RANGE[self.control]
            ci = c.index(self.control)
            tracked = np.clip(c.tracked[:, ci], lo, hi)
            under = np.clip(c.underlying(ci), lo, hi) if c.has_driven(ci) else None
            self.editor.set_data(tracked, under, c.display(ci), c.keys(ci), (lo, hi))
        self._update_key_label()
        self.curves_redrawn.emit()

    def _update_wave(self) -> None:
        w = self.session.waveform
        info = self.session.info
        if w is None or info is None:
            self.wave_item.setData([], [])
            text = "" if info is None else ("no audio track" if not info.has_audio else "loading audio…")
            self.no_audio.setText(text)
            self.no_audio.setPos(self.ruler.getViewBox().viewRange()[0][0] + 1, 0)
            return
        self.no_audio.setText("")
        (x0, x1), _ = self.ruler.getViewBox().viewRange()
        px = max(200, int(self.wave.getViewBox().width()))
        x, lo, hi = w.decimated(float(info.fps), x0, x1, px)
        xs = np.repeat(x, 2)
        ys = np.empty(2 * len(x))
        ys[0::2], ys[1::2] = lo, np.maximum(hi, lo + 1e-3)
        self.wave_item.setData(xs, ys)

    def set_thumbnails(self, thumbs: Thumbnails | None) -> None:
        """The shot's thumbnails (from the window's job), or None while there are none."""
        if thumbs is None and self.thumb_item.thumbs is None:
            return
        self.thumb_item.set_thumbnails(thumbs)
        self.thumbnails_changed.emit()

    def _on_frame(self, frame: int) -> None:
        for line in self.lines:
            line.setValue(frame)
        ph = self.session.playhead
        if self.session.is_open:
            self.time_label.setText(f"{frame} / {ph.n_frames - 1}   {ph.timecode()}")
            (x0, x1), _ = self.ruler.getViewBox().viewRange()
            if not x0 <= frame <= x1:  # follow the playhead (page flip)
                span = x1 - x0
                self.ruler.setXRange(frame - 0.1 * span, frame + 0.9 * span, padding=0)
        else:
            self.time_label.setText("")
        self._update_key_label()

    def _on_range(self, a: int, b: int) -> None:
        self.range_item.blockSignals(True)
        self.range_item.setRegion((a - 0.5, b + 0.5))
        self.range_item.blockSignals(False)
        for shade in self.range_shades:
            shade.setRegion((a - 0.5, b + 0.5))

    def _on_region_dragged(self) -> None:
        a, b = self.range_item.getRegion()
        self.session.playhead.set_range(int(round(a + 0.5)), int(round(b - 0.5)))
        self._on_range(self.session.playhead.in_point, self.session.playhead.out_point)

    def _update_key_label(self) -> None:
        c = self.session.curves
        if c is None:
            self.key_label.setText("track the shot to edit its curves" if self.session.is_open else "")
            return
        f = self.editor.selected if self.editor.selected is not None else self.session.playhead.frame
        key = c.key_at(self.control, f)
        value = float(c.evaluate(self.control)[f])
        tracked = float(c.tracked[f, c.index(self.control)])
        if key is not None:
            kind = "neutral" if key.neutral else key.mode
            text = f"key @ {f}: {value:+.3f} ({key.interp}, {kind})   tracked {tracked:+.3f}"
        else:
            text = f"@ {f}: {value:+.3f}   tracked {tracked:+.3f}   keys: {len(c.keys(self.control))}"
        self.key_label.setText(text)

    # -- editing API --

    def seek(self, frame: int) -> None:
        self.session.playhead.set_frame(frame)

    def select_key(self, frame: int | None) -> None:
        self.editor.selected = frame
        self.redraw_curves()

    def _push(self, edit: Edit) -> Edit:
        return self.session.push(edit)

    def _safe(self, fn, *args):
        """Run an editing action from a gesture: a failure becomes a message, never a crash."""
        try:
            return fn(*args)
        except (DubStudioError, KeyError, IndexError, ValueError, RuntimeError) as e:
            msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
            self.edit_failed.emit(msg)
            return None

    def add_key(self, frame: int | None = None, value: float | None = None, interp: str = "smooth") -> Edit:
        """Set a replace key (default: at the playhead, with the curve's current value)."""
        c = self._curves()
        f = self.session.playhead.frame if frame is None else c.check_frame(int(frame))
        v = float(c.evaluate(self.control)[f]) if value is None else self._clamp(value)
        edit = self._push(SetKey(self.control, Key(f, v, interp, "replace")))
        self.editor.selected = f
        self.seek(f)
        return edit

    def delete_key(self, frame: int | None = None) -> Edit:
        c = self._curves()
        if frame is None:
            frame = self.editor.selected if self.editor.selected is not None else self.session.playhead.frame
        if c.key_at(self.control, frame) is None:
            raise KeyError(f"no {control_label(self.control).lower()} key at frame {frame}")
        edit = self._push(DeleteKey(self.control, frame))
        if self.editor.selected == frame:
            self.editor.selected = None
        return edit

    def set_interpolation(self, frame: int, interp: str) -> Edit:
        c = self._curves()
        key = c.key_at(self.control, frame)
        if key is None:
            raise KeyError(f"no key at frame {frame}")
        return self._push(SetKey(self.control, Key(key.frame, key.value, interp, key.mode)))

    def begin_key_drag(self, frame: int) -> None:
        c = self._curves()
        if c.key_at(self.control, frame) is None:
            raise KeyError(f"no key at frame {frame}")
        self._drag_token = object()
        self._drag_frame = frame
        self.editor.selected = frame
        self.redraw_curves()

    def drag_key_to(self, frame: int | None, y: float) -> None:
        """Move the dragged key to ``frame`` (None: keep its frame) showing value ``y``.
        Each call is a ``MoveKey`` that merges into the drag's single undo step."""
        if self._drag_token is None or self._drag_frame is None:
            return
        c = self._curves()
        key = c.key_at(self.control, self._drag_frame)
        if key is None:  # undone under the mouse
            self.end_key_drag()
            return
        to = self._drag_frame if frame is None else min(max(int(frame), 0), c.n_frames - 1)
        y = self._clamp(y)
        # An offset key stores the offset from the underlying curve, a replace key the value.
        value = y - float(c.underlying(self.control)[to]) if key.mode == "offset" else y
        if to == key.frame and abs(value - key.value) < 1e-9:
            return
        try:
            self._push(MoveKey(self.control, self._drag_frame, to, value, drag=self._drag_token))
        except (KeyError, IndexError, ValueError) as e:
            self.edit_failed.emit(str(e))
            return
        self._drag_frame = to
        self.editor.selected = to
        self.seek(to)

    def end_key_drag(self) -> None:
        self._drag_token = None
        self._drag_frame = None

    def insert_viseme(self, frame: int, name: str, width: int = 2) -> Edit:
        c = self._curves()
        return self._push(viseme_edit(c, frame, name, width))

    def reset_frame(self, frame: int, all_controls: bool = False) -> Edit:
        return self._push(ResetRange(None if all_controls else self.control, frame, frame + 1))

    def reset_range(self, start: int | None = None, stop: int | None = None, all_controls: bool = False) -> Edit:
        ph = self.session.playhead
        a = ph.in_point if start is None else start
        b = ph.out_point + 1 if stop is None else stop
        return self._push(ResetRange(None if all_controls else self.control, a, b))

    def _curves(self):
        if self.session.curves is None:
            raise RuntimeError("the shot is not tracked yet: track it (Ctrl+T) before editing curves")
        return self.session.curves

    def _clamp(self, v: float) -> float:
        lo, hi = CONTROL_RANGE[self.control]
        return float(min(max(v, lo), hi))

    # -- context menu --

    def context_menu(self, frame: int, key: int | None = None) -> QMenu:
        """The right-click menu for ``frame`` (and the key under the mouse, if any)."""
        menu = QMenu(self)
        frame = min(max(int(frame), 0), max(0, self.session.playhead.n_frames - 1))
        menu.addAction(f"Add key at {frame}", lambda: self._safe(self.add_key, frame))
        if key is not None:
            menu.addAction(f"Delete key at {key}", lambda: self._safe(self.delete_key, key))
            interp = menu.addMenu("Interpolation")
            current = self.session.key_at(self.control, key)
            for name in INTERPOLATIONS:
                act = QAction(name, interp, checkable=True)
                act.setChecked(current is not None and current.interp == name)
                act.triggered.connect(lambda _=False, n=name: self._safe(self.set_interpolation, key, n))
                interp.addAction(act)
        menu.addMenu(self._viseme_menu(lambda: frame)).setText(f"Insert viseme at {frame}")
        menu.addSeparator()
        label = control_label(self.control).lower()
        menu.addAction(f"Reset {label} at {frame} to tracked", lambda: self._safe(self.reset_frame, frame))
        ph = self.session.playhead
        rng = f"{ph.in_point}–{ph.out_point}"
        menu.addAction(f"Reset {label} in {rng} to tracked", lambda: self._safe(self.reset_range))
        menu.addAction(f"Reset all controls in {rng} to tracked", lambda: self._safe(self.reset_range, None, None, True))
        return menu

    def _popup_menu(self, frame: int, key: int | None, screen_pos) -> None:
        if self.session.curves is None:
            return
        self.context_menu(frame, key).popup(QPoint(int(screen_pos.x()), int(screen_pos.y())))
