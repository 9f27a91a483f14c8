"""The open shot as the editor holds it: project, video, tracking, edited curves, undo, playhead.

Qt-free (psygnal events, like the core's ``ControlCurves`` and ``Playhead``): ``ShotSession`` owns
the models, the Qt widgets follow its events (ARCHITECTURE rule 2) and never keep a copy of their
own. Every edit goes through ``push`` onto one ``core.undo.UndoStack`` (curves, masks and tracking
corrections alike, rule 5); saving and autosaving use the shot's edit stores.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from psygnal import Signal

from dubstudio.shot.curve_store import CurveStore
from dubstudio.core.curves import ControlCurves, Key
from dubstudio.core.edits import Edit
from dubstudio.core.errors import ProjectError
from dubstudio.core.playhead import Playhead
from dubstudio.core.undo import UndoStack
from dubstudio.gui.model.mesh import MeshGeometry
from dubstudio.gui.model.shot import ShotData, TrackingData, VideoInfo, Waveform
from dubstudio.project.store import Project
from dubstudio.tracking.correction import TrackingCorrector
from dubstudio.tracking.correction_store import CorrectionStore
from dubstudio.tracking.result import Tracking

log = logging.getLogger(__name__)


class ShotSession:
    shot_opened = Signal()  # a new shot (project, video); tracking may follow later
    shot_closed = Signal()
    tracking_changed = Signal()  # tracking, geometry and curves were replaced
    curves_changed = Signal(str, int, int)  # control, start, stop (frames whose value changed)
    words_changed = Signal()  # the dubbed line's words on the curves were set or moved
    tracking_corrected = Signal(int, int)  # start, stop: frames whose corrected tracking changed
    dirty_changed = Signal(bool)
    waveform_changed = Signal()
    saved = Signal(str)  # path
    autosaved = Signal(str)  # path

    def __init__(self) -> None:
        self.playhead = Playhead()
        self.undo_stack = UndoStack()
        self.undo_stack.clean_changed.connect(lambda clean: self.dirty_changed.emit(not clean))
        self.project: Project | None = None
        self.info: VideoInfo | None = None
        self.tracking: Tracking | None = None
        self.geometry: MeshGeometry | None = None
        self.metrics: dict = {}
        self.tracking_note = ""
        self.curves: ControlCurves | None = None
        self.store: CurveStore | None = None
        # Tracking corrections (tracking/correction.py): ``tracking`` is ``corrector.tracking``.
        self.corrector: TrackingCorrector | None = None
        self.correction_store: CorrectionStore | None = None
        self.waveform: Waveform | None = None
        self._revision = 0  # bumped by every change of the curves
        self._autosaved_revision: int | None = None

    def block_events(self) -> None:
        """Emit nothing more (the window is being torn down)."""
        for sig in (self.shot_opened, self.shot_closed, self.tracking_changed, self.curves_changed, self.words_changed, self.tracking_corrected,
                    self.dirty_changed, self.waveform_changed, self.saved, self.autosaved, self.undo_stack.index_changed,
                    self.undo_stack.clean_changed, self.undo_stack.changed):
            sig.block()

    # -- state --

    @property
    def is_open(self) -> bool:
        return self.project is not None

    @property
    def is_tracked(self) -> bool:
        return self.tracking is not None and self.curves is not None

    @property
    def is_dirty(self) -> bool:
        return self.curves is not None and not self.undo_stack.is_clean()

    # -- opening and closing --

    def open(self, data: ShotData) -> None:
        """Take over an opened shot (the ``reader`` goes to the viewer's frame source)."""
        self.close()
        self.project, self.info = data.project, data.info
        self.store = CurveStore(data.project)
        self.correction_store = CorrectionStore(data.project)
        self.playhead.reset(data.info.n_frames, data.info.fps, data.info.start_timecode)
        self.tracking_note = "loading tracking…"
        self.shot_opened.emit()

    def apply_tracking(self, data: TrackingData) -> str:
        """Result of loading or computing the tracking. Returns a warning for the user ('' if
        none): damaged saved edits are left on disk untouched and editing starts from the
        tracked curves."""
        if data.tracking is None:
            self.tracking_note = data.note
            self.tracking_changed.emit()
            return ""
        try:
            self.set_tracking(data.tracking, data.geometry, data.metrics)
        except ProjectError as e:
            self.set_tracking(data.tracking, data.geometry, data.metrics, load_saved=False)
            return f"The saved curve edits or tracking corrections could not be read, so editing starts from the tracker's result: {e}"
        return ""

    def close(self) -> None:
        was_open = self.is_open
        self._set_curves(None)
        self._set_corrector(None)
        self.project = self.info = self.tracking = self.geometry = self.store = self.correction_store = None
        self.waveform = None
        self.metrics, self.tracking_note = {}, ""
        self.undo_stack.clear()
        if was_open:
            self.shot_closed.emit()

    def set_tracking(self, tracking: Tracking, geometry: MeshGeometry | None, metrics: dict | None = None, load_saved: bool = True) -> None:
        """New tracking (opened or just computed): saved edits are loaded over it (unless
        ``load_saved`` is False); unsaved edits of the previous curves carry over when the shot
        has the same length. Raises ProjectError (nothing changed) if the saved edits are damaged."""
        assert self.store is not None and self.correction_store is not None
        previous = self.curves if self.is_dirty else None
        geometry = geometry if geometry is not None else MeshGeometry.build(tracking)
        if previous is not None and self.corrector is not None and previous.n_frames == tracking.n_frames:
            carried = {f: c for f, c in self.corrector.corrections.items() if tracking.has_face[f]}
            corrector = TrackingCorrector(tracking, carried, self.corrector.settings, model=geometry.model)
        elif load_saved:
            corrector = self.correction_store.load(tracking, model=geometry.model)
        else:
            corrector = TrackingCorrector(tracking, model=geometry.model)
        corrected = corrector.tracking  # the curves' tracked base is the corrected tracking
        curves = self.store.load(corrected) if load_saved else ControlCurves(corrected.controls)
        if previous is not None and previous.n_frames == curves.n_frames:
            curves = _rebase(previous, corrected.controls)
        self._set_corrector(corrector)
        self.geometry = geometry
        self.metrics = dict(metrics or {})
        self.tracking_note = ""
        self.undo_stack.clear()
        self._set_curves(curves)
        if previous is not None:
            self.undo_stack.reset_clean()  # still unsaved
        self.tracking_changed.emit()

    def set_tracking_note(self, note: str) -> None:
        """Why there is no tracking (shown by the viewer and the panel)."""
        self.tracking_note = note
        if self.tracking is None:
            self.tracking_changed.emit()

    def set_waveform(self, waveform: Waveform | None) -> None:
        self.waveform = waveform
        self.waveform_changed.emit()

    def _set_curves(self, curves: ControlCurves | None) -> None:
        if self.curves is not None:
            self.curves.changed.disconnect(self._on_curves_changed)
            self.curves.words_changed.disconnect(self._on_words_changed)
        self.curves = curves
        self._revision += 1
        self._autosaved_revision = None
        if curves is not None:
            curves.changed.connect(self._on_curves_changed)
            curves.words_changed.connect(self._on_words_changed)

    def _set_corrector(self, corrector: TrackingCorrector | None) -> None:
        if self.corrector is not None:
            self.corrector.changed.disconnect(self._on_corrected)
        self.corrector = corrector
        self.tracking = None if corrector is None else corrector.tracking
        if corrector is not None:
            corrector.changed.connect(self._on_corrected)

    def _on_corrected(self, start: int, stop: int) -> None:
        self.tracking = self.corrector.tracking
        self._revision += 1
        self.tracking_corrected.emit(start, stop)

    def _on_words_changed(self) -> None:
        self._revision += 1  # saved and autosaved with the curves
        self.words_changed.emit()

    def _on_curves_changed(self, control: str, start: int, stop: int) -> None:
        self._revision += 1
        self.curves_changed.emit(control, start, stop)

    # -- recovery --

    def recovery_available(self) -> bool:
        return self.store is not None and self.tracking is not None and self.store.recovery_available()

    def recover(self) -> bool:
        """Replace the curves by the autosaved ones (unsaved afterwards). False if none."""
        if self.store is None or self.tracking is None:
            return False
        corrector, cs = self.corrector, self.correction_store
        if cs is not None and corrector is not None and cs.recovery_available():
            try:
                corrector = cs.load(corrector.original, corrector.model, autosave=True)
            except ProjectError as e:
                log.warning("autosaved tracking corrections not recoverable: %s", e)
        curves = self.store.recover(corrector.tracking if corrector is not None else self.tracking)
        if curves is None:
            return False
        if corrector is not self.corrector:
            self._set_corrector(corrector)
        self.undo_stack.clear()
        self._set_curves(curves)
        self.undo_stack.reset_clean()  # recovered edits are unsaved
        self.tracking_changed.emit()
        return True

    def discard_autosave(self) -> None:
        if self.store is not None:
            self.store.discard_autosave()
        if self.correction_store is not None:
            self.correction_store.discard_autosave()

    # -- edits --

    def push(self, edit: Edit, target=None) -> Edit:
        """Apply an edit to its target (default: the curves) and put it on the undo stack (merged
        with a drag in progress). Raises what the edit raises, with nothing recorded."""
        target = self.curves if target is None else target
        if target is None:
            raise RuntimeError("no tracked shot: track the shot before editing its curves")
        edit.apply(target)
        return self.undo_stack.push(target, edit, applied=True)

    def record(self, target, edit) -> None:
        """Put an edit that was already applied to ``target`` (a brush stroke, as it was painted)
        on the undo stack."""
        self.undo_stack.push(target, edit, applied=True)

    def controls_at(self, frame: int) -> np.ndarray | None:
        """(C,) edited controls of ``frame`` (what the renderer will use)."""
        if self.curves is None:
            return None
        return self.curves.at(frame)

    def key_at(self, control: str, frame: int) -> Key | None:
        return None if self.curves is None else self.curves.key_at(control, frame)

    # -- saving --

    def save(self) -> str:
        if self.store is None or self.curves is None:
            raise RuntimeError("nothing to save: no tracked shot is open")
        if self.corrector is not None and self.correction_store is not None:
            self.correction_store.save(self.corrector)  # before the curves saved over its result
        path = self.store.save(self.curves)
        self.undo_stack.set_clean()
        self._autosaved_revision = self._revision
        self.saved.emit(str(path))
        return str(path)

    def needs_autosave(self) -> bool:
        """Unsaved edits that the last autosave (or save) does not hold yet."""
        return self.is_dirty and self._autosaved_revision != self._revision

    def autosave(self, force: bool = False) -> str | None:
        """Write the autosave if there are edits since the last one (or ``force``)."""
        if self.store is None or self.curves is None or not (force or self.needs_autosave()):
            return None
        t0 = time.perf_counter()
        if self.corrector is not None and self.correction_store is not None:
            self.correction_store.autosave(self.corrector)
        path = self.store.autosave(self.curves)
        self._autosaved_revision = self._revision
        log.debug("autosave in %.1f ms", (time.perf_counter() - t0) * 1000)
        self.autosaved.emit(str(path))
        return str(path)


def _rebase(curves: ControlCurves, tracked: np.ndarray) -> ControlCurves:
    """The same keys and driven layer over new tracked curves (after re-tracking)."""
    out = ControlCurves(tracked, curves.names, curves.ease_frames)
    with out.batch():
        for name, keys in curves.all_keys().items():
            for k in keys:
                out.put_key(name, k)
        for ci in range(curves.n_controls):
            if curves.has_driven(ci):
                out.write_driven(ci, 0, curves.driven(ci), curves.driven_weight(ci))
                out.set_driven_source(ci, curves.driven_source(ci))
    out.set_words(curves.words)
    return out
