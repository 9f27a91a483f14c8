"""The headless face of DubStudio: argv -> a request of ``dubstudio.app`` -> its job -> text.

Every subcommand that does work accepts ``--json``: its last stdout line is then one JSON
object with the results and metrics. Progress goes to stderr. Errors a user can meet end in
one clear line and exit status 2; a cancelled job (Ctrl-C) exits 130 with its work saved.
Nothing here decides anything a job does: that is ``dubstudio.app``, which the editor calls too.
"""

from __future__ import annotations

import argparse
import json
import sys

from dubstudio import __version__
from dubstudio.cli import batch, dub, export, models, render, shot, train
from dubstudio.core.errors import Cancelled, DubStudioError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dubstudio", description="Visual dubbing: track, edit, re-render and export a shot.")
    p.add_argument("--version", action="version", version=f"dubstudio {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    shot.register_run(sub)
    shot.register(sub)
    dub.register(sub)
    train.register(sub)
    render.register(sub)
    export.register(sub)
    batch.register(sub)
    models.register(sub)
    shot.register_tools(sub)
    return p


def open_editor_or_run() -> int:
    """``dubstudio`` with no arguments: the editor on the built-in sample, or the headless run."""
    from dubstudio.cli.editor import open_editor_or_run as open_or_run

    return open_or_run(lambda: main(["run"]))


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
