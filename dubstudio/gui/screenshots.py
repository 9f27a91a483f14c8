"""Screenshots of the editor in its main modes, taken from the real window.

    xvfb-run -a python -m dubstudio.gui.screenshots docs/screenshots            # built-in sample
    xvfb-run -a python -m dubstudio.gui.screenshots /tmp/shots --video CLIP.mp4 --frame 60
    xvfb-run -a python -m dubstudio.gui.screenshots /tmp/shots --project PROJECT_DIR --dub-audio SPEECH.wav

Drives the window the way a user does (open, track in the background, key the jaw, insert a
viseme, toggle overlays, paint the mask, adapt, compare, dub, export) and saves
``job_running.png`` (tracking mid-run), ``tracking_overlay.png``, ``curve_editing.png``,
``grey_face.png``, ``mask_painting.png``, ``adapt_running.png`` (the adaptation mid-run with its
loss plot), ``adapt_done.png`` (finished, with the mouth detail's check and the Advanced options),
``side_by_side.png`` (compare: original | neural dubbed), ``dubbed_waveform.png``
(after Dub from Audio: both waveforms) and ``export_dialog.png``. Projects go to a temporary
folder (``--project`` is copied there: a tracked project skips ``job_running.png``); nothing is
written next to the video. Only the built-in sample belongs in ``docs/screenshots``.
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


def _save(widget, path: Path) -> None:
    """Save a grab of the window; over ``MAX_BYTES`` it is stored with an adaptive 256-colour
    palette (Pillow's median cut), which keeps UI text crisp."""
    img = widget.grab().toImage()
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


def take(out: Path, video: Path | None, frame: int | None, size: tuple[int, int], project: Path | None = None,
         dub_audio: Path | None = None, adapt_steps: int = 40, dub_text: str | None = None) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from dubstudio.gui.main_window import MainWindow
    from dubstudio.gui.prompts import AutoPrompter
    from dubstudio.gui.theme import apply_dark_theme
    from dubstudio.app.sample import ensure_sample

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dubstudio-shots-"))
    os.environ["DUBSTUDIO_HOME"] = str(work / "home")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_dark_theme(app)
    if project is not None:
        clip = work / "shot" / Path(project).name
        clip.parent.mkdir(parents=True)
        shutil.copytree(project, clip, symlinks=True)  # a copy: the original project stays as it is
    else:
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
    if win.session.tracking is None:
        job = win.track()
        _wait(job.progress, check=lambda ev: ev.stage == "landmarks" and ev.total and ev.done >= ev.total // 2)
        win.session.playhead.set_frame(min(n - 1, (frame or n // 2) // 2))
        _settle(200)
        _save(win, out / "job_running.png")
        _wait(win.tracking_loaded)
    else:
        print("already tracked: no job_running.png")

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
    win.splitter.setSizes([540, 400])

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
    win.actions["mask_mode"].trigger()  # leave the mask mode, and its tint
    win.viewer.set_overlay("mask", False)

    # 6.-9. adaptation mid-run, side-by-side compare, a dub's waveform, the export dialog
    _adapt_compare_dub_export(win, out, f, work, dub_audio, adapt_steps, dub_text)

    win.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _adapt_compare_dub_export(win, out: Path, f: int, work: Path, dub_audio: Path | None, adapt_steps: int,
                              dub_text: str | None = None) -> None:
    s, panel = win.session, win.adapt_panel
    n = s.info.n_frames
    win.session.playhead.set_frame(f)
    win.viewer.set_overlay("mesh", False)
    win.viewer.fit()

    # 6. the adaptation panel mid-run: loss plot and the real | rendered preview
    done = (s.project.stage_record("adapt_full") or {}).get("metrics", {}).get("steps", 0)
    panel.mode.setCurrentText("full")
    panel.prior.setText("")
    panel.steps.setValue(done + adapt_steps)
    panel.frames.setText(f"0:{min(100, n)}")
    panel.preview_every = max(2, adapt_steps // 10)
    win.adapt_dock.show()
    win.adapt_dock.raise_()
    job = panel.start()
    _wait(job.progress, 600_000, check=lambda ev: bool(ev.metrics) and "loss" in ev.metrics and ev.done >= done + int(adapt_steps * 0.6))
    _settle(300)
    _save(win, out / "adapt_running.png")
    if job.running:
        _wait(job.finished, 600_000)
    panel.set_advanced_visible(True)  # finished: what the check chose, and the option to skip it
    _settle(300)
    _save(win, out / "adapt_done.png")
    panel.set_advanced_visible(False)

    # 7. compare side by side: the original | the neural renderer's dubbed frame
    c = win.compare
    c.set_mode("side")
    _wait(c.dubbed_shown, 300_000, check=lambda i: i == f and c.provider.kind == "neural")
    win.viewer.fit()
    _settle()
    _save(win, out / "side_by_side.png")
    c.set_mode("off")

    # 8. Dub from Audio: the dubbed line's waveform under the original one, its script's words, the driven jaw curve
    if dub_audio is None:
        dub_audio, dub_text = _sample_line(work / "dub_line.wav", float(s.info.duration_s)), SAMPLE_LINE
    d = win.dubbing
    d.dub_from_audio(dub_audio, start_s=0.0, text=dub_text)
    _wait(d.dub_audio_changed, 600_000, check=lambda: d.dub_audio is not None)
    if d.visemes_action.isEnabled():  # the script's lip contacts as keys on the driven jaw
        d.visemes_action.trigger()
    win.timeline.set_control("jaw_open")
    win.splitter.setSizes([400, 500])
    win.viewer.fit()
    _settle()
    _save(win, out / "dubbed_waveform.png")
    win.splitter.setSizes([540, 400])

    # 9. the Dub from Audio dialog, with a script
    from dubstudio.gui.dubbing import DubSourceDialog

    dd = DubSourceDialog("audio", win.services.settings, win, shot_video=s.project.video_path)
    dd.path.setText(str(dub_audio))
    dd.script.setPlainText(dub_text or "")
    dd.show()
    _settle()
    _save(dd, out / "dub_dialog.png")
    dd.close()

    # 10. the export dialog (over the dubbed shot)
    dlg = win.export.make_dialog()
    dlg.show()
    _settle()
    _save(dlg, out / "export_dialog.png")
    dlg.close()


SAMPLE_LINE = "And this is the new line, dubbed in the editor."


def _sample_line(path: Path, seconds: float) -> Path:
    """A second line of dialogue for the built-in sample (espeak-ng, like the sample itself)."""
    import soundfile as sf

    from dubstudio.app.sample import _speech

    sf.write(str(path), _speech(SAMPLE_LINE, seconds), 48_000)
    return path


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
    p.add_argument("--project", type=Path, help="a project folder (copied to a temporary folder first)")
    p.add_argument("--dub-audio", type=Path, help="dialogue for the dub screenshot (default: a line spoken by espeak-ng)")
    p.add_argument("--dub-text", help="the --dub-audio line's script (its words show on the timeline)")
    p.add_argument("--adapt-steps", type=int, default=40, help="adaptation steps run for adapt_running.png (default 40)")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    args = p.parse_args(argv)
    for flag, path in (("--project", args.project), ("--video", args.video), ("--dub-audio", args.dub_audio)):
        if path is not None and not path.exists():
            p.error(f"{flag} {path}: no such file or folder")
    if args.project is not None and not (args.project / "project.json").is_file():
        p.error(f"--project {args.project}: not a DubStudio project (no project.json)")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size {args.size}: give WxH, e.g. 1440x900")
    return take(args.out, args.video, args.frame, (w, h), args.project, args.dub_audio, args.adapt_steps, args.dub_text)


if __name__ == "__main__":
    sys.exit(main())
