"""Shot ▸ Choose Face: in a shot with several faces, a click on the viewer picks the one to dub.

The click becomes the tracker's face choice ``X,Y@FRAME`` (``tracking.faces``; the same as
``--face`` on the command line) and the shot is tracked again; the project keeps the choice. The
faces are found once for the shot, so choosing another face later costs only the fit.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt

from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices


class FacePicker(QObject):
    """One click on the viewer: the face under it is the one to track (Esc or the action again: cancel)."""

    def __init__(self, session: ShotSession, viewer, services: EditorServices, track: Callable[[str], object],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.viewer, self.services, self._track = session, viewer, services, track
        self.active = False
        self.action = services.new_action("choose_face", "Choose &Face…", self.toggle, checkable=True,
                                          tip="Several faces in the shot: click the one to dub (the shot is tracked again)")
        services.menu("&Shot").addAction(self.action)
        services.modes.join("choose_face", lambda: self.active, self.set_active)
        viewer.viewport().installEventFilter(self)
        viewer.installEventFilter(self)

    def toggle(self) -> None:
        self.set_active(not self.active)

    def set_active(self, on: bool) -> None:
        on = bool(on)
        if on:
            why = self._blocked()
            if why:
                self.services.messages.show_message(why, "info", 8000)
                on = False
            else:
                self.services.modes.entering("choose_face")
        self.active = on
        self.action.setChecked(on)
        vp = self.viewer.viewport()
        if on:
            vp.setCursor(Qt.CursorShape.CrossCursor)
            self.services.status("Click the face to dub (Esc cancels)")
        else:
            vp.unsetCursor()
            self.services.status("")

    def _blocked(self) -> str:
        s = self.session
        if not s.is_open:
            return "Open a video before choosing a face (File ▸ Open Video…)."
        if self.services.jobs.running("Tracking"):
            return "The shot is being tracked; choose the face when it has finished."
        corrector = getattr(s, "corrector", None)
        if corrector is not None and corrector.corrected_frames():
            # corrections were made on the face tracked now: they would be applied to another person
            return ("This shot has tracking corrections made on the face tracked now; reset them (Shot ▸ Reset In/Out to "
                    "Tracker over the whole shot) before choosing another face.")
        return ""

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802
        if not self.active:
            return False
        t = ev.type()
        if t == QEvent.Type.KeyPress and ev.key() == Qt.Key.Key_Escape:
            self.set_active(False)
            return True
        if t == QEvent.Type.MouseButtonPress and obj is self.viewer.viewport():
            if ev.button() != Qt.MouseButton.LeftButton:
                return False  # other buttons still pan
            frame = self.viewer.shown_frame
            if frame is None:
                return True
            pos = self.viewer.mapToScene(ev.position().toPoint())
            self.pick(pos.x(), pos.y(), frame)
            return True
        return False

    def pick(self, x: float, y: float, frame: int) -> None:
        """Track the face nearest to pixel (x, y) of ``frame``."""
        self.set_active(False)
        spec = f"{x:.0f},{y:.0f}@{frame}"
        self.services.status(f"Tracking the face at {x:.0f},{y:.0f} (frame {frame})…", 8000)
        self._track(spec)
