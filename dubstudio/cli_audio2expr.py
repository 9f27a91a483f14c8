"""`dubstudio audio2expr train|show`: the person-generic audio-to-expression model.

    dubstudio audio2expr train --projects P1 P2 ... [--out FILE] [--steps N] [--threads N] [--json]
    dubstudio audio2expr show [FILE] [--json]

``train`` fits the generic model on tracked clips (project folders, videos or folders of videos;
videos are tracked first) and writes it to the per-user default place, where ``dubstudio dub
--audio`` finds it, unless ``--out`` says otherwise. A rerun with the same settings resumes an
interrupted run; Ctrl-C saves a checkpoint and exits 130. No generic weights ship with DubStudio:
without one, ``dub --audio`` trains a small per-actor model on the shot's own audio.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dubstudio.core.errors import DubStudioError


def register(sub, common) -> None:
    a2e = sub.add_parser("audio2expr", help="train or inspect the person-generic audio-to-expression model")
    asub = a2e.add_subparsers(dest="a2e_command", metavar="ACTION")
    a2e.set_defaults(func=lambda args: (a2e.print_help(), 0)[1])

    sp = asub.add_parser("train", help="train (or resume) the generic model on tracked clips with their own audio")
    sp.add_argument("--projects", nargs="+", required=True,
                    help="tracked project folders, video files or folders of videos (each clip's own audio is the input)")
    sp.add_argument("--out", help="checkpoint to write (default: the per-user model that `dub --audio` uses)")
    sp.add_argument("--steps", type=int, help="training steps (default from TrainConfig)")
    sp.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1: best on a shared 2-core machine)")
    sp.add_argument("--val-fraction", type=float, help="hold out the end of every clip and keep the best weights (e.g. 0.1)")
    sp.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint and start from step 0")
    sp.add_argument("--work", help="where to create projects for video files (default: beside each video)")
    common(sp)
    sp.set_defaults(func=cmd_train)

    sp = asub.add_parser("show", help="describe a generic model (default: the installed one)")
    sp.add_argument("model", nargs="?", help="checkpoint file (default: the per-user model)")
    common(sp)
    sp.set_defaults(func=cmd_show)


def cmd_train(args) -> int:
    from dubstudio.cli import _emit
    from dubstudio.cli_train import _open_projects, _Reporter
    from dubstudio.driving.audio2expr_train import TrainConfig, default_generic_path, train_generic

    overrides = {"threads": args.threads}
    if args.steps is not None:
        if args.steps < 1:
            raise DubStudioError("--steps must be at least 1.")
        overrides["steps"] = args.steps
    if args.val_fraction is not None:
        if not 0.0 <= args.val_fraction < 0.5:
            raise DubStudioError("--val-fraction must be in [0, 0.5).")
        overrides["val_fraction"] = args.val_fraction
    config = dataclasses.replace(TrainConfig(), **overrides)
    out = Path(args.out) if args.out else default_generic_path()
    if args.restart:
        out.unlink(missing_ok=True)
    projects = _open_projects(args.projects, args.work, args)
    with _Reporter(args) as progress:
        r = train_generic(projects, out, config, progress=progress)
    result = {
        "path": str(r.path), "steps": r.steps, "seconds": round(r.seconds, 1), "loss_first": r.loss_first,
        "loss_last": r.loss_last, "parameters": r.n_params, "clips": r.clips,
        "default_model": out.resolve() == default_generic_path().resolve(),
    }
    where = "installed as the default for `dub --audio`" if result["default_model"] else "use it with `dub --audio` by copying it to " + str(default_generic_path())
    _emit(args, result, f"audio2expr: {r.steps} steps on {len(projects)} clips in {r.seconds:.0f} s, "
                        f"loss {r.loss_first:.4f} -> {r.loss_last:.4f} -> {r.path} ({where})")
    return 0


def cmd_show(args) -> int:
    from dubstudio.cli import _emit
    from dubstudio.driving.audio2expr_train import default_generic_path, load_generic

    path = Path(args.model) if args.model else default_generic_path()
    if not path.is_file():
        raise DubStudioError(
            f"no generic model at {path}; train one with `dubstudio audio2expr train --projects ...` "
            "(without one, `dub --audio` trains a per-actor model on the shot's own audio)."
        )
    g = load_generic(path)
    cfg = g.config if isinstance(g.config, dict) else {}
    info = {"path": str(path), "steps": g.step, "fingerprint": g.fingerprint,
            "clips": cfg.get("clips", []), "controls": cfg.get("controls")}
    _emit(args, info, f"{path}: {g.step} steps, trained on {len(info['clips'])} clips")
    return 0
