"""The headless face of DubStudio: argv -> a request of ``dubstudio.app`` -> its job -> text.

Every subcommand that does work accepts ``--json``: its last stdout line is then one JSON
object with the results and metrics. Progress goes to stderr. Errors a user can meet end in
one clear line and exit status 2; a cancelled job (Ctrl-C) exits 130 with its work saved.
Nothing here decides anything a job does: that is ``dubstudio.app``, which the editor calls too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys

from dubstudio import __version__
from dubstudio.cli import batch, conform, dub, export, models, render, shot, train
from dubstudio.cli.common import Parser
from dubstudio.core.errors import Cancelled, DubStudioError

__all__ = ["main", "build_parser"]


def build_parser() -> Parser:
    p = Parser(prog="dubstudio", description="Visual dubbing: track, edit, re-render and export a shot.")
    p.add_argument("--version", action="version", version=f"dubstudio {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    shot.register_run(sub)
    shot.register(sub)
    dub.register(sub)
    train.register(sub)
    render.register(sub)
    export.register(sub)
    batch.register(sub)
    conform.register(sub)
    models.register(sub)
    shot.register_tools(sub)
    return p


def open_editor_or_run() -> int:
    """``dubstudio`` with no arguments: the editor on the built-in sample, or the headless run."""
    from dubstudio.cli.editor import open_editor_or_run as open_or_run

    return open_or_run(lambda: main(["run"]))


# options whose value may be negative: "--offset -1e9" would read as another option to argparse
SIGNED_OPTIONS = ("--offset", "--audio-offset", "--dubber-sync")
_NEGATIVE = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--offset -1.5e3`` -> ``--offset=-1.5e3`` (argparse takes plain negative numbers itself,
    not exponents or -inf, and would say "expected one argument")."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in SIGNED_OPTIONS and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed escaped, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
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
        return _error(args, str(e), type(e).__name__)
    except BrokenPipeError:  # `dubstudio info X | head`: the reader has gone, nothing to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the interpreter's own flush at exit is quiet
        return 0
    except OSError as e:  # a full disk, a folder made read-only under us: what the system said, in one line
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return _error(args, f"{e.strerror or e}{where}; check free space and permissions, and run the command again "
                            f"(finished work is kept)", type(e).__name__)


def _error(args, message: str, kind: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "type": kind}))
    print(f"dubstudio: error: {message}", file=sys.stderr)
    return 2
