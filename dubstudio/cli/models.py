"""``models list|remove``: the priors and generic audio models in the models folder."""

from __future__ import annotations

from dubstudio.cli.common import add_common, emit


def register(sub) -> None:
    m = sub.add_parser("models", help="the trained models in the models folder (priors, generic audio models)")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION")
    m.set_defaults(func=cmd_list)
    sp = msub.add_parser("list", help="list them, with fingerprints and what each was trained on")
    add_common(sp)
    sp.set_defaults(func=cmd_list)
    sp = msub.add_parser("remove", help="delete one (NAME or KIND/NAME, as `models list` shows)")
    sp.add_argument("name")
    add_common(sp)
    sp.set_defaults(func=cmd_remove)


def cmd_list(args) -> int:
    from dubstudio.app.models import list_job

    if not hasattr(args, "json"):
        args.json = args.quiet = False
    emit(args, list_job())
    return 0


def cmd_remove(args) -> int:
    from dataclasses import asdict

    from dubstudio.app.models import remove_job

    e = remove_job(args.name)
    emit(args, {"removed": asdict(e)}, f"removed {e.kind}/{e.name} ({e.file})")
    return 0
