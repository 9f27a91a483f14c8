"""The shot's one current-frame value, with in/out points (ARCHITECTURE rule 2).

Qt-free on purpose (psygnal events, like the core's ``ControlCurves``): the viewer, the
timeline, the playback controller and the status bar all follow this object and never keep a
frame number of their own. It could move to ``dubstudio/core`` unchanged.
"""

from __future__ import annotations

from fractions import Fraction

from psygnal import Signal


class Playhead:
    """Current frame, in/out points (inclusive) and the shot's rate. Frames are integers."""

    frame_changed = Signal(int)
    range_changed = Signal(int, int)  # in, out (inclusive)
    shot_changed = Signal(int)  # new number of frames (after reset)

    def __init__(self, n_frames: int = 1, fps: Fraction | int = 25) -> None:
        self._n = max(1, int(n_frames))
        self.fps = Fraction(fps)
        self.start_timecode: str | None = None
        self._frame = 0
        self._in, self._out = 0, self._n - 1

    # -- shot --

    def reset(self, n_frames: int, fps: Fraction | int, start_timecode: str | None = None) -> None:
        """A new shot: frame 0, in/out on the whole shot. ``start_timecode``: the source
        timecode of frame 0, when the file carries one."""
        self._n = max(1, int(n_frames))
        self.fps = Fraction(fps)
        self.start_timecode = start_timecode
        self._in, self._out = 0, self._n - 1
        self._frame = 0
        self.shot_changed.emit(self._n)
        self.range_changed.emit(self._in, self._out)
        self.frame_changed.emit(0)

    @property
    def n_frames(self) -> int:
        return self._n

    # -- current frame --

    @property
    def frame(self) -> int:
        return self._frame

    @frame.setter
    def frame(self, value: int) -> None:
        self.set_frame(value)

    def set_frame(self, value: int) -> int:
        """Move to ``value`` (clamped to the shot); emits only when the frame changes."""
        f = min(max(int(round(value)), 0), self._n - 1)
        if f != self._frame:
            self._frame = f
            self.frame_changed.emit(f)
        return f

    def step(self, delta: int) -> int:
        return self.set_frame(self._frame + int(delta))

    # -- in/out --

    @property
    def in_point(self) -> int:
        return self._in

    @property
    def out_point(self) -> int:
        return self._out

    @property
    def has_range(self) -> bool:
        """True when in/out are narrower than the whole shot."""
        return self._in > 0 or self._out < self._n - 1

    def set_range(self, in_point: int, out_point: int) -> None:
        a = min(max(int(in_point), 0), self._n - 1)
        b = min(max(int(out_point), 0), self._n - 1)
        if b < a:
            a, b = b, a
        if (a, b) != (self._in, self._out):
            self._in, self._out = a, b
            self.range_changed.emit(a, b)

    def set_in(self, frame: int | None = None) -> None:
        """In point at ``frame`` (default: the current frame); pushes the out point if needed."""
        f = self._frame if frame is None else int(frame)
        self.set_range(f, max(f, self._out))

    def set_out(self, frame: int | None = None) -> None:
        f = self._frame if frame is None else int(frame)
        self.set_range(min(f, self._in), f)

    def clear_range(self) -> None:
        self.set_range(0, self._n - 1)

    # -- time (seconds only at the edges, ARCHITECTURE rule 6) --

    def seconds(self, frame: int | None = None) -> float:
        return float(Fraction(self._frame if frame is None else int(frame)) / self.fps)

    def timecode(self, frame: int | None = None) -> str:
        """The frame's source timecode (HH:MM:SS:FF; ``;`` for drop-frame) counted from the
        shot's start timecode, or from 00:00:00:00 when the file has none."""
        from dubstudio.core.timebase import timecode_at

        return timecode_at(self.start_timecode, self.fps, self._frame if frame is None else int(frame))
