"""The export dialog's choice, Qt-free: ``ExportChoice`` (the dialog's state as the arguments of
``dubstudio export``), the CLI's parser and settings for it, the export job the editor runs
(``run_export``), the message-bar summary of its result and the adaptations a project offers.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from pathlib import Path

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import DubStudioError

COPY_FRAMES = "0:100"


@dataclass(frozen=True)
class ExportChoice:
    """What the dialog asks for, as ``dubstudio export`` arguments (``argv``)."""

    project: Path
    output: Path
    format: str = "mp4"
    audio: str = "dubbed"  # dubbed (the recorded dub, CLI default) | original | file | none
    audio_file: Path | None = None
    audio_offset: float | None = None  # None: as dubbed (or 0)
    audio_policy: str | None = None
    side_by_side: bool = False
    review_scale: float = 1.0
    renderer: str = "neural"  # neural | copy
    mode: str | None = None  # None: the latest adaptation
    train_frames: str = COPY_FRAMES  # copy baseline only
    device: str = "auto"
    crf: int = 17
    prores: str = "hq"
    dnxhr: str = "hq"
    detail: bool = True  # the original's fine skin detail on the render (the CLI's --detail 1, its default)
    verify: bool = True
    restart: bool = False  # render everything again instead of continuing a stopped export
    guide_track: bool = False  # also the shot's own sound, as a second track

    def argv(self) -> list[str]:
        a = ["--project", str(self.project), "-o", str(self.output), "--format", self.format]
        if self.renderer == "copy":
            a += ["--renderer", "copy", "--train-frames", self.train_frames]
        else:
            if self.mode:
                a += ["--mode", self.mode]
            a += ["--device", self.device]
        if self.audio == "file":
            a += ["--audio", str(self.audio_file)]
        elif self.audio == "original":
            a += ["--original-audio"]
        elif self.audio == "none":
            a += ["--no-audio"]
        if self.audio != "none":
            if self.audio_offset is not None:
                a += ["--audio-offset", f"{self.audio_offset:g}"]
            if self.audio_policy:
                a += ["--audio-policy", self.audio_policy]
        if self.guide_track:
            a += ["--guide-track"]
        if self.side_by_side:
            a += ["--side-by-side"]
            if self.review_scale != 1.0:
                a += ["--review-scale", f"{self.review_scale:g}"]
        if self.format == "mp4" and self.crf != 17:
            a += ["--crf", str(self.crf)]
        if self.format == "mov" and self.prores != "hq":
            a += ["--prores", self.prores]
        if self.format == "mxf" and self.dnxhr != "hq":
            a += ["--dnxhr", self.dnxhr]
        if not self.detail:
            a += ["--detail", "0"]
        if self.verify:
            a += ["--verify"]
        if self.restart:
            a += ["--restart"]
        return a

    def command(self) -> str:
        return shlex.join(["dubstudio", "export", *self.argv()])


def parse_export_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by ``dubstudio export``'s own parser (its defaults included)."""
    from dubstudio import cli_export

    parser = argparse.ArgumentParser(prog="dubstudio", add_help=False)
    cli_export.register(parser.add_subparsers(dest="command"))
    try:
        return parser.parse_args(["export", *argv])
    except SystemExit as e:  # argparse's way of refusing: a bug in the dialog, not the user's
        raise DubStudioError(f"the export options were refused: {shlex.join(argv)}") from e


def build_settings(choice: ExportChoice):
    """The ``ExportSettings`` the CLI would build for the same arguments."""
    from dubstudio.cli_export import _settings

    return _settings(parse_export_args(choice.argv()))


def run_export(choice: ExportChoice, progress: Progress | None = None) -> dict:
    """The export job (worker thread): what ``dubstudio export`` does, without printing."""
    from dubstudio.cli_export import _renderer, _settings
    from dubstudio.export.job import export_shot
    from dubstudio.project.store import Project
    from dubstudio.shot.tracking import load_tracking

    progress = progress or Progress()
    args = parse_export_args(choice.argv())
    settings = _settings(args)
    project = Project.open(args.project)
    tracking = load_tracking(project)
    project.check_video()
    progress.stage("loading the renderer")
    renderer, name = _renderer(args, project, tracking)
    try:
        result = export_shot(project, renderer, Path(args.output), settings, progress, tracking=tracking, renderer_name=name)
    finally:
        close = getattr(renderer, "close", None)
        if callable(close):
            close()
    result["project"] = str(project.root)
    result["command"] = choice.command()
    return result


def describe_result(r: dict) -> str:
    """One paragraph for the message bar."""
    a = r.get("audio") or {}
    if a.get("kind") in (None, "none"):
        audio = "no audio"
    else:
        audio = f"{a['kind']} audio {Path(a['source']).name} ({a.get('policy')}"
        if a.get("padded_end_s"):
            audio += f", padded {a['padded_end_s']:.2f} s"
        if a.get("trimmed_end_s"):
            audio += f", trimmed {a['trimmed_end_s']:.2f} s"
        audio += ")"
    wm = (r.get("synthetic_mark") or {}).get("watermark") or {}
    mark = "marked as synthetic media (metadata" + (" + invisible watermark)" if wm.get("method") else ")")
    size = f"{r.get('width')}x{r.get('height')}"
    text = (f"Exported {r['frames']} frames ({r['duration_s']:.2f} s at {r['fps']} fps, {size}"
            f"{', side by side' if r.get('side_by_side') else ''}, {r.get('renderer')}) → {r['output']} · {audio} · {mark}")
    kept = [f"timecode {r['timecode']}"] if r.get("timecode") else []
    kept += [f"colour ({r['color']})"] if r.get("color") else []
    kept += ["bit depth"] if r.get("source_bits_kept") else []
    if r.get("guide_track"):
        text += " · track 2: the shot's own sound"
    if r.get("resume_note"):
        text += f" · {r['resume_note']}"
    stopped = r.get("stopped_exports_beside") or []
    if stopped:
        text += " · stopped exports beside it, holding disk space until exported again or deleted: " + ", ".join(
            f"{st['output']} ({st['frames_finished']}/{st['frames']} frames, {st['work_folder']})" for st in stopped)
    if kept:
        text += " · keeps the shot's " + "; ".join(kept)
    v = r.get("verify")
    if v is not None:
        text += " · ffprobe: ok" if v.get("ok") else " · ffprobe check FAILED: " + "; ".join(v.get("problems", []))
    return text


