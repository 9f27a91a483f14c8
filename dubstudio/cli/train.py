"""Training: ``adapt`` (the renderer to one actor), ``prior train`` (person-generic renderer) and
``audio2expr train|show`` (the generic audio-to-expression model).

Each prints a progress bar and a status line every few seconds on stderr; Ctrl-C cancels at the
end of the current step: the checkpoint is saved and the same command resumes (exit status 130).
"""

from __future__ import annotations

from pathlib import Path

from dubstudio.app.adapt import ADAPT_MODES, RUN_STEPS, AdaptRequest, PriorRequest, adapt_job, prior_job
from dubstudio.app.device import DEVICE_HELP
from dubstudio.cli.common import TrainingProgress, add_common, emit, path_or_none


def _training_flags(sp, arch: bool, steps_default: int | None) -> None:
    if steps_default is None:
        sp.add_argument("--steps", type=int, required=True, help="total training steps (a rerun resumes up to this)")
    else:
        sp.add_argument("--steps", type=int, default=steps_default,
                        help=f"total training steps (default {steps_default}, as `run`; a rerun resumes up to this)")
    sp.add_argument("--device", default="auto", help=DEVICE_HELP)
    sp.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    sp.add_argument("--restart", action="store_true", help="ignore a saved checkpoint and train from step 0")
    sp.add_argument("--config", help="JSON file of TrainConfig overrides (e.g. {\"lr_g\": 1e-4, \"generator\": {\"width\": 32}}), or a preset's name: cuda (larger crops and network, perceptual and adversarial terms on the mouth; the default on a CUDA device)")
    if arch:
        sp.add_argument("--resolution", type=int, default=None, help="face crop size in pixels (default 128)")
        sp.add_argument("--width", type=int, default=None, help="generator base width (default 16; the GPU path can scale up)")
    sp.add_argument("--batch-size", type=int, default=None, help="windows per step (default 2)")
    sp.add_argument("--lr-g", type=float, default=None, help="generator learning rate")
    sp.add_argument("--lr-tex", type=float, default=None, help="neural texture learning rate")
    sp.add_argument("--w-vgg", type=float, default=None, help="perceptual loss weight (default 0 on CPU: see docs/decisions.md)")
    sp.add_argument("--vgg-region", choices=("crop", "mouth"), default=None,
                    help="what the perceptual loss sees: whole crops (default) or a box around the mouth (much cheaper on CPU)")
    sp.add_argument("--w-adv", type=float, default=None, help="adversarial (LSGAN) loss weight (default 0)")
    sp.add_argument("--seed", type=int, default=None)
    add_common(sp)


def _overrides(args) -> dict:
    keys = ("resolution", "width", "batch_size", "lr_g", "lr_tex", "w_vgg", "vgg_region", "w_adv", "seed", "tex_init")
    out = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if getattr(args, "val_frames", None) and getattr(args, "val_every", None) is not None:
        out["val_every"] = args.val_every
    return out


def register(sub) -> None:
    prior = sub.add_parser("prior", help="the person-generic renderer prior")
    psub = prior.add_subparsers(dest="prior_command", metavar="ACTION")
    prior.set_defaults(func=lambda args: (prior.print_help(), 0)[1])
    sp = psub.add_parser("train", help="train (or resume) a prior renderer over several actors")
    sp.add_argument("--projects", nargs="+", required=True,
                    help="tracked project folders, video files or folders of videos (one identity each)")
    sp.add_argument("--out", help="prior checkpoint to write (resumed if it exists; default: the models folder's "
                                  "default prior, registered: `dubstudio models list`)")
    sp.add_argument("--frames", help="frame range A:B used from every project (default: all)")
    sp.add_argument("--work", help="where to create projects for video files (default: the projects folder)")
    _training_flags(sp, arch=True, steps_default=None)
    sp.set_defaults(func=cmd_prior_train)

    sp = sub.add_parser("adapt", help="adapt the renderer to a project's actor")
    sp.add_argument("--project", required=True, help="tracked project folder")
    sp.add_argument("--prior", help="prior renderer: a checkpoint file or a registered name (`dubstudio models list`; "
                                    "'default'); without it: from scratch")
    sp.add_argument("--mode", choices=ADAPT_MODES,
                    help="texture: train only the actor's texture (smallest); full: fine-tune the renderer too; "
                         "mixed: full with the prior's data 1:1 (default: texture with --prior, else full)")
    sp.add_argument("--prior-projects", nargs="+", help="projects of the prior's identities for mixed mode "
                    "(default: where the prior recorded them)")
    sp.add_argument("--from-shot", metavar="SHOT",
                    help="start from this actor's adaptation on another shot (its project folder, video or actor file) "
                         "instead of a prior: a further shot of an actor needs far fewer steps")
    sp.add_argument("--frames", help="training frame range A:B (default: all)")
    sp.add_argument("--val-frames", help="held-out range C:D monitored during training (mouth PSNR)")
    sp.add_argument("--val-every", type=int, default=50, help="steps between validations (with --val-frames)")
    sp.add_argument("--no-detail-check", dest="detail_check", action="store_false",
                    help="train on every frame instead of holding a few short runs (about 10 %% of the shot) out to choose "
                         "the mouth detail's settings on (default: held out and checked, on shots of 150 frames or more)")
    sp.add_argument("--tex-init", choices=("prior-mean", "random"), default=None,
                    help="the actor's starting texture: the prior's mean texture (default) or noise (the paper)")
    _training_flags(sp, arch=True, steps_default=RUN_STEPS)
    sp.set_defaults(func=cmd_adapt)

    a2e = sub.add_parser("audio2expr", help="train or inspect the person-generic audio-to-expression model")
    asub = a2e.add_subparsers(dest="a2e_command", metavar="ACTION")
    a2e.set_defaults(func=lambda args: (a2e.print_help(), 0)[1])
    sp = asub.add_parser("train", help="train (or resume) the generic model on tracked clips with their own audio")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--projects", nargs="+",
                     help="tracked project folders, video files or folders of videos (each clip's own audio is the input)")
    src.add_argument("--synthetic", type=int, metavar="LINES",
                     help="train on LINES lines of speech synthesised by espeak-ng instead (how the built-in model is made: 600)")
    sp.add_argument("--out", help="checkpoint to write (default: the models folder's default generic model, which `dub --audio` uses)")
    sp.add_argument("--steps", type=int, help="training steps (default from TrainConfig)")
    sp.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1: best on a shared 2-core machine)")
    sp.add_argument("--val-fraction", type=float, help="hold out the end of every clip and keep the best weights (e.g. 0.1)")
    sp.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint and start from step 0")
    sp.add_argument("--work", help="where to create projects for video files (default: the projects folder)")
    add_common(sp)
    sp.set_defaults(func=cmd_a2e_train)
    sp = asub.add_parser("show", help="describe a generic model (default: the installed one)")
    sp.add_argument("model", nargs="?", help="checkpoint file (default: the registered default)")
    add_common(sp)
    sp.set_defaults(func=cmd_a2e_show)


def _prior(value):
    if not value:
        return None
    from dubstudio.nn.registry import resolve

    return resolve("prior", value)


def adapt_request(args) -> AdaptRequest:
    return AdaptRequest(
        Path(args.project), args.steps, mode=args.mode, prior=_prior(args.prior),
        prior_projects=tuple(Path(p) for p in args.prior_projects) if args.prior_projects else None,
        from_shot=path_or_none(args.from_shot), frames=args.frames, val_frames=args.val_frames, overrides=_overrides(args),
        config_file=path_or_none(args.config), device=args.device, threads=args.threads, restart=args.restart,
        detail_check=args.detail_check)


def cmd_adapt(args) -> int:
    req = adapt_request(args)
    req.check()
    with TrainingProgress(args) as progress:
        result = adapt_job(req, progress)
    emit(args, result)
    return 0


def cmd_prior_train(args) -> int:
    from dubstudio.nn.registry import model_path

    out = Path(args.out) if args.out else model_path("prior")
    req = PriorRequest(tuple(Path(p) for p in args.projects), out, args.steps, frames=args.frames, work=path_or_none(args.work),
                       overrides=_overrides(args), config_file=path_or_none(args.config), device=args.device,
                       threads=args.threads, restart=args.restart)
    with TrainingProgress(args) as progress:
        result = prior_job(req, progress)
    emit(args, result)
    return 0


def cmd_a2e_train(args) -> int:
    from dubstudio.app.audio2expr import A2ETrainRequest, a2e_train_job

    req = A2ETrainRequest(tuple(Path(p) for p in args.projects or ()), path_or_none(args.out), steps=args.steps,
                          threads=args.threads, val_fraction=args.val_fraction, restart=args.restart,
                          work=path_or_none(args.work), synthetic=args.synthetic or 0)
    with TrainingProgress(args) as progress:
        result = a2e_train_job(req, progress)
    emit(args, result)
    return 0


def cmd_a2e_show(args) -> int:
    from dubstudio.app.audio2expr import a2e_show_job

    emit(args, a2e_show_job(path_or_none(args.model)))
    return 0
