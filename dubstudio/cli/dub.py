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

    sp = sub.add_parser("words", help="list the dubbed line's words (a dub with --text), or re-time one (its mouth follows)")
    sp.add_argument("--project", required=True, help="a dubbed project folder")
    sp.add_argument("--move", metavar="WORD", help="the word to re-time: its number in the list, or its text (text#2: the second time it is said)")
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--to", type=float, metavar="FRAME", help="the frame the word starts on")
    where.add_argument("--by", type=float, metavar="FRAMES", help="frames to move it by (negative: earlier)")
    where.add_argument("--back", action="store_true", help="back where the aligner placed it")
    sp.add_argument("--reset", action="store_true", help="every word back where the aligner placed it")
    add_common(sp)
    sp.set_defaults(func=cmd_words)


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


def cmd_words(args) -> int:
    from dubstudio.app.words import retime_word, shot_words
    from dubstudio.core.errors import DubStudioError
    from dubstudio.project.store import Project

    project = Project.open(Path(args.project))
    if args.reset:
        if args.move is not None or args.to is not None or args.by is not None or args.back:
            raise DubStudioError("--reset puts every word back: give it alone, or --move WORD --back for one.")
        words = retime_word(project, None, back=True)
        emit(args, {"words": [[round(f, 3), w] for f, w in words]},
             f"put the line's {len(words)} words back where the aligner placed them; the mouth followed")
        return 0
    if args.move is None:
        if args.to is not None or args.by is not None or args.back:
            raise DubStudioError("--to, --by and --back re-time a word: say which with --move.")
        words = shot_words(project)
        if not words and not args.json:
            print("this shot's dub has no words: dub the line with its script (dubstudio dub --text) to see them here.")
            return 0
        emit(args, {"words": [[round(f, 3), w] for f, w in words]},
             "\n".join(f"{i + 1:4d}  frame {f:7.1f}  {w}" for i, (f, w) in enumerate(words)))
        return 0
    emit(args, retime_word(project, args.move, to_frame=args.to, by=args.by, back=args.back))
    return 0
