"""Screenshots of the editor in its main modes, taken from the real window.

    xvfb-run -a python -m dubstudio.gui.screenshots docs/screenshots            # built-in sample
    xvfb-run -a python -m dubstudio.gui.screenshots /tmp/shots --video CLIP.mp4 --frame 60

Drives the window the way a user does (open, track in the background, key the jaw, insert a
viseme, toggle overlays, paint the mask) and saves ``tracking_overlay.png``,
``curve_editing.png``, ``grey_face.png``, ``mask_painting.png`` and ``job_running.png``. Projects
go to a temporary folder; nothing is written next to the video. Only the built-in sample belongs in ``docs/screenshots``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def _wait(signal, timeout_ms: int = 120_000, check=None) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()

    def done(*args):
        if check is None or check(*args):
            loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)


def _settle(ms: int = 300) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


MAX_BYTES = 300 * 1024


def _save(win, path: Path) -> None:
    """Save a grab of the window; over ``MAX_BYTES`` it is stored with an adaptive 256-colour
    palette (Pillow's median cut), which keeps UI text crisp."""
    img = win.grab().toImage()
    img.save(str(path), "PNG", 9)
    if path.stat().st_size > MAX_BYTES:
        try:
            from PIL import Image
        except ImportError:
            Image = None
        if Image is not None:
            rgb = Image.open(path).convert("RGB")
            rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"{path} {img.width()}x{img.height()} {path.stat().st_size // 1024} KB")


def take(out: Path, video: Path | None, frame: int | None, size: tuple[int, int]) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from dubstudio.gui.main_window import MainWindow
    from dubstudio.gui.prompts import AutoPrompter
    from dubstudio.gui.theme import apply_dark_theme
    from dubstudio.sample import ensure_sample

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dubstudio-shots-"))
    os.environ["DUBSTUDIO_HOME"] = str(work / "home")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_dark_theme(app)
    src = Path(video) if video else ensure_sample()
    clip = work / "shot" / src.name
    clip.parent.mkdir(parents=True)
    os.symlink(src.resolve(), clip)  # the project lands in the temp folder, the media stays put

    settings = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, prompter=AutoPrompter({"unsaved": "discard", "recover": "no"}))
    win.resize(*size)
    win.show()
    if not win.device.info:
        _wait(win.device.found, 20_000)
    win.open_path(clip)
    _wait(win.shot_ready)
    n = win.session.info.n_frames

    # 1. a job running: tracking in the background, half-way through the landmarks
    job = win.track()
    _wait(job.progress, check=lambda ev: ev.stage == "landmarks" and ev.total and ev.done >= ev.total // 2)
    win.session.playhead.set_frame(min(n - 1, (frame or n // 2) // 2))
    _settle(200)
    _save(win, out / "job_running.png")
    _wait(win.tracking_loaded)

    # 2. tracking overlay on a frame
    f = frame if frame is not None else n // 2
    for name in ("mesh", "landmarks", "crop", "mask"):
        win.viewer.set_overlay(name, True)
    win.viewer.set_overlay("grey", False)
    win.session.playhead.set_frame(f)
    _settle()
    win.viewer.frame_face(2.2)
    _settle()
    _save(win, out / "tracking_overlay.png")

    # 3. curve editing: keys on the jaw, a viseme, the tracked curve faded underneath
    tl = win.timeline
    a, b = max(2, f - 30), min(n - 3, f + 30)
    tl.add_key(a, 0.15)
    tl.add_key(f, 0.75)
    tl.add_key(min(n - 3, f + 12), 0.3)
    tl.insert_viseme(b, "oh")
    tl.select_key(f)
    win.session.playhead.set_range(max(0, a - 5), min(n - 1, b + 5))
    win.session.playhead.set_frame(f)
    for name in ("landmarks", "mask"):
        win.viewer.set_overlay(name, False)
    win.splitter.setSizes([430, 470])  # a taller curve editor for this one
    _settle()
    _save(win, out / "curve_editing.png")
    win.splitter.setSizes([600, 340])

    # 4. grey-face preview of the edited mesh (jaw open on this frame)
    win.viewer.set_overlay("mesh", False)
    win.viewer.set_overlay("crop", False)
    win.viewer.set_overlay("grey", True)
    win.viewer.frame_face(2.2)
    _settle()
    _save(win, out / "grey_face.png")

    # 5. mask painting: brush strokes up both cheeks and an erase along the chin
    win.viewer.set_overlay("grey", False)
    win.actions["mask_mode"].trigger()
    _mask_strokes(win, f)
    win.viewer.frame_face(2.2)
    _settle()
    _save(win, out / "mask_painting.png")

    win.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _mask_strokes(win, frame: int) -> None:
    """What a user's drags do (the tool's controller API, in image pixels)."""
    t, tool = win.session.tracking, win.mask_tool
    verts, side = t.vertices_image(frame)[:, :2], float(t.crop[frame][2])
    tool.panel.set_radius(max(3.0, 0.045 * side))
    strokes = (  # vertex, stroke start and end as offsets in crop sides, brush value
        (205, (0.0, -0.12), (0.0, 0.03), 1.0),
        (425, (0.0, -0.12), (0.0, 0.03), 1.0),
        (152, (-0.12, -0.015), (0.12, -0.015), -1.0),
    )
    for vertex, start, end, value in strokes:
        a, b = verts[vertex] + side * np.array(start), verts[vertex] + side * np.array(end)
        tool.controller.begin_stroke(frame, a, tool.panel.radius, tool.panel.feather, value)
        for k in range(1, 11):
            tool.controller.extend_stroke(a + (b - a) * k / 10)
        tool.controller.end_stroke()
    tool.hover(*(verts[330] + (0.08 * side, -0.03 * side)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--video", type=Path, help="a clip instead of the built-in sample (keep its shots out of the repo)")
    p.add_argument("--frame", type=int, help="frame to show (default: the middle)")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    return take(args.out, args.video, args.frame, (w, h))


if __name__ == "__main__":
    sys.exit(main())
