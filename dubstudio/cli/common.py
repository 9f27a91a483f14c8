"""What every command shares: --json / -q, a tqdm bar per stage on stderr, the result printed
once (its ``describe()``, or one JSON object as the last stdout line), and Ctrl-C for training."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from dubstudio.core.jobs import Progress


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line on stderr (exit status 2), like every other
    error a user can meet; ``--help`` still shows the usage."""

    def error(self, message: str):  # noqa: D401 - argparse's name
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def add_common(sp) -> None:
    sp.add_argument("--json", action="store_true", help="print one JSON object with results as the last stdout line")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def progress(args) -> Progress:
    """A Progress that draws a tqdm bar per stage on stderr (quiet with --json or -q); close it
    with ``.close()``."""
    from tqdm import tqdm

    state = {"bar": None, "stage": None}

    def cb(ev):
        if state["stage"] != ev.stage:
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = tqdm(total=ev.total, desc=ev.stage, unit="f", file=sys.stderr, leave=False,
                                disable=args.quiet or args.json, mininterval=0.5)
            state["stage"] = ev.stage
        bar = state["bar"]
        if ev.total and bar.total != ev.total:
            bar.total = ev.total
        bar.update(ev.done - bar.n)

    p = Progress(cb)
    p.close = lambda: state["bar"] and state["bar"].close()
    return p


def with_bar(args, job, *a, **kw):
    """``job(*a, progress, **kw)`` with a progress bar that is closed whatever happens."""
    p = progress(args)
    try:
        return job(*a, p, **kw)
    finally:
        p.close()


def emit(args, result, human: str | None = None) -> None:
    """The result: one JSON object (``--json``) or its human description."""
    if args.json:
        data = result.to_json() if hasattr(result, "to_json") else result
        print(json.dumps(data, default=str))
    else:
        print(human if human is not None else result.describe())


class TrainingProgress:
    """Progress for training: the tqdm bar plus a status line every few seconds; Ctrl-C cancels
    at the next step boundary (the job saves a checkpoint), a second Ctrl-C gives up at once."""

    def __init__(self, args) -> None:
        self.progress = progress(args)
        self.quiet = args.quiet or args.json
        self.last = 0.0
        bar_cb = self.progress.callback

        def cb(ev) -> None:
            bar_cb(ev)
            now = time.perf_counter()
            m = ev.metrics
            if self.quiet or "loss" not in m or (now - self.last < 5.0 and ev.done != ev.total):
                return
            self.last = now
            eta = m.get("eta_s") or 0.0
            line = (f"{ev.stage}: step {ev.done}/{ev.total}  loss {m['loss']:.4f}  mouth {m.get('mouth_psnr', 0):.1f} dB"
                    f"  {m.get('steps_per_s', 0):.2f} steps/s  ETA {int(eta // 60)}m{int(eta % 60):02d}s")
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)

        self.progress.callback = cb
        self._old = None

    def __enter__(self) -> Progress:
        try:
            self._old = signal.signal(signal.SIGINT, self._sigint)
        except ValueError:  # not the main thread
            self._old = None
        return self.progress

    def _sigint(self, signum, frame) -> None:
        if self.progress.token.cancelled:
            raise KeyboardInterrupt
        print("\ndubstudio: stopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)
        self.progress.token.cancel()

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        self.progress.close()


def path_or_none(value):
    from pathlib import Path

    return Path(value) if value else None
