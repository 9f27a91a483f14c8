"""CLI twins of the training jobs: ``dubstudio prior train`` and ``dubstudio adapt``.

Wired into ``dubstudio.cli.build_parser`` with ``register(sub)``. Both print a progress bar and a
status line every few seconds on stderr; with ``--json`` the last stdout line is one JSON object
(final_loss, steps, steps_per_s, wall_s, stored_bytes, path, ...). Ctrl-C cancels at the end of
the current step: the checkpoint is saved and the same command resumes (exit status 130).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from dubstudio.core.errors import DubStudioError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mxf", ".mkv", ".avi", ".m4v")


def register(subparsers, common_flags=None) -> None:
    """Add ``prior`` (with ``train``) and ``adapt`` to the ``dubstudio`` subparsers.

    ``common_flags(sp)``, if given, is the CLI's helper that adds ``--json`` and ``-q``; without it
    the same two flags are added here."""

    def common(sp, arch: bool) -> None:
        sp.add_argument("--steps", type=int, required=True, help="total training steps (a rerun resumes up to this)")
        sp.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")
        sp.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
        sp.add_argument("--restart", action="store_true", help="ignore a saved checkpoint and train from step 0")
        sp.add_argument("--config", help="JSON file of TrainConfig overrides (e.g. {\"lr_g\": 1e-4, \"generator\": {\"width\": 32}})")
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
        if common_flags is not None:
            common_flags(sp)
        else:
            sp.add_argument("--json", action="store_true", help="print one JSON object with results as the last stdout line")
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    prior = subparsers.add_parser("prior", help="the person-generic renderer prior")
    psub = prior.add_subparsers(dest="prior_command", metavar="ACTION")
    prior.set_defaults(func=lambda args: (prior.print_help(), 0)[1])
    sp = psub.add_parser("train", help="train (or resume) a prior renderer over several actors")
    sp.add_argument("--projects", nargs="+", required=True,
                    help="tracked project folders, video files or folders of videos (one identity each)")
    sp.add_argument("--out", required=True, help="prior checkpoint to write (resumed if it exists)")
    sp.add_argument("--frames", help="frame range A:B used from every project (default: all)")
    sp.add_argument("--work", help="where to create projects for video files (default: beside each video)")
    common(sp, arch=True)
    sp.set_defaults(func=cmd_prior_train)

    sp = subparsers.add_parser("adapt", help="adapt the renderer to a project's actor")
    sp.add_argument("--project", required=True, help="tracked project folder")
    sp.add_argument("--prior", help="prior checkpoint (from `dubstudio prior train`); without it: from scratch")
    sp.add_argument("--mode", choices=("texture", "full", "mixed"),
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
    sp.add_argument("--tex-init", choices=("prior-mean", "random"), default=None,
                    help="the actor's starting texture: the prior's mean texture (default) or noise (the paper)")
    common(sp, arch=True)
    sp.set_defaults(func=cmd_adapt)


# ------------------------------------------------------------------------------------- helpers


def _config(args):
    from dubstudio.nn.generator import GeneratorConfig
    from dubstudio.nn.config import TrainConfig

    d = TrainConfig().to_dict()
    if args.config:
        try:
            over = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DubStudioError(f"cannot read the config overrides {args.config}: {e}") from e
        unknown = set(over) - set(d)
        if unknown:
            raise DubStudioError(f"unknown settings in {args.config}: {', '.join(sorted(unknown))}")
        for k, v in over.items():
            d[k] = {**d[k], **v} if isinstance(d[k], dict) else v
    flags = {"resolution": "resolution", "batch_size": "batch_size", "lr_g": "lr_g", "lr_tex": "lr_tex",
             "w_vgg": "w_vgg", "vgg_region": "vgg_region", "w_adv": "w_adv", "seed": "seed", "tex_init": "tex_init"}
    for a, k in flags.items():
        if getattr(args, a, None) is not None:
            d[k] = getattr(args, a)
    if getattr(args, "width", None) is not None:
        d["generator"] = {**d["generator"], "width": args.width}
    if getattr(args, "val_every", None) is not None and getattr(args, "val_frames", None):
        d["val_every"] = args.val_every
    cfg = TrainConfig.from_dict(d)
    if not isinstance(cfg.generator, GeneratorConfig):
        raise DubStudioError("the 'generator' override must be an object")
    if cfg.resolution % (2 ** (len(cfg.generator.mults) - 1)):
        raise DubStudioError(f"--resolution must be divisible by {2 ** (len(cfg.generator.mults) - 1)}")
    return cfg


def _setup_torch(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))


class _Reporter:
    """Progress for training: the CLI's tqdm bar plus a status line every few seconds; Ctrl-C
    cancels at the next step boundary (the job saves a checkpoint)."""

    def __init__(self, args) -> None:
        from dubstudio.cli import _progress

        self.progress = _progress(args)
        self.quiet = args.quiet or args.json
        self.last = 0.0
        bar_cb = self.progress.callback

        def cb(ev) -> None:
            bar_cb(ev)
            now = time.perf_counter()
            m = ev.metrics
            if self.quiet or "loss" not in m or (now - self.last < 5.0 and ev.done != ev.total):
                return
            self.last = now
            eta = m.get("eta_s") or 0.0
            line = (f"{ev.stage}: step {ev.done}/{ev.total}  loss {m['loss']:.4f}  mouth {m.get('mouth_psnr', 0):.1f} dB"
                    f"  {m.get('steps_per_s', 0):.2f} steps/s  ETA {int(eta // 60)}m{int(eta % 60):02d}s")
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)

        self.progress.callback = cb
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._sigint)
        except ValueError:  # not the main thread
            self._old = None
        return self.progress

    def _sigint(self, signum, frame) -> None:
        if self.progress.token.cancelled:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        print("\ndubstudio: stopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)
        self.progress.token.cancel()

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        self.progress.close()


def _open_projects(entries, work, args) -> list:
    from dubstudio.project.store import PROJECT_FILE, Project

    out = []
    for e in entries:
        p = Path(e)
        if p.is_dir() and (p / PROJECT_FILE).is_file():
            out.append(Project.open(p))
        elif p.is_dir():
            vids = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            if not vids:
                raise DubStudioError(f"{p} is neither a project nor a folder with videos ({', '.join(VIDEO_SUFFIXES)}).")
            out += [_track_video(v, work, args) for v in vids]
        elif p.is_file():
            out.append(_track_video(p, work, args))
        else:
            raise DubStudioError(f"{p} not found; give tracked project folders, video files or folders of videos.")
    return out


def _track_video(video: Path, work, args):
    from dubstudio.cli import _progress
    from dubstudio.project.store import Project
    from dubstudio.tracking.track import TrackSettings, track

    root = Path(work) / video.stem if work else video.with_name(video.stem + ".dubstudio")
    project = Project.create(root, video)
    progress = _progress(args)
    try:
        track(video, project, TrackSettings(), progress)
    finally:
        progress.close()
    return project


def _emit(args, result: dict, human: str) -> None:
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(human)


def _human(r, what: str) -> str:
    return (f"{what}: {r.steps} steps (resumed from {r.resumed_from}), final loss {r.final_loss:.4f}, "
            f"{r.steps_per_s:.2f} steps/s, {r.wall_s:.0f} s -> {r.path} ({r.stored_bytes / 1e6:.2f} MB)"
            + (f"\nwarning: {r.warning}" if getattr(r, "warning", None) else ""))


# ------------------------------------------------------------------------------------ commands


def cmd_prior_train(args) -> int:
    from dubstudio.core.frames import parse_frames
    from dubstudio.shot.tracking import tracking_of
    from dubstudio.training.trainer import train_prior

    _setup_torch(args)
    cfg = _config(args)
    projects = _open_projects(args.projects, args.work, args)
    frames = None
    if args.frames:
        n = max(tracking_of(p)[0].n_frames for p in projects)
        frames = parse_frames(args.frames, n)
    with _Reporter(args) as progress:
        r = train_prior(projects, Path(args.out), args.steps, cfg, args.device, progress, frames=frames, restart=args.restart)
    _emit(args, {**r.to_json(), "identities": len(projects)}, _human(r, "prior"))
    return 0


def cmd_adapt(args) -> int:
    from dubstudio.project.store import Project
    from dubstudio.core.frames import parse_frames
    from dubstudio.shot.tracking import tracking_of
    from dubstudio.shot.adaptation import actor_file_of
    from dubstudio.training.trainer import adapt

    _setup_torch(args)
    cfg = _config(args)
    project = Project.open(args.project)
    n = tracking_of(project)[0].n_frames
    mode = args.mode or ("texture" if args.prior else "full")
    start = actor_file_of(args.from_shot) if args.from_shot else None
    prior_projects = [Project.open(p) for p in args.prior_projects] if args.prior_projects else None
    frames = parse_frames(args.frames, n)
    val = parse_frames(args.val_frames, n) if args.val_frames else None
    with _Reporter(args) as progress:
        r = adapt(project, mode, args.steps, frames=frames, prior=args.prior, prior_projects=prior_projects, cfg=cfg,
                  device=args.device, progress=progress, restart=args.restart, val_frames=val, start_from=start)
    res = {**r.to_json(), "mode": mode, "project": str(project.root), "from_shot": str(start) if start else None}
    vals = [h for h in r.history if "val_mouth_psnr" in h]
    if vals:
        res["val_mouth_psnr"] = vals[-1]["val_mouth_psnr"]
        res["val_mask_psnr"] = vals[-1]["val_mask_psnr"]
    _emit(args, res, _human(r, f"adapt ({mode}{', from ' + args.from_shot if args.from_shot else ''})"))
    return 0
