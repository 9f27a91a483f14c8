"""Tracking correction mode of the main window: landmark handles, pose/jaw nudges, reset.

Shot ▸ Correct Tracking (T) shows handles on a sparse set of landmarks (lips, jaw line, eye
corners, nose; ``correction.HANDLE_GROUPS``) of the corrected tracked fit, joined by their
contours. Dragging a handle previews the re-fitted mesh live (the frame alone, throttled to the
newest mouse position); on release the frame is re-fitted and its neighbours blended, as one
undo step (``CorrectLandmarks``). Alt+arrows move the head (Alt+Shift: 5 px), Alt+[ / Alt+]
roll it, Alt+PgUp/PgDown open/close the jaw, the panel also turns and nods it
(``NudgePose``; held keys merge into one undo step). Alt+Backspace resets the frame to the
tracker, the panel also the In/Out range (``ResetTracking``). The core does the work
(``dubstudio.tracking.correction``); a re-fit takes ~10-15 ms, so it runs on the GUI thread.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QObject, QPointF, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import QDockWidget

from dubstudio.core.edits import Edit
from dubstudio.core.errors import DubStudioError
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices
from dubstudio.gui.correction_panel import (
    MOVE_MIN_PX,
    NUDGE_DEG,
    NUDGE_JAW,
    NUDGE_MERGE_S,
    NUDGE_PX,
    NUDGE_PX_BIG,
    CorrectionPanel,
    HandleLayer,
)
from dubstudio.gui.overlay_items import FaceDrawing
from dubstudio.tracking.correction import CONTOURS, HANDLE_LANDMARKS, FrameCorrection
from dubstudio.tracking.correction_edits import CorrectLandmarks, NudgePose, ResetTracking


log = logging.getLogger(__name__)



class CorrectionTool(QObject):
    """Tracking correction mode for one main window (see the module docstring)."""

    mode_changed = Signal(bool)
    handles_updated = Signal(int)  # handles were placed for this frame
    preview_shown = Signal(int)  # a live re-fit preview of this frame is drawn
    refitted = Signal(int)  # a drag on this frame was applied (one undo step)

    def __init__(self, session: ShotSession, viewer, services: EditorServices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.session = s = session
        self.viewer = v = viewer
        self.active = False
        self.last_preview_ms = 0.0
        self.last_refit_ms = 0.0
        self._drag: tuple[int, int, QPointF, QPointF] | None = None  # frame, handle, press pos, handle start
        self._drag_target: np.ndarray | None = None
        self._nudge_token: tuple | None = None
        self._nudge_time = 0.0

        self.layer = HandleLayer(self)
        self.layer.setVisible(False)
        v.scene().addItem(self.layer)
        self.panel = CorrectionPanel(self)
        self.dock = QDockWidget("Tracking Correction", services.parent)
        self.dock.setObjectName("correction_dock")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        services.add_dock(self.dock)  # a tab beside the other docks, not a sliver under them
        services.modes.join("correct", lambda: self.active, self.set_active)
        self.dock.hide()

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(0)
        self._preview_timer.timeout.connect(self._preview)

        self._build_actions()
        v.overlay_rebuilt.connect(lambda _i: self.refresh())
        v.frame_shown.connect(lambda _i: self.refresh())
        s.tracking_corrected.connect(lambda *_: self.refresh())
        for sig in (s.tracking_changed, s.shot_opened, s.shot_closed):
            sig.connect(self._update_enabled)
        s.undo_stack.index_changed.connect(lambda _i: self._update_panel())
        v.hud_providers.append(self._hud)
        self._update_enabled()

    # -- actions --

    def _build_actions(self) -> None:
        sv = self.services

        def act(key: str, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
            return sv.new_action(key, text, slot, QKeySequence(shortcut) if shortcut is not None else None, checkable, tip)

        self.mode_action = act("correct_mode", "Correct &Tracking", self.set_active, "T", checkable=True,
                               tip="Drag landmarks or nudge the pose where the tracking is wrong (T)")
        rad = np.deg2rad(NUDGE_DEG)
        self.nudge_actions = [
            act("nudge_left", "Move Head Left", lambda: self.nudge("Move", d_translation=(-NUDGE_PX, 0, 0)), "Alt+Left"),
            act("nudge_right", "Move Head Right", lambda: self.nudge("Move", d_translation=(NUDGE_PX, 0, 0)), "Alt+Right"),
            act("nudge_up", "Move Head Up", lambda: self.nudge("Move", d_translation=(0, -NUDGE_PX, 0)), "Alt+Up"),
            act("nudge_down", "Move Head Down", lambda: self.nudge("Move", d_translation=(0, NUDGE_PX, 0)), "Alt+Down"),
            act("nudge_left5", "Move Head Left 5 px", lambda: self.nudge("Move", d_translation=(-NUDGE_PX_BIG, 0, 0)), "Alt+Shift+Left"),
            act("nudge_right5", "Move Head Right 5 px", lambda: self.nudge("Move", d_translation=(NUDGE_PX_BIG, 0, 0)), "Alt+Shift+Right"),
            act("nudge_up5", "Move Head Up 5 px", lambda: self.nudge("Move", d_translation=(0, -NUDGE_PX_BIG, 0)), "Alt+Shift+Up"),
            act("nudge_down5", "Move Head Down 5 px", lambda: self.nudge("Move", d_translation=(0, NUDGE_PX_BIG, 0)), "Alt+Shift+Down"),
            act("nudge_roll_ccw", "Roll Head Anticlockwise", lambda: self.nudge("Roll", d_rotation=(0, 0, -rad)), "Alt+["),
            act("nudge_roll_cw", "Roll Head Clockwise", lambda: self.nudge("Roll", d_rotation=(0, 0, rad)), "Alt+]"),
            act("nudge_jaw_open", "Open Jaw", lambda: self.nudge("Jaw", d_jaw=NUDGE_JAW), "Alt+PgUp"),
            act("nudge_jaw_close", "Close Jaw", lambda: self.nudge("Jaw", d_jaw=-NUDGE_JAW), "Alt+PgDown"),
        ]
        self.reset_action = act("correct_reset_frame", "&Reset Frame to Tracker", self.reset_frame, "Alt+Backspace",
                                tip="Remove this frame's tracking correction (Alt+Backspace)")
        self.reset_range_action = act("correct_reset_range", "Reset In/Out to Tracker", self.reset_range,
                                      tip="Remove the tracking corrections between the In and Out points")
        menu = sv.menu("&Shot")
        menu.addSeparator()
        menu.addAction(self.mode_action)
        sub = menu.addMenu("&Nudge")
        sub.addActions(self.nudge_actions)
        menu.addActions([self.reset_action, self.reset_range_action])
        sv.add_to_toolbar(self.mode_action)

    def _update_enabled(self, *_: object) -> None:
        ok = self.session.is_tracked and self.session.corrector is not None
        self.mode_action.setEnabled(ok)
        if not ok and self.active:
            self.set_active(False)
        for a in self.nudge_actions + [self.reset_action, self.reset_range_action]:
            a.setEnabled(ok and self.active)
        if ok and self.session.tracking is not None:
            self.layer.set_bounds(self.session.tracking.width, self.session.tracking.height)
        self.refresh()

    # -- the mode --

    def set_active(self, on: bool) -> None:
        on = bool(on)
        if on and not (self.session.is_tracked and self.session.corrector is not None):
            self.mode_action.setChecked(False)
            self.services.messages.show_message("Track the face before correcting it (Shot ▸ Track Face).", "info", 6000)
            return
        self.mode_action.setChecked(on)
        if on == self.active:
            return
        self.active = on
        if on:
            self.services.modes.entering("correct")  # one mouse mode at a time
            self.dock.show()
            self.dock.raise_()
        else:
            self._cancel_drag()
            self.dock.hide()
        self.layer.setVisible(on)
        for a in self.nudge_actions + [self.reset_action, self.reset_range_action]:
            a.setEnabled(on)
        self.refresh()
        self.viewer.viewport().update()
        self.mode_changed.emit(on)

    # -- handles --

    def refresh(self) -> None:
        """Place the handles on the shown frame's corrected tracked fit."""
        if not self.active or self._drag is not None:
            return
        s, i = self.session, self.viewer.shown_frame
        c = s.corrector
        if c is None or i is None or s.tracking is None or not s.tracking.has_face[i]:
            self.layer.set_geometry(None, [], set())
        else:
            self._place(c.landmarks(i), c.correction(i))
            self.handles_updated.emit(i)
        self._update_panel()

    def _place(self, lm: np.ndarray, corr: FrameCorrection | None, extra_moved: set[int] = frozenset()) -> None:
        moved_lm = set(corr.targets) if corr is not None else set()
        moved = {j for j, k in enumerate(HANDLE_LANDMARKS) if k in moved_lm} | set(extra_moved)
        xy = lm[:, :2]
        self.layer.set_geometry(xy[list(HANDLE_LANDMARKS)].copy(), [xy[list(line)] for line in CONTOURS], moved)

    def handle_position(self, landmark: int) -> QPointF | None:
        """Scene position of a handle (tests, screenshots)."""
        pts = self.layer.points
        if pts is None or landmark not in HANDLE_LANDMARKS:
            return None
        x, y = pts[HANDLE_LANDMARKS.index(landmark)]
        return QPointF(float(x), float(y))

    # -- dragging --

    def begin_drag(self, j: int, pos: QPointF) -> bool:
        i = self.viewer.shown_frame
        if not self.active or i is None or self.layer.points is None:
            return False
        x, y = self.layer.points[j]
        self._drag = (i, j, QPointF(pos), QPointF(float(x), float(y)))
        self._drag_target = np.array([x, y], np.float64)
        self.layer.active = j
        self.layer.anchor = QPointF(float(x), float(y))
        self.layer.update()
        return True

    def drag_to(self, pos: QPointF) -> None:
        if self._drag is None:
            return
        _i, j, press, start = self._drag
        target = start + (pos - press)
        self._drag_target = np.array([target.x(), target.y()])
        pts = self.layer.points.copy()
        pts[j] = self._drag_target
        self.layer.points = pts
        self.layer.update()
        self._preview_timer.start()  # the newest position only, once the events are drained

    def _candidate(self) -> tuple[int, FrameCorrection] | None:
        if self._drag is None or self._drag_target is None:
            return None
        i, j, _p, _s = self._drag
        c = self.session.corrector
        corr = (c.correction(i) or FrameCorrection()).with_points({HANDLE_LANDMARKS[j]: self._drag_target})
        return i, corr

    def _preview(self) -> None:
        cand = self._candidate()
        s = self.session
        if cand is None or s.corrector is None or s.curves is None:
            return
        i, corr = cand
        j = self._drag[1]
        t0 = time.perf_counter()
        try:
            pt = s.corrector.preview(i, corr)
        except DubStudioError as e:
            self.services.messages.show_message(str(e), "warning", 6000)
            return
        lm = s.corrector.landmarks(i, tracking=pt)
        self._place(lm, corr, {j})
        pts = self.layer.points.copy()
        pts[j] = self._drag_target  # the handle stays under the mouse; the mesh shows the fit
        self.layer.points = pts
        # the viewer's mesh/grey face as the re-fit would draw it, with the user's curve edits
        controls = s.curves.at(i) + (pt.controls[i] - s.curves.tracked[i])
        v = self.viewer
        drawing = FaceDrawing.build(s.geometry, pt, i, controls, v.enabled - {"mask"})
        v.overlay_item.set_drawing(drawing)
        v.viewport().update()
        self.last_preview_ms = (time.perf_counter() - t0) * 1000
        self.preview_shown.emit(i)

    def end_drag(self, pos: QPointF) -> None:
        if self._drag is None:
            return
        self.drag_to(pos)
        self._preview_timer.stop()
        cand = self._candidate()
        i, j, _press, start = self._drag
        target = self._drag_target
        self._drag = None
        self.layer.active, self.layer.anchor = None, None
        if cand is None or np.hypot(target[0] - start.x(), target[1] - start.y()) < MOVE_MIN_PX:
            self.refresh()
            self.viewer.schedule_rebuild()
            return
        t0 = time.perf_counter()
        try:
            self.session.push(CorrectLandmarks(self.session.corrector, i, {HANDLE_LANDMARKS[j]: target}))
        except DubStudioError as e:
            self.services.messages.show_message(str(e), "warning", 6000)
            self.refresh()
            self.viewer.schedule_rebuild()
            return
        self.last_refit_ms = (time.perf_counter() - t0) * 1000
        log.debug("re-fit of frame %d in %.1f ms", i, self.last_refit_ms)
        self.refresh()
        self.refitted.emit(i)

    def _cancel_drag(self) -> None:
        if self._drag is not None:
            self._drag = None
            self._preview_timer.stop()
            self.layer.active, self.layer.anchor = None, None
            self.viewer.schedule_rebuild()

    # -- nudges and resets --

    def _frame(self) -> int | None:
        i = self.viewer.shown_frame
        s = self.session
        if not self.active or i is None or s.corrector is None:
            return None
        if not s.tracking.has_face[i]:
            self.services.messages.show_message("No face on this frame: nothing to correct.", "info", 4000)
            return None
        return i

    def nudge(self, kind: str = "Move", d_rotation=(0.0, 0.0, 0.0), d_translation=(0.0, 0.0, 0.0), d_jaw: float = 0.0) -> Edit | None:
        i = self._frame()
        if i is None:
            return None
        now = time.monotonic()
        token = (i, kind)
        if self._nudge_token is None or self._nudge_token[:2] != token or now - self._nudge_time > NUDGE_MERGE_S:
            self._nudge_token = (i, kind, now)  # a new undo step
        self._nudge_time = now
        s = self.session
        edit = NudgePose(s.corrector, i, d_rotation, d_translation, d_jaw, token=self._nudge_token)
        try:
            edit.apply(s.curves)
        except DubStudioError as e:
            self.services.messages.show_message(str(e), "warning", 6000)
            return None
        s.record(s.curves, edit)
        return edit

    def reset_frame(self) -> Edit | None:
        i = self._frame()
        s = self.session
        if i is None:
            return None
        if not s.corrector.is_corrected(i):
            self.services.messages.show_message(f"Frame {i} follows the tracker already.", "info", 4000)
            return None
        return s.push(ResetTracking(s.corrector, i))

    def reset_range(self) -> Edit | None:
        s = self.session
        if s.corrector is None or not self.active:
            return None
        a, b = s.playhead.in_point, s.playhead.out_point + 1
        if not any(a <= f < b for f in s.corrector.corrected_frames()):
            self.services.messages.show_message(f"No corrections between frames {a} and {b - 1}.", "info", 4000)
            return None
        return s.push(ResetTracking(s.corrector, a, b))

    # -- panel and HUD --

    def _describe(self, i: int) -> tuple[str, bool]:
        c = self.session.corrector
        corr = c.correction(i)
        if corr is not None:
            parts = []
            if corr.points:
                n = len(corr.points)
                parts.append(f"{n} landmark{'s' if n != 1 else ''} moved")
            if any(corr.rotation) or any(corr.translation):
                parts.append("pose nudged")
            if corr.jaw:
                parts.append(f"jaw {corr.jaw:+.2f}")
            return f"frame {i} corrected: {', '.join(parts)}", True
        w = c.influence(i)
        if w > 0:
            return f"frame {i}: {w * 100:.0f} % of a nearby correction (blended)", True
        return f"frame {i}: as tracked", False

    def _update_panel(self) -> None:
        s, i = self.session, self.viewer.shown_frame
        if s.corrector is None or i is None or s.tracking is None:
            self.panel.state.setText("No tracked frame.")
            return
        if not s.tracking.has_face[i]:
            self.panel.state.setText(f"Frame {i}: no face, nothing to correct.")
            return
        text, _ = self._describe(i)
        n = len(s.corrector.corrected_frames())
        blend = s.corrector.settings.blend_frames
        self.panel.state.setText(f"{text[0].upper()}{text[1:]}.\n{n} corrected frame{'s' if n != 1 else ''} in the shot; "
                                 f"each blends into ±{blend} neighbours.")
        self.reset_action.setEnabled(self.active and s.corrector.is_corrected(i))

    def _hud(self) -> list[tuple[str, QColor]]:
        s, i = self.session, self.viewer.shown_frame
        if not self.active or s.corrector is None or i is None or s.tracking is None or not s.tracking.has_face[i]:
            return []
        text, corrected = self._describe(i)
        return [(f"tracking correction: {text} · drag a handle, Alt+arrows nudge", QColor(255, 180, 90) if corrected else QColor(120, 220, 255))]

    def shutdown(self) -> None:
        self._cancel_drag()
