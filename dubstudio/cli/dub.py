"""``dub``: drive the actor's mouth from a dubbing actor's video or from dubbed audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from dubstudio.app.dub import (
    AUDIO_MODEL_HELP,
    DUBBER_SYNC_HELP,
    KEY_VISEMES_HELP,
    LANGUAGE_HELP,
    SCRIPT_HELP,
    DubRequest,
    apply_dub,
    describe,
    dub_job,
    dub_script,
    parse_sync,
    to_json,
)
from dubstudio.cli.common import add_common, emit, path_or_none, with_bar
from dubstudio.driving.placement import parse_offset

OFFSET_HELP = ("shot time (s) where the new performance starts; negative skips the start of the audio/dubber clip; "
               "tc: from timecode (the shot's start timecode against a Broadcast WAV's time reference or the clip's own timecode)")


def register(sub) -> None:
    sp = sub.add_parser("dub", help="drive the mouth curves from a dubbing actor's video or dubbed audio")
    sp.add_argument("--project", required=True, help="a tracked project folder")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--dubber", help="video of the dubbing actor performing the new line")
    src.add_argument("--audio", help="the dubbed dialogue track (wav, or any file with audio)")
    sp.add_argument("--offset", type=offset_arg, default=0.0, metavar="SECONDS|tc", help=OFFSET_HELP)
    sp.add_argument("--dubber-sync", default="check", metavar="check|auto|off|SECONDS", help=DUBBER_SYNC_HELP)
    sp.add_argument("--audio-model", default="auto", metavar="auto|shot|FILE", help=AUDIO_MODEL_HELP)
    script = sp.add_mutually_exclusive_group()
    script.add_argument("--text", help=SCRIPT_HELP)
    script.add_argument("--text-file", metavar="FILE", help="the line's script read from a UTF-8 text file")
    sp.add_argument("--language", default="en", help=LANGUAGE_HELP)
    sp.add_argument("--key-visemes", action="store_true", help=KEY_VISEMES_HELP)
    add_common(sp)
    sp.set_defaults(func=cmd_dub)


def offset_arg(text: str) -> float | str:
    """argparse type of `--offset`: seconds, or "tc" (placed by timecode once the files are known)."""
    try:
        return parse_offset(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def dub_request(args) -> DubRequest:
    sync = parse_sync(args.dubber_sync)  # auto | off | seconds (a float, as the editor gives it)
    return DubRequest(Path(args.project), audio=path_or_none(args.audio), dubber=path_or_none(args.dubber), offset=args.offset,
                      dubber_sync=sync, audio_model=args.audio_model, text=script_text(args), language=args.language,
                      key_visemes=args.key_visemes)


def script_text(args) -> str | None:
    """``--text`` or the contents of ``--text-file`` (None: no script)."""
    from dubstudio.core.errors import MediaError

    if getattr(args, "text_file", None):
        path = Path(args.text_file).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise MediaError(f"cannot read the script {path}: {e.strerror if isinstance(e, OSError) else 'not UTF-8 text'}.") from None
    return getattr(args, "text", None)


def cmd_dub(args) -> int:
    from dubstudio.project.store import Project

    req = dub_request(args)
    req.check()  # a bad flag or file fails before the project is opened
    drive = with_bar(args, dub_job, req)
    keys = apply_dub(Project.open(req.project), drive, req.key_visemes)
    lines = describe(drive, req.audio_model)
    if keys is not None:
        n = len(dub_script(drive)["visemes"])
        lines.append(f"keyed the script's {n} lip contact{'' if n == 1 else 's'} as viseme keys; move or delete them in the editor")
    emit(args, to_json(drive, req.project), "\n".join(lines))
    return 0
