"""Playback: a timer at the shot's rate moves the playhead by the wall clock (frames are dropped,
never lagged), J/K/L shuttle, looping between in and out; sound through sounddevice only when it
imports and an output device exists (the editor works without)."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from dubstudio.core.playhead import Playhead

log = logging.getLogger(__name__)

SHUTTLE_SPEEDS = (1.0, 2.0, 4.0, 8.0)


class AudioOut:
    """Optional sound output. ``available`` is False without PortAudio or an output device."""

    def __init__(self) -> None:
        self._sd = None
        self.reason = ""
        self.samples: np.ndarray | None = None  # (n, channels) float32
        self.rate = 0
        self.muted = False  # Settings: play without sound
        try:
            import sounddevice as sd  # needs the PortAudio shared library

            sd.query_devices(kind="output")
            self._sd = sd
        except Exception as e:  # OSError (no PortAudio), PortAudioError/ValueError (no device)
            self.reason = f"no audio output ({type(e).__name__}: {e})".split("\n")[0]

    @property
    def available(self) -> bool:
        return self._sd is not None

    def set_audio(self, samples: np.ndarray | None, rate: int) -> None:
        self.stop()
        self.samples = None if samples is None else np.ascontiguousarray(np.atleast_2d(samples).T, np.float32)
        self.rate = int(rate)

    def play_from(self, seconds: float) -> None:
        if self._sd is None or self.muted or self.samples is None or self.rate <= 0:
            return
        start = int(max(0.0, seconds) * self.rate)
        if start >= len(self.samples):
            return
        try:
            self._sd.play(self.samples[start:], self.rate)
        except Exception as e:  # a device that vanished: keep playing silently
            log.warning("audio playback failed: %s", e)
            self._sd = None
            self.reason = f"audio output failed: {e}"

    def stop(self) -> None:
        if self._sd is not None:
            try:
                self._sd.stop()
            except Exception:
                pass


class PlaybackController(QObject):
    """Plays the shot by moving the playhead; ``speed`` 0 is paused, negative plays backwards."""

    state_changed = Signal(float)  # speed

    def __init__(self, playhead: Playhead, audio: AudioOut | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.playhead = playhead
        self.audio = audio
        self.loop = True
        self.speed = 0.0
        self._t0 = 0.0
        self._f0 = 0
        self.dropped = 0  # frames skipped because a tick came late (diagnostics)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    @property
    def playing(self) -> bool:
        return self.speed != 0.0

    def play(self, speed: float = 1.0) -> None:
        ph = self.playhead
        if ph.n_frames <= 1 or speed == 0:
            self.pause()
            return
        if speed > 0 and ph.frame >= ph.out_point:
            ph.set_frame(ph.in_point)
        elif speed < 0 and ph.frame <= ph.in_point:
            ph.set_frame(ph.out_point)
        self.speed = float(speed)
        self._restart_clock()
        interval = 1000.0 / (float(ph.fps) * abs(self.speed))
        self._timer.start(max(4, int(interval / 2)))  # two ticks a frame: steady cadence
        if self.audio is not None and self.speed == 1.0:
            self.audio.play_from(ph.seconds())
        elif self.audio is not None:
            self.audio.stop()
        self.state_changed.emit(self.speed)

    def pause(self) -> None:
        was = self.speed
        self._timer.stop()
        self.speed = 0.0
        if self.audio is not None:
            self.audio.stop()
        if was != 0.0:
            self.state_changed.emit(0.0)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play(1.0)

    def shuttle(self, direction: int) -> None:
        """L (direction +1) / J (-1): start, or go faster in that direction; K pauses."""
        if self.speed == 0 or math.copysign(1, self.speed) != direction:
            self.play(direction * SHUTTLE_SPEEDS[0])
            return
        i = SHUTTLE_SPEEDS.index(abs(self.speed)) if abs(self.speed) in SHUTTLE_SPEEDS else 0
        self.play(direction * SHUTTLE_SPEEDS[min(i + 1, len(SHUTTLE_SPEEDS) - 1)])

    def step(self, delta: int) -> None:
        self.pause()
        self.playhead.step(delta)

    def _restart_clock(self) -> None:
        self._t0 = time.perf_counter()
        self._f0 = self.playhead.frame

    def _tick(self) -> None:
        ph = self.playhead
        elapsed = time.perf_counter() - self._t0
        advance = elapsed * float(ph.fps) * self.speed
        target = self._f0 + (math.floor(advance) if advance >= 0 else math.ceil(advance))
        lo, hi = ph.in_point, ph.out_point
        if target > hi or target < lo:
            if not self.loop:
                ph.set_frame(hi if target > hi else lo)
                self.pause()
                return
            ph.set_frame(lo if target > hi else hi)
            self._restart_clock()
            if self.audio is not None and self.speed == 1.0:
                self.audio.play_from(ph.seconds())
            return
        skipped = abs(target - ph.frame) - 1
        if skipped > 0:
            self.dropped += skipped
        ph.set_frame(target)
