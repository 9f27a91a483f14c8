"""The headless face of DubStudio: every job the editor can run has a command here.

Every subcommand that does work accepts ``--json``: its last stdout line is then one JSON
object with the results and metrics. Progress goes to stderr. Errors a user can meet end in
one clear line and exit status 2; a cancelled job (Ctrl-C) exits 130 with its work saved.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dubstudio import __version__
from dubstudio.core.errors import Cancelled, DubStudioError
from dubstudio.pipeline import FROM_SHOT_STEPS, RUN_STEPS

OVERLAY_SUFFIXES = (".mp4", ".mov", ".mkv", ".png", ".jpg")
RUN_STEPS_FROM_SHOT = FROM_SHOT_STEPS


def _progress(args):
    """A Progress that draws a tqdm bar per stage on stderr (quiet with --json)."""
    from tqdm import tqdm

    from dubstudio.core.jobs import Progress

    state = {"bar": None, "stage": None}

    def cb(ev):
        if state["stage"] != ev.stage:
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = tqdm(
                total=ev.total, desc=ev.stage, unit="f", file=sys.stderr, leave=False,
                disable=args.quiet or args.json, mininterval=0.5,
            )
            state["stage"] = ev.stage
        bar = state["bar"]
        if ev.total and bar.total != ev.total:
            bar.total = ev.total
        bar.update(ev.done - bar.n)

    p = Progress(cb)
    p.close = lambda: state["bar"] and state["bar"].close()
    return p


def _emit(args, result: dict, human: str) -> None:
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(human)


def _default_project_dir(video: Path) -> Path:
    from dubstudio.core.paths import default_project_dir

    return default_project_dir(video)


def cmd_track(args) -> int:
    from dubstudio.project.store import Project
    from dubstudio.tracking.track import TrackSettings, track

    video = Path(args.video)
    if video.is_dir():
        raise DubStudioError(f"{video} is a folder; give the path of a video file.")
    if args.overlay and Path(args.overlay).suffix.lower() not in OVERLAY_SUFFIXES:
        raise DubStudioError(
            f"cannot write an overlay as {Path(args.overlay).name}: use a .mp4 (video) or .png/.jpg (contact sheet) name."
        )
    project = Project.create(args.project or _default_project_dir(video), video)
    progress = _progress(args)
    try:
        tracking, metrics = track(video, project, TrackSettings(), progress, force=args.force)
    finally:
        progress.close()
    result = {"project": str(project.root), **metrics}
    if args.overlay:
        result["overlay"] = str(_write_overlay(video, tracking, Path(args.overlay), args))
    lines = [f"tracked {metrics['frames_with_face']}/{metrics['frames']} frames with a face -> {project.root}"]
    for k in ("tracking_fps", "landmark_rms_iod", "jaw_lip_corr", "crop_size_cv"):
        if k in metrics:
            lines.append(f"  {k:18s} {metrics[k]:.4f}")
    if args.overlay:
        lines.append(f"  overlay            {result['overlay']}")
    _emit(args, result, "\n".join(lines))
    return 0


def _write_overlay(video: Path, tracking, out: Path, args) -> Path:
    from dubstudio.tracking.overlay import write_overlay_grid, write_overlay_video

    if out.suffix.lower() in (".png", ".jpg"):
        return write_overlay_grid(video, tracking, out)
    progress = _progress(args)
    try:
        return write_overlay_video(video, tracking, out, progress)
    finally:
        progress.close()


def cmd_sample(args) -> int:
    from dubstudio.sample import build_sample, default_sample_path

    out_dir = Path(args.output) if args.output else default_sample_path().parent
    path = build_sample(out_dir, force=args.force)
    _emit(args, {"sample": str(path)}, str(path))
    return 0


def cmd_run(args) -> int:
    """The main job, headless. With new dialogue (``--audio`` or ``--dubber``): track, adapt the
    renderer, drive the mouth and export the dubbed shot. Without: track the shot and write a
    tracking overlay (the built-in sample's mouth never moves, so there is nothing to dub)."""
    from dubstudio.sample import ensure_sample

    video = Path(args.video) if args.video else ensure_sample()
    if not args.video:
        print(f"no input given: using the built-in sample {video}", file=sys.stderr)
    args.video = str(video)
    project_dir = Path(args.project) if args.project else _default_project_dir(video)
    args.project = str(project_dir)
    if args.audio or args.dubber:
        return _run_dub(args, video, project_dir)
    args.overlay = args.overlay or str(project_dir / "overlay.mp4")
    args.force = False
    return cmd_track(args)


def _run_dub(args, video: Path, project_dir: Path) -> int:
    from dubstudio.cli_dub import resolve_offset
    from dubstudio.pipeline import PipelineSettings, dub_shot

    placed = resolve_offset(args, video, Path(args.audio or args.dubber))
    if placed and not args.json:
        print(placed, file=sys.stderr)

    if args.steps is None:
        args.steps = RUN_STEPS_FROM_SHOT if args.from_shot else RUN_STEPS
    if args.steps < 1:
        raise DubStudioError("--steps must be at least 1.")
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = PipelineSettings(steps=args.steps, mode=args.mode, prior=Path(args.prior) if args.prior else None,
                                frames=args.frames, offset_s=args.offset, placement=placed, device=device, audio_policy=args.audio_policy,
                                from_shot=Path(args.from_shot) if args.from_shot else None, guide_track=args.guide_track,
                                audio_model=args.audio_model)
    out = Path(args.output) if args.output else project_dir / "dubbed.mp4"
    progress = _progress(args)
    try:
        result = dub_shot(video, project_dir, out, Path(args.audio) if args.audio else None,
                          Path(args.dubber) if args.dubber else None, settings, progress)
    finally:
        progress.close()
    ex = result["export"]
    if placed:
        result["dub"] |= {"offset_s": args.offset, "placement": placed}
    ok = ex.get("verify", {}).get("ok", True)
    _emit(args, result, f"dubbed {ex['frames']} frames ({result['dub']['driven_frames']} driven) -> {ex['output']}"
                        f"  [adapt {result['adapt']['steps']} steps{' (cached)' if result['adapt']['cached'] else ''}"
                        f"{' from ' + str(args.from_shot) if args.from_shot else ''}; "
                        f"export {ex['frames_per_s']} frames/s; ffprobe {'ok' if ok else 'FAILED'}]"
                        + (f"\nwarning: {result['adapt']['warning']}" if result["adapt"].get("warning") else ""))
    return 0 if ok else 1


def open_editor_or_run() -> int:
    """``dubstudio`` with no arguments: the editor on the built-in sample; where no window can
    open (no display), say so and run the headless pipeline on the sample instead."""
    from dubstudio.gui.app import display_problem

    problem = display_problem()
    if problem is None:
        from dubstudio.gui.app import main as gui_main
        from dubstudio.sample import ensure_sample

        return gui_main(str(ensure_sample()))
    print(f"dubstudio: cannot open the editor: {problem}", file=sys.stderr)
    print("dubstudio: running the headless pipeline on the built-in sample instead (`dubstudio run`; "
          "`dubstudio --help` lists every command)", file=sys.stderr)
    return main(["run"])


def cmd_info(args) -> int:
    from dubstudio.io.video import VideoReader

    if not _has_video(Path(args.video)):
        return _audio_info(args)
    with VideoReader(args.video) as r:
        info = {
            "path": str(r.path), "width": r.width, "height": r.height, "fps": str(r.fps),
            "frames": r.n_frames, "duration_s": round(float(r.duration_s), 3), "codec": r.codec,
            "pix_fmt": r.pix_fmt, "bit_depth": r.bit_depth, "pixel_aspect": f"{r.sar.numerator}:{r.sar.denominator}",
            "has_audio": r.has_audio,
        }
    from dubstudio.io.timecode import read_start_timecode

    info["timecode"] = read_start_timecode(args.video)
    _emit(args, info, "\n".join(f"{k:12s} {v}" for k, v in info.items()))
    return 0


def _has_video(path: Path) -> bool:
    """Whether ``path`` has a picture (unreadable files go to VideoReader, which says why)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            return bool(c.streams.video)
    except (av.FFmpegError, OSError, ValueError):
        return True


def _audio_info(args) -> int:
    """An audio file: its format, and where a Broadcast WAV's time reference places it."""
    from dubstudio.io.audio import audio_info

    path = Path(args.video)
    a = audio_info(path)
    info = {"path": str(path), "sample_rate": a.sample_rate, "channels": a.channels, "duration_s": round(a.duration_s, 3),
            "codec": a.codec, "time_reference": None, "starts_at": None}
    if path.suffix.lower() in (".wav", ".wave", ".bwf"):
        from dubstudio.io.bwf import read_bext

        try:
            bext = read_bext(path)
        except (OSError, ValueError):
            bext = None
        if bext is not None:
            secs = bext["time_reference"] / a.sample_rate
            hh, rest = divmod(secs, 3600)
            mm, ss = divmod(rest, 60)
            info |= {"time_reference": bext["time_reference"], "starts_at": f"{int(hh) % 24:02d}:{int(mm):02d}:{ss:06.3f}",
                     "description": bext["description"] or None}
    _emit(args, info, "\n".join(f"{k:14s} {v}" for k, v in info.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dubstudio.cli_dub import offset_arg

    p = argparse.ArgumentParser(prog="dubstudio", description="Visual dubbing: track, edit, re-render and export a shot.")
    p.add_argument("--version", action="version", version=f"dubstudio {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp):
        sp.add_argument("--json", action="store_true", help="print one JSON object with results as the last stdout line")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    sp = sub.add_parser("run", help="the headless pipeline (built-in sample when no video is given)")
    sp.add_argument("video", nargs="?", help="shot to process (default: the built-in sample)")
    sp.add_argument("--project", help="project folder (default: VIDEO's name + .dubstudio)")
    sp.add_argument("--overlay", help="tracking overlay to write when nothing is dubbed (default: PROJECT/overlay.mp4)")
    new = sp.add_mutually_exclusive_group()
    new.add_argument("--audio", help="new dialogue: track, adapt, drive the mouth from it and export the dubbed shot")
    new.add_argument("--dubber", help="a dubbing actor's video: as --audio, driven by their mouth and muxed with their audio")
    sp.add_argument("-o", "--output", help="dubbed export (.mp4, .mov, .mxf or a folder; default: PROJECT/dubbed.mp4)")
    sp.add_argument("--offset", type=offset_arg, default=0.0, metavar="SECONDS|tc",
                    help="shot time (s) where the new line starts; negative skips into it; tc: from timecode (a Broadcast "
                         "WAV's time reference, or the clip's start timecode, against the shot's)")
    sp.add_argument("--steps", type=int, help=f"adaptation steps (default {RUN_STEPS}: ~5 min on 2 CPU cores; "
                    f"{RUN_STEPS_FROM_SHOT} with --from-shot)")
    sp.add_argument("--mode", choices=("full", "texture", "mixed"), default="full", help="adaptation mode (texture/mixed need --prior)")
    start = sp.add_mutually_exclusive_group()
    start.add_argument("--prior", help="prior renderer checkpoint (dubstudio prior train): faster adaptation")
    start.add_argument("--from-shot", metavar="PROJECT",
                       help="another shot of this actor, already adapted (its project folder, video or actor file): "
                            "adaptation starts from it and needs far fewer steps")
    sp.add_argument("--frames", help="training frames A:B (default: the whole shot)")
    sp.add_argument("--audio-policy", choices=("pad", "trim", "fit", "error"), help="when the new audio is longer/shorter than the shot (default pad)")
    sp.add_argument("--guide-track", action="store_true", help="also the shot's own sound, as the export's second audio track")
    sp.add_argument("--audio-model", default="auto", metavar="auto|shot|FILE",
                    help="the model that turns dialogue into mouth motion: auto = the installed generic model "
                         "(`dubstudio audio2expr train`) adapted to the actor, or one trained on this shot alone when none is installed; "
                         "shot = always the shot's own; or a generic checkpoint file")
    sp.add_argument("--device", default="auto", help="torch device: auto (GPU when present), cpu, cuda")
    common(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("track", help="track the 3D face model through a shot")
    sp.add_argument("video")
    sp.add_argument("--project", help="project folder (created if missing; default: VIDEO's name + .dubstudio)")
    sp.add_argument("--overlay", help="write an overlay: .mp4 video of every frame, or .png contact sheet")
    sp.add_argument("--force", action="store_true", help="recompute even if a cached result is current")
    common(sp)
    sp.set_defaults(func=cmd_track)

    from dubstudio import cli_dub

    cli_dub.register(sub, common)
    from dubstudio import cli_audio2expr

    cli_audio2expr.register(sub, common)
    from dubstudio import cli_render, cli_train

    cli_train.register(sub, common)
    cli_render.register(sub, common)
    from dubstudio import cli_export

    cli_export.register(sub, common)
    from dubstudio import cli_batch

    cli_batch.register(sub, common)

    sp = sub.add_parser("sample", help="build the built-in sample clip")
    sp.add_argument("-o", "--output", help="folder to write sample_astronaut.mp4 into (default: the user data folder)")
    sp.add_argument("--force", action="store_true", help="rebuild even if it exists")
    common(sp)
    sp.set_defaults(func=cmd_sample)

    sp = sub.add_parser("gui", help="open the editor window on a project folder or a video")
    sp.add_argument("project", nargs="?", help="project folder or video to open")
    sp.set_defaults(func=lambda a: __import__("dubstudio.gui.app", fromlist=["main"]).main(a.project))

    sp = sub.add_parser("info", help="describe a media file (a shot: picture, timecode; a dialogue stem: its Broadcast WAV start)")
    sp.add_argument("video", metavar="FILE", help="a video, or an audio file")
    common(sp)
    sp.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return open_editor_or_run()
    try:
        return args.func(args)
    except Cancelled as e:
        print(f"dubstudio: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("dubstudio: interrupted; finished chunks are saved and the job resumes when run again", file=sys.stderr)
        return 130
    except DubStudioError as e:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(e), "type": type(e).__name__}))
        print(f"dubstudio: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
