"""Undoable tracking corrections (``dubstudio.tracking.correction``) as core edit objects.

``CorrectLandmarks``, ``NudgePose`` and ``ResetTracking`` change a ``TrackingCorrector``'s inputs
and keep the curves' tracked base in step: ``ControlCurves``' base *is* the corrected tracking's
controls, so keys and driven layers (overrides/deltas over it) survive a correction. ``apply``
records the corrector's old inputs, the corrected fields and the curve base it overwrote, so
``revert`` restores all of them bit for bit (ARCHITECTURE rule 5); the editor pushes them on its
undo stack (``core.undo``) like every other edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from dubstudio.core.curves import ControlCurves
from dubstudio.core.edits import Edit
from dubstudio.tracking.correction import FrameCorrection, TrackingCorrector, TrackingSpan


def set_tracked_span(curves: ControlCurves | None, start: int, values: np.ndarray) -> np.ndarray | None:
    """Replace ``curves``' tracked base on frames ``start:start+len(values)``; returns the old
    rows. Keys and driven layers are untouched, so they apply over the new base.

    ControlCurves has no public primitive for this yet; this is the one place that reaches
    into it (its read-only base array is swapped and the spans re-evaluated, with one
    ``changed`` per control)."""
    if curves is None:
        return None
    values = np.asarray(values, np.float64)
    stop = start + len(values)
    old = np.array(curves._tracked[start:stop], copy=True)
    if np.array_equal(old, values):
        return old
    base = curves._tracked.copy()
    base[start:stop] = values
    base.setflags(write=False)
    curves._tracked = base
    with curves.batch():
        for ci in range(curves.n_controls):
            if not np.array_equal(old[:, ci], values[:, ci]):
                curves._invalidate(ci, *curves._influence(ci, start, stop - 1))
    return old


NUDGE_MERGE_ID = 0x4E55  # "NU"


class TrackingEdit(Edit):
    """A change of corrections on some frames; apply/revert keep the curves' tracked base in
    step with the corrected tracking, and revert restores everything bit for bit."""

    text = "Correct tracking"

    def __init__(self, corrector: TrackingCorrector) -> None:
        self.corrector = corrector
        self._old: dict = {}
        self._span: TrackingSpan | None = None
        self._old_base: np.ndarray | None = None

    def changes(self) -> dict[int, FrameCorrection | None]:
        raise NotImplementedError

    def apply(self, curves: ControlCurves | None) -> None:
        c = self.corrector
        self._old, self._span = c.set_corrections(self.changes(), emit=False)
        if self._span is not None:
            a, b = self._span.start, self._span.stop
            c.changed.emit(a, b)  # the tracking first: listeners of the curves read it
            self._old_base = set_tracked_span(curves, a, c.tracking.controls[a:b])

    def revert(self, curves: ControlCurves | None) -> None:
        c = self.corrector
        c.restore(self._old, self._span, emit=False)
        if self._span is not None:
            c.changed.emit(self._span.start, self._span.stop)
            if self._old_base is not None:
                set_tracked_span(curves, self._span.start, self._old_base)


class CorrectLandmarks(TrackingEdit):
    """Move model landmarks of one frame to image positions ``{landmark: (x, y)}`` (re-fit)."""

    def __init__(self, corrector: TrackingCorrector, frame: int, points: Mapping[int, Iterable[float]]) -> None:
        super().__init__(corrector)
        self.frame = int(frame)
        self.points = {int(i): tuple(float(v) for v in xy)[:2] for i, xy in points.items()}
        n = len(self.points)
        self.text = f"Correct {n} landmark{'s' if n != 1 else ''} on frame {self.frame}"

    def changes(self) -> dict[int, FrameCorrection | None]:
        cur = self.corrector.correction(self.frame) or FrameCorrection()
        return {self.frame: cur.with_points(self.points)}


class NudgePose(TrackingEdit):
    """Nudge one frame's head pose (rotation vector in radians about the nose tip, image axes;
    translation in pixels) and/or its jaw; the expression is re-fitted under the new pose.
    Consecutive nudges of one frame with the same ``token`` merge into one undo step."""

    def __init__(self, corrector: TrackingCorrector, frame: int, d_rotation=(0.0, 0.0, 0.0),
                 d_translation=(0.0, 0.0, 0.0), d_jaw: float = 0.0, token: object = None) -> None:
        super().__init__(corrector)
        self.frame = int(frame)
        self.d_rotation = tuple(float(v) for v in d_rotation)
        tr = [float(v) for v in d_translation] + [0.0] * 3
        self.d_translation = tuple(tr[:3])
        self.d_jaw = float(d_jaw)
        self.token = token
        self.merge_id = NUDGE_MERGE_ID if token is not None else -1  # a held key is one undo step
        self.text = f"Nudge {'jaw' if not any(self.d_rotation) and not any(self.d_translation) else 'pose'} on frame {self.frame}"

    def changes(self) -> dict[int, FrameCorrection | None]:
        cur = self.corrector.correction(self.frame) or FrameCorrection()
        return {self.frame: cur.nudged(self.d_rotation, self.d_translation, self.d_jaw)}

    def merge(self, other: Edit) -> bool:
        """``other`` ran right after this one: keep this one's "before" state, add the nudges."""
        a, b = self._span, other._span if isinstance(other, NudgePose) else None
        if not (isinstance(other, NudgePose) and self.token is not None and other.token == self.token
                and other.frame == self.frame and other.corrector is self.corrector
                and a is not None and b is not None and (a.start, a.stop) == (b.start, b.stop)):
            return False
        self.d_rotation = tuple((Rotation.from_rotvec(other.d_rotation) * Rotation.from_rotvec(self.d_rotation)).as_rotvec())
        self.d_translation = tuple(np.add(self.d_translation, other.d_translation))
        self.d_jaw += other.d_jaw
        return True


class ResetTracking(TrackingEdit):
    """Back to the tracker on frames ``start:stop`` (removes their corrections)."""

    def __init__(self, corrector: TrackingCorrector, start: int, stop: int | None = None) -> None:
        super().__init__(corrector)
        self.start = int(start)
        self.stop = self.start + 1 if stop is None else int(stop)
        one = self.stop - self.start == 1
        self.text = f"Reset frame {self.start} to tracker" if one else f"Reset frames {self.start}-{self.stop - 1} to tracker"

    def changes(self) -> dict[int, FrameCorrection | None]:
        return {f: None for f in self.corrector.corrected_frames() if self.start <= f < self.stop}
