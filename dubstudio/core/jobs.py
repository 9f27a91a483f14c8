"""The job protocol: long work reports progress through a callback and checks a cancel token.

The CLI drives a job with a tqdm bar, the GUI wraps the same function in a QThread worker
(ARCHITECTURE rule 3). A job function takes ``progress: Progress`` and calls ``progress.update``
at every unit of work; ``update`` raises ``Cancelled`` when the token is set, so cancellation
happens at a well-defined point where the job has saved what it finished.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from dubstudio.core.errors import Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class ProgressEvent:
    stage: str
    done: int
    total: int | None
    elapsed_s: float
    eta_s: float | None
    metrics: dict = field(default_factory=dict)


class Progress:
    """Progress reporter handed to job functions."""

    def __init__(
        self,
        callback: Callable[[ProgressEvent], None] | None = None,
        token: CancelToken | None = None,
    ) -> None:
        self.callback = callback
        self.token = token or CancelToken()
        self._stage = ""
        self._t0 = time.perf_counter()
        self._stage_t0 = self._t0
        self._stage_done0 = 0

    def stage(self, name: str) -> None:
        self._stage = name
        self._stage_t0 = time.perf_counter()
        self._stage_done0 = 0

    def continue_from(self, done: int) -> None:
        """This stage starts with ``done`` units already finished (a resumed job): its ETA counts
        only the pace of the units done now."""
        self._stage_done0 = int(done)

    def check(self) -> None:
        if self.token.cancelled:
            raise Cancelled(f"cancelled during '{self._stage}'; finished work is saved")

    def update(self, done: int, total: int | None = None, **metrics) -> None:
        self.check()
        if self.callback is None:
            return
        now = time.perf_counter()
        elapsed = now - self._stage_t0
        eta = None
        if total and done > self._stage_done0:
            eta = elapsed / (done - self._stage_done0) * (total - done)
        self.callback(ProgressEvent(self._stage, done, total, elapsed, eta, metrics))


class OrderedWorker:
    """Runs ``fn(item)`` for each ``put`` item, in order, on one background thread, at most
    ``depth`` items behind: the producer (e.g. the renderer) and the consumer (e.g. the encoder,
    which releases the GIL) then overlap. An error in ``fn`` is raised in the producer at its next
    ``put`` or at ``finish``; ``abort`` drops what is queued and waits for the item in hand."""

    def __init__(self, fn: Callable, depth: int = 4, name: str = "worker") -> None:
        import queue

        self._fn = fn
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is not None or self._stop.is_set():
                continue  # drain without working
            try:
                self._fn(item)
            except BaseException as e:  # noqa: BLE001 - handed to the producer
                self._error = e

    def put(self, item) -> None:
        import queue

        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for every item; raise the consumer's error, if any."""
        self._q.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Drop the queued items and wait for the one in hand (errors are secondary then)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.put(_END, timeout=0.1)
                break
            except Exception:  # noqa: BLE001 - queue.Full: the thread is still draining
                continue
        self._thread.join()


_END = object()
