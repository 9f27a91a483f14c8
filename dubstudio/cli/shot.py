"""``run`` (the main job), ``track``, and the tools: ``info``, ``sample``, ``gui``, ``settings``."""

from __future__ import annotations

import sys
from pathlib import Path

from dubstudio.app.adapt import ADAPT_MODES, FROM_SHOT_STEPS, RUN_STEPS
from dubstudio.app.device import DEVICE_HELP
from dubstudio.app.dub import AUDIO_MODEL_HELP, KEY_VISEMES_HELP, LANGUAGE_HELP, SCRIPT_HELP, resolve_offset
from dubstudio.app.export import POLICIES
from dubstudio.app.run import RunRequest, run_job, with_steps_for
from dubstudio.app.track import FACE_HELP, TrackRequest, track_job
from dubstudio.cli.common import add_common, emit, path_or_none, with_bar
from dubstudio.cli.dub import OFFSET_HELP, offset_arg, script_text

PROJECT_HELP = "project folder (default: the video's project in the projects folder, see `dubstudio settings`)"


def register_run(sub) -> None:
    sp = sub.add_parser("run", help="the headless pipeline (built-in sample when no video is given)")
    sp.add_argument("video", nargs="?", help="shot to process (default: the built-in sample)")
    sp.add_argument("--project", help=PROJECT_HELP)
    sp.add_argument("--overlay", help="tracking overlay to write when nothing is dubbed (default: PROJECT/overlay.mp4)")
    new = sp.add_mutually_exclusive_group()
    new.add_argument("--audio", help="new dialogue: track, adapt, drive the mouth from it and export the dubbed shot")
    new.add_argument("--dubber", help="a dubbing actor's video: as --audio, driven by their mouth and muxed with their audio")
    sp.add_argument("-o", "--output", help="dubbed export (.mp4, .mov, .mxf or a folder; default: PROJECT/dubbed.mp4)")
    sp.add_argument("--offset", type=offset_arg, default=0.0, metavar="SECONDS|tc", help=OFFSET_HELP)
    sp.add_argument("--steps", type=int, help=f"adaptation steps (default {RUN_STEPS}: ~5 min on 2 CPU cores; "
                    f"{FROM_SHOT_STEPS} with --from-shot)")
    sp.add_argument("--mode", choices=ADAPT_MODES, default="full", help="adaptation mode (texture/mixed need --prior)")
    start = sp.add_mutually_exclusive_group()
    start.add_argument("--prior", help="prior renderer: a checkpoint file or a registered name (`dubstudio models list`)")
    start.add_argument("--from-shot", metavar="PROJECT",
                       help="another shot of this actor, already adapted (its project folder, video or actor file): "
                            "adaptation starts from it and needs far fewer steps")
    sp.add_argument("--frames", help="training frames A:B (default: the whole shot)")
    sp.add_argument("--no-detail-check", dest="detail_check", action="store_false",
                    help="train on every frame instead of holding a few short runs (about 10 %% of the shot) out to choose "
                         "the mouth detail's settings on")
    sp.add_argument("--audio-policy", choices=POLICIES, help="when the new audio is longer/shorter than the shot (default pad)")
    sp.add_argument("--guide-track", action="store_true", help="also the shot's own sound, as the export's second audio track")
    sp.add_argument("--audio-model", default="auto", metavar="auto|shot|FILE", help=AUDIO_MODEL_HELP)
    script = sp.add_mutually_exclusive_group()
    script.add_argument("--text", help=SCRIPT_HELP)
    script.add_argument("--text-file", metavar="FILE", help="the line's script read from a UTF-8 text file")
    sp.add_argument("--language", default="en", help=LANGUAGE_HELP)
    sp.add_argument("--key-visemes", action="store_true", help=KEY_VISEMES_HELP)
    sp.add_argument("--device", default="auto", help=DEVICE_HELP)
    sp.add_argument("--face", metavar="N|X,Y[@FRAME]|auto", help=FACE_HELP)
    sp.add_argument("--overwrite", action="store_true", help="replace an existing output that is not an earlier export of this "
                                                             "shot (the shot's video and its dialogue are never written over)")
    add_common(sp)
    sp.set_defaults(func=cmd_run)


def register(sub) -> None:
    sp = sub.add_parser("track", help="track the 3D face model through a shot")
    sp.add_argument("video")
    sp.add_argument("--project", help=PROJECT_HELP + "; created if missing")
    sp.add_argument("--overlay", help="write an overlay: .mp4 video of every frame, or .png contact sheet")
    sp.add_argument("--force", action="store_true", help="recompute even if a cached result is current")
    sp.add_argument("--face", metavar="N|X,Y[@FRAME]|auto", help=FACE_HELP)
    add_common(sp)
    sp.set_defaults(func=cmd_track)


def register_tools(sub) -> None:
    sp = sub.add_parser("sample", help="build the built-in sample clip")
    sp.add_argument("-o", "--output", help="folder to write sample_astronaut.mp4 into (default: the user data folder)")
    sp.add_argument("--force", action="store_true", help="rebuild even if it exists")
    add_common(sp)
    sp.set_defaults(func=cmd_sample)

    sp = sub.add_parser("gui", help="open the editor window on a project folder or a video")
    sp.add_argument("project", nargs="?", help="project folder or video to open")
    sp.set_defaults(func=cmd_gui)

    sp = sub.add_parser("info", help="describe a media file (a shot: picture, timecode; a dialogue stem: its Broadcast WAV start)")
    sp.add_argument("video", metavar="FILE", help="a video, or an audio file")
    add_common(sp)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("relink", help="point a project at its video's new place (the same file, moved or renamed)")
    sp.add_argument("video", metavar="NEW_PATH", help="the project's video where it is now")
    sp.add_argument("--project", required=True, help="the project folder")
    add_common(sp)
    sp.set_defaults(func=cmd_relink)

    sp = sub.add_parser("settings", help="show or set where projects go (one rule for the CLI, batch and the editor)")
    sp.add_argument("--projects-dir", metavar="DIR", help="the folder new projects are made in (empty string: back to the default)")
    add_common(sp)
    sp.set_defaults(func=cmd_settings)


def cmd_track(args) -> int:
    req = TrackRequest(Path(args.video), path_or_none(args.project), args.force, path_or_none(args.overlay), args.face)
    emit(args, with_bar(args, track_job, req))
    return 0


def cmd_run(args) -> int:
    """The main job, headless. With new dialogue (``--audio`` or ``--dubber``): track, adapt the
    renderer, drive the mouth and export the dubbed shot. Without: track the shot and write a
    tracking overlay (the built-in sample's mouth never moves, so there is nothing to dub)."""
    from dubstudio.app.sample import ensure_sample
    from dubstudio.core.paths import default_project_dir

    video = Path(args.video) if args.video else ensure_sample()
    if not args.video:
        print(f"no input given: using the built-in sample {video}", file=sys.stderr)
    project = Path(args.project) if args.project else default_project_dir(video)
    if not (args.audio or args.dubber):
        req = TrackRequest(video, project, overlay=Path(args.overlay) if args.overlay else project / "overlay.mp4", face=args.face)
        emit(args, with_bar(args, track_job, req))
        return 0
    line = Path(args.audio or args.dubber)
    offset_s, placed = resolve_offset(args.offset, video, line)
    if placed and not args.json:
        print(placed, file=sys.stderr)
    req = with_steps_for(RunRequest(
        video, audio=path_or_none(args.audio), dubber=path_or_none(args.dubber), project=project, output=path_or_none(args.output),
        offset_s=offset_s, placement=placed, mode=args.mode, prior=_prior(args.prior), from_shot=path_or_none(args.from_shot),
        frames=args.frames, detail_check=args.detail_check, audio_policy=args.audio_policy, guide_track=args.guide_track, audio_model=args.audio_model,
        text=script_text(args), language=args.language, key_visemes=args.key_visemes, device=args.device, face=args.face, overwrite=args.overwrite), args.steps, FROM_SHOT_STEPS)
    result = with_bar(args, run_job, req)
    emit(args, result)
    return 0 if result.ok else 1


def _prior(value):
    if not value:
        return None
    from dubstudio.nn.registry import resolve

    return resolve("prior", value)


def cmd_sample(args) -> int:
    from dubstudio.app.sample import build_sample, default_sample_path

    out_dir = Path(args.output) if args.output else default_sample_path().parent
    path = build_sample(out_dir, force=args.force)
    emit(args, {"sample": str(path)}, str(path))
    return 0


def cmd_gui(args) -> int:
    from dubstudio.cli.editor import open_editor

    return open_editor(args.project)


def cmd_info(args) -> int:
    from dubstudio.app.info import info_job

    emit(args, info_job(Path(args.video)))
    return 0


def cmd_relink(args) -> int:
    from dubstudio.project.store import Project

    project = Project.open(args.project)
    old = project.video_path
    new = project.relink(Path(args.video))
    emit(args, {"project": str(project.root), "video": str(new), "was": str(old)}, f"{project.root} now reads {new} (was {old})")
    return 0


def cmd_settings(args) -> int:
    from dubstudio.core import paths

    if args.projects_dir is not None:
        paths.set_projects_dir(Path(args.projects_dir) if args.projects_dir else None)
    d = {"projects_dir": str(paths.projects_dir()), "set_by": paths.projects_dir_source(),
         "models_dir": str(paths.models_dir()), "settings_file": str(paths.settings_file())}
    emit(args, d, "\n".join(f"{k:14s} {v}" for k, v in d.items()))
    return 0
