"""The dubbed line's words on the timeline's dubbed row, each where the mouth says it; drag one
sideways to re-time it (``app.words``: the mouth between its neighbours' starts follows, one undo
step). While dragging, the word snaps to whole frames and stops short of its neighbours; the
status bar says where it goes. A word's context menu puts it, or every word, back where the
aligner placed it. Zoomed out, words that would overlap are left out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QMenu

from dubstudio.core.retime import inside, word_limits

WORD_COLOR = (250, 200, 140)
Words = tuple[tuple[float, str], ...]


class WordItem(pg.TextItem):
    """One word on the row; ``index`` is its place in the line (-1: unused)."""

    def __init__(self, row: DubWords) -> None:
        super().__init__("", color=WORD_COLOR, anchor=(0, 0))
        self.row, self.index = row, -1
        self.setZValue(5)
        self.setCursor(Qt.CursorShape.SizeHorCursor)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        if ev.button() != Qt.MouseButton.RightButton or self.index < 0:
            ev.ignore()
            return
        ev.accept()
        self.row.context_menu(self.index).popup(ev.screenPos().toPoint())

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        if ev.button() != Qt.MouseButton.LeftButton or self.index < 0:
            ev.ignore()
            return
        ev.accept()
        x = self.getViewBox().mapSceneToView(ev.scenePos()).x()
        frame = self.row.drag_to(self.index, x)
        self.setPos(frame - 0.5, 1.0)
        if ev.isFinish():
            self.row.drop(self.index, frame)


class DubWords:
    """The word items of one plot (a pool, reused as the view moves)."""

    WORD_GAP_PX = 8  # space kept after a word shown; a word that would overlap the previous one is left out

    def __init__(self, plot: pg.PlotItem, font_of: pg.TextItem, retime: Callable[[int, int], None],
                 put_back: Callable[[int | None], None], status: Callable[[str], None]) -> None:
        """``retime(index, frame)`` moves a word (the controller's edit); ``put_back(index)`` puts
        one (None: all) back where the aligner placed it; ``status`` says where a dragged word
        goes; ``font_of``: a text item whose font the words share."""
        self.plot, self.font_of, self.retime, self.put_back, self.status = plot, font_of, retime, put_back, status
        self.items: list[WordItem] = []
        self.words: Words = ()
        self.n_frames = 0

    def show(self, words: Words, x0: float, x1: float, frames_per_px: float, n_frames: int) -> None:
        """``words`` ((frame, word), the whole line) where they fall in the view ``x0..x1``."""
        self.words, self.n_frames = tuple(words), int(n_frames)
        fm = QFontMetrics(self.font_of.textItem.font())
        shown, last = [], -1e9
        for i, (f, w) in enumerate(self.words):
            x = f - 0.5  # a word starts where its frame starts
            if not x0 <= f <= x1:
                continue
            need = fm.horizontalAdvance(self.words[shown[-1]][1]) + self.WORD_GAP_PX if shown else 0
            if (x - last) / max(frames_per_px, 1e-9) >= need:
                shown.append(i)
                last = x
        while len(self.items) < len(shown):
            item = WordItem(self)
            self.plot.addItem(item)
            self.items.append(item)
        for item, i in zip(self.items, shown + [-1] * (len(self.items) - len(shown))):
            item.index = i
            if i < 0:
                item.hide()
                continue
            f, w = self.words[i]
            item.setText(w)
            item.setPos(f - 0.5, 1.0)
            item.setToolTip(f"“{w}” starts on frame {f:.0f}: drag it to re-time the mouth under it")
            item.show()

    def context_menu(self, index: int) -> QMenu:
        menu = QMenu()
        menu.addAction(f"Put “{self.words[index][1]}” Back Where the Aligner Placed It", lambda: self.put_back(index))
        menu.addAction("Put All Words Back", lambda: self.put_back(None))
        self._menu = menu  # kept alive while it is shown
        return menu

    def drag_to(self, index: int, x: float) -> int:
        """The whole frame a word dragged to ``x`` would start on, kept between its neighbours."""
        lo, hi = word_limits(self.words, index, self.n_frames)
        start, word = self.words[index]
        if not inside(self.words, index, self.n_frames):
            self.status(f"“{word}” is spoken outside the shot: only the words the shot shows can move")
            return int(round(start))
        if np.floor(hi) < np.ceil(lo):
            self.status(f"“{word}” has no room to move: move one of its neighbours first")
            return int(round(start))
        frame = int(np.clip(round(x + 0.5), np.ceil(lo), np.floor(hi)))
        d = frame - start
        self.status(f"“{word}” to frame {frame} ({abs(d):.0f} frame{'' if round(abs(d)) == 1 else 's'} "
                    f"{'later' if d > 0 else 'earlier'}); release to re-time the mouth under it")
        return frame

    def drop(self, index: int, frame: int) -> None:
        start = self.words[index][0]
        if frame == round(start):  # a click, or dragged back: nothing to do
            self.items[[it.index for it in self.items].index(index)].setPos(start - 0.5, 1.0)
            self.status("")
            return
        self.retime(index, frame)
