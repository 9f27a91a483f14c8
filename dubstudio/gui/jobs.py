"""Core jobs on worker threads: progress, ETA, cancel, errors as messages (ARCHITECTURE rule 3).

A job is any core function ``fn(progress) -> result`` that reports through ``Progress`` and
stops at its next ``progress.update`` once the cancel token is set (``Cancelled``). The GUI
thread only receives throttled signals; it never waits for a job except at quit.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from superqt.utils import FunctionWorker

from dubstudio.core.jobs import CancelToken, Progress, ProgressEvent
from dubstudio.core.errors import Cancelled, DubStudioError

log = logging.getLogger(__name__)


_frozen_modules = 0


def freeze_heap_after_imports() -> bool:
    """``gc.freeze()`` when modules were imported since the last call (GUI thread only).

    Heavy imports (mediapipe, scipy, cv2: ~180k container objects) make every full garbage
    collection cost ~100 ms with the GIL held, in whichever thread triggers it: a GUI stall.
    Freezing moves the long-lived import-time objects out of the collector's view; it is done
    only after imports so that later cyclic garbage is still collected."""
    global _frozen_modules
    n = len(sys.modules)
    if n == _frozen_modules:
        return False
    gc.freeze()
    _frozen_modules = n
    return True


def preload_ml_modules() -> None:
    """Import torch and the training/rendering modules on the GUI thread at start-up.

    Importing torch initialises its C extension with the GIL held: measured stalls of 0.45 s on a
    quiet machine and over 1 s under load, in *every* thread, so a job that imported it first
    froze the window. Paid once before the window is shown, it is part of start-up instead.
    ``torch._dynamo`` too: every torch optimizer imports it on creation (``add_param_group`` is
    wrapped by ``torch._disable_dynamo``), ~2600 modules with sympy, which stalled the GUI
    100-200 ms at the start of each adaptation or audio-to-expression training."""
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    import dubstudio.rendering.renderer  # noqa: F401
    import dubstudio.training.trainer  # noqa: F401


class _StageProgress(Progress):
    """Progress that also reports stage changes (the core only reports ``update`` calls)."""

    def stage(self, name: str) -> None:
        super().stage(name)
        if self.callback is not None:
            self.callback(ProgressEvent(name, 0, None, 0.0, None))


class _Relay(QObject):
    """Carries a job's progress from its worker thread to the GUI thread, throttled: the GUI
    thread receives at most one event per ``throttle_s`` (stage changes and the last event
    always)."""

    progress = Signal(object)

    def __init__(self, throttle_s: float) -> None:
        super().__init__()
        self.throttle_s = throttle_s
        self._last_emit = 0.0
        self._last_stage: str | None = None

    def report(self, ev: ProgressEvent) -> None:  # worker thread
        now = time.perf_counter()
        final = ev.total is not None and ev.done >= ev.total
        if ev.stage != self._last_stage or final or now - self._last_emit >= self.throttle_s:
            self._last_stage, self._last_emit = ev.stage, now
            self.progress.emit(ev)


_POOL: QThreadPool | None = None


def _pool() -> QThreadPool:
    """The jobs' own thread pool: every job starts at once (Qt's global pool would queue a third
    job behind two long ones on a 2-core machine)."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(64)
        _POOL.setExpiryTimeout(5_000)
    return _POOL


class Job(QObject):
    """One run of a core function on a worker thread (superqt's ``FunctionWorker``). Signals
    arrive on the GUI thread, and exactly one of ``succeeded``/``failed``/``cancelled`` is
    followed by ``finished``.

    The function gets a ``Progress`` whose cancel token ``cancel()`` sets; it stops at its next
    ``progress.update`` (``Cancelled``). Its outcome is classified on the worker thread (a
    result, a user's error with its message, a cancel, or a bug with its traceback), so the GUI
    thread only shows it."""

    progress = Signal(object)  # ProgressEvent
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)
    finished = Signal()

    def __init__(self, name: str, fn: Callable[[Progress], Any], parent: QObject | None = None, throttle_s: float = 0.05) -> None:
        super().__init__(parent)
        self.name = name
        self.token = CancelToken()
        self.last_event: ProgressEvent | None = None
        self.error: str | None = None
        self.details: str = ""
        self.result: Any = None
        self.state = "new"  # new, running, cancelling, succeeded, failed, cancelled
        self._done = threading.Event()
        self._relay = _Relay(throttle_s)
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._worker = FunctionWorker(self._run, fn)
        self._worker.setAutoDelete(False)  # this Job owns it (and waits on it at quit)
        self._worker.returned.connect(self._on_outcome, Qt.ConnectionType.QueuedConnection)

    def _run(self, fn: Callable[[Progress], Any]) -> tuple[str, Any, str]:  # worker thread
        try:
            return "succeeded", fn(_StageProgress(self._relay.report, self.token)), ""
        except Cancelled as e:
            return "cancelled", str(e), ""
        except DubStudioError as e:
            return "failed", str(e), traceback.format_exc()
        except BaseException as e:  # a bug or an environment problem: a message, never a crash
            log.exception("job failed")
            return "failed", f"unexpected error: {type(e).__name__}: {e}", traceback.format_exc()
        finally:
            self._done.set()

    @property
    def running(self) -> bool:
        return self.state in ("running", "cancelling")

    def start(self) -> Job:
        self.state = "running"
        _pool().start(self._worker)
        return self

    def cancel(self) -> None:
        if self.running:
            self.state = "cancelling"
            self.token.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the function has returned (use only at quit)."""
        return self._done.wait(None if timeout_ms < 0 else timeout_ms / 1000)

    @Slot(object)
    def _on_progress(self, ev: ProgressEvent) -> None:
        if self.running:
            self.last_event = ev
            self.progress.emit(ev)

    @Slot(object)
    def _on_outcome(self, outcome: tuple[str, Any, str]) -> None:
        state, value, details = outcome
        self.state = state
        if state == "succeeded":
            self.result = value
            self.succeeded.emit(value)
        elif state == "cancelled":
            self.cancelled.emit(value)
        else:
            self.error, self.details = value, details
            self.failed.emit(value)
        self.finished.emit()


class JobManager(QObject):
    """Starts jobs, knows which run, and stops them all at quit."""

    job_started = Signal(object)
    job_finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs: list[Job] = []

    def start(self, name: str, fn: Callable[[Progress], Any], throttle_s: float = 0.05) -> Job:
        # Owned by Python (no Qt parent): the manager keeps it alive while it runs, callers
        # may keep it longer; nothing is deleted under a pending queued signal.
        job = Job(name, fn, None, throttle_s)
        self.jobs.append(job)
        job.finished.connect(lambda j=job: self._finished(j))
        job.start()
        self.job_started.emit(job)
        return job

    def running(self, name: str | None = None) -> list[Job]:
        return [j for j in self.jobs if j.running and (name is None or j.name == name)]

    def _finished(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        freeze_heap_after_imports()  # jobs import the heavy libraries lazily
        self.job_finished.emit(job)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel every running job and wait for its thread (at quit). True if all ended."""
        jobs = [j for j in self.jobs if j.running]
        for j in jobs:
            j.cancel()
        ok = True
        deadline = time.monotonic() + timeout_ms / 1000
        for j in jobs:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if not j.wait(left):
                log.error("job %s did not stop within %d ms", j.name, timeout_ms)
                ok = False
        return ok


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    s = max(1, int(round(seconds)))  # "0:00 left" reads as finished
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def describe(job: Job) -> str:
    """'Tracking · landmarks 34/50 · 0:02 left' for the job panel."""
    ev = job.last_event
    parts = [job.name]
    if job.state == "cancelling":
        parts.append("cancelling…")
    elif ev is not None:
        stage = ev.stage or "working"
        parts.append(f"{stage} {ev.done}/{ev.total}" if ev.total else f"{stage}…")
        eta = format_eta(ev.eta_s)
        if eta and ev.total:
            parts.append(f"{eta} left")
    else:
        parts.append("starting…")
    return " · ".join(parts)


class JobPanel(QWidget):
    """Status-bar panel: the newest running job's stage, progress bar, ETA and Cancel."""

    def __init__(self, manager: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.job: Job | None = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(160)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cancel_button.clicked.connect(self.cancel)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_button)
        manager.job_started.connect(self._attach)
        manager.job_finished.connect(self._detach)
        self.setVisible(False)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self._refresh()

    def _attach(self, job: Job) -> None:
        self.job = job
        job.progress.connect(self._refresh)
        self._refresh()
        self.setVisible(True)

    def _detach(self, job: Job) -> None:
        if job is self.job:
            running = self.manager.running()
            self.job = None
            if running:
                self._attach(running[-1])
            else:
                self.setVisible(False)

    def _refresh(self, *_: object) -> None:
        job = self.job
        if job is None:
            return
        self.label.setText(describe(job))
        ev = job.last_event
        if ev is not None and ev.total:
            self.bar.setRange(0, int(ev.total))
            self.bar.setValue(min(int(ev.done), int(ev.total)))
        else:
            self.bar.setRange(0, 0)  # busy indicator
        self.cancel_button.setEnabled(job.state == "running")
