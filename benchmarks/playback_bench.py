"""The editor at HD: playback, compare playback and scrubbing, measured in the real main window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/playback_bench.py \
        --project talk_d=PROJECT_DIR --project dubber_a=PROJECT_DIR [--seconds 6] [--jumps 40] [--json OUT]

Each project is a tracked DubStudio project (``dubstudio track CLIP --project DIR``; compare mode
needs an adaptation, ``dubstudio adapt --project DIR``). For each, a fresh editor window at its
default size opens the project and then, with a stall monitor (10 ms timer) running throughout:

- ``scrub_open``: random playhead jumps right after the shot opens (what a user does first), each
  timed from the jump to the paint that shows that frame;
- ``prepare_s``: how long the background preparation (the display proxy) takes after opening;
- ``scrub``: the same jumps once it is ready;
- ``play`` / ``play_mesh``: playback from frame 0 for ``--seconds``, no overlays / mesh overlay:
  distinct frames painted per second, and how far the painted frame is from the playhead's clock
  when it is painted (A/V offset, ms);
- ``compare``: side-by-side playback over frames already rendered (rendered first, not timed).

Frames count as shown when a paint of the viewer draws them (the HUD is drawn on every paint), so
frames handed to the view but never painted do not count. Run it alone: two jobs on two cores
make every number here meaningless. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class Stalls:
    """Gaps between the ticks of a 10 ms timer on the GUI thread (a gap is a block)."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last: float | None = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now

    def phase(self) -> None:
        self.gaps.clear()
        self._last = None
        self.timer.start()

    def max_ms(self) -> float:
        return round(1000 * max(self.gaps, default=0.0), 1)


class PaintLog:
    """Every paint of the viewer: (time, frame painted, playhead frame, dubbed frame final)."""

    def __init__(self, viewer, compare) -> None:
        self.viewer, self.compare = viewer, compare
        self.events: list[tuple[float, int | None, int, int | None]] = []
        cls = type(viewer)
        original = cls.drawForeground
        log = self

        def draw(self_, painter, rect):  # noqa: ANN001
            original(self_, painter, rect)
            if self_ is log.viewer:
                log.events.append((time.perf_counter(), self_.shown_frame, self_.session.playhead.frame, log.compare.shown_final))

        cls.drawForeground = draw

    def since(self, t0: float):
        return [e for e in self.events if e[0] >= t0]


def pump(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def wait_until(app, cond, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.0005)
    return False


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 1) if xs else float("nan")


def scrub(app, win, paints: PaintLog, frames: list[int], timeout: float = 10.0) -> dict:
    times = []
    for f in frames:
        t0 = time.perf_counter()
        win.goto(int(f))
        ok = wait_until(app, lambda: any(e[1] == f for e in paints.since(t0)), timeout)
        times.append(1000 * (time.perf_counter() - t0) if ok else 1000 * timeout)
        pump(app, 0.05)  # a user does not jump 1000 times a second
    return {"jumps": len(times), "median_ms": pct(times, 50), "p95_ms": pct(times, 95), "max_ms": round(max(times), 1)}


def play(app, win, paints: PaintLog, seconds: float, compare: bool = False) -> dict:
    fps = float(win.session.playhead.fps)
    win.goto(0)
    pump(app, 0.3)
    t0 = time.perf_counter()
    win.playback.play(1.0)
    pump(app, seconds)
    win.playback.pause()
    ev = paints.since(t0)
    n = win.session.playhead.n_frames
    shown, offsets, previous, loops = 0, [], None, 0
    for t, f, _ph, final in ev:
        if f is None or f == previous:
            continue
        if compare and final != f:
            continue  # the dubbed side was not this frame's final render
        if previous is not None and f < previous:
            loops += 1  # playback wrapped at the out point (a clip shorter than the run)
        previous = f
        shown += 1
        offsets.append(1000 * ((f + loops * n) / fps - (t - t0)))  # > 0: the picture is ahead of the clock
    return {
        "frames_shown_per_s": round(shown / seconds, 2),
        "of_fps": fps,
        "paints": len(ev),
        "av_offset_ms_median": pct(offsets, 50),
        "av_offset_ms_p95_abs": pct([abs(o) for o in offsets], 95),
    }


def bench_project(app, name: str, root: Path, args) -> dict:
    from PySide6.QtCore import QSettings

    from dubstudio.gui.main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.show()
    stalls = Stalls()
    paints = PaintLog(win.viewer, win.compare)
    out: dict = {"project": str(root)}
    stalls.phase()
    t0 = time.perf_counter()
    win.open_path(root)
    if not wait_until(app, lambda: win.viewer.shown_frame is not None, 60):
        raise SystemExit(f"{name}: the first frame never showed")
    out["first_frame_s"] = round(time.perf_counter() - t0, 2)
    wait_until(app, lambda: win.session.tracking is not None, 60)
    pump(app, 0.5)
    out["stall_opening_max_ms"] = stalls.max_ms()
    stalls.phase()
    n = win.session.playhead.n_frames
    vp = win.viewer.viewport()
    out["viewer_px"] = [vp.width(), vp.height()]
    out["frame_px"] = list(win.viewer.source.size)
    rng = np.random.default_rng(0)
    jumps = [int(x) for x in rng.integers(0, n, args.jumps)]
    out["scrub_open"] = scrub(app, win, paints, jumps)
    out["scrub_open"]["stall_max_ms"] = stalls.max_ms()
    stalls.phase()
    prep = getattr(win.frames, "prepared", None)
    tp = time.perf_counter()
    if prep is not None:
        wait_until(app, prep, 600)
    out["prepare_s"] = round(time.perf_counter() - t0, 2) if prep is not None else None
    out["prepare_wait_s"] = round(time.perf_counter() - tp, 2)
    out["stall_preparing_max_ms"] = stalls.max_ms()

    stalls.phase()
    jumps = [int(x) for x in rng.integers(0, n, args.jumps)]
    out["scrub"] = scrub(app, win, paints, jumps)
    out["scrub"]["stall_max_ms"] = stalls.max_ms()

    for overlays, key in (((), "play"), (("mesh",), "play_mesh")):
        for o in list(win.viewer.enabled):
            win.viewer.set_overlay(o, False)
        for o in overlays:
            win.viewer.set_overlay(o, True)
        stalls.phase()
        out[key] = play(app, win, paints, args.seconds)
        out[key]["stall_max_ms"] = stalls.max_ms()
    for o in list(win.viewer.enabled):
        win.viewer.set_overlay(o, False)

    comp = win.compare
    comp.set_mode("side")
    p = comp.provider
    p.refresh()
    if p.kind == "neural" and not args.no_compare:
        fps = float(win.session.playhead.fps)
        last = min(n, int(args.seconds * fps) + 5)
        t1 = time.perf_counter()
        for f in range(last):
            if p.get(f) is None:
                p.request(f)
                wait_until(app, lambda f=f: p.get(f) is not None or f in p.errors, 120)
        out["compare_prerender_s"] = round(time.perf_counter() - t1, 1)
        missing = [f for f in range(last) if p.get(f) is None]
        out["compare_cached_of"] = [last - len(missing), last]
        stalls.phase()
        out["compare"] = play(app, win, paints, args.seconds, compare=True)
        out["compare"]["stall_max_ms"] = stalls.max_ms()
    else:
        out["compare"] = "skipped" if args.no_compare else f"skipped: no adaptation ({p.kind})"
    comp.set_mode("off")
    win.shutdown() if hasattr(win, "shutdown") else win.close()
    win.close()
    stalls.timer.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", action="append", required=True, help="NAME=DIR of a tracked project (repeat)")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--jumps", type=int, default=40)
    ap.add_argument("--json", help="also write the JSON here")
    ap.add_argument("--no-compare", action="store_true", help="skip compare playback (its frames take minutes to render)")
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "platform": os.environ.get("QT_QPA_PLATFORM", ""),
        "clips": {},
    }
    for spec in args.project:
        name, _, d = spec.partition("=")
        result["clips"][name] = bench_project(app, name, Path(d), args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
