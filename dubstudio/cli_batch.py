"""`dubstudio batch LIST.csv`: dub every shot of a shot list headless (``dubstudio.batch``)."""

from __future__ import annotations

import sys
from pathlib import Path

from dubstudio.core.errors import DubStudioError


def register(sub, common) -> None:
    from dubstudio.cli import RUN_STEPS, RUN_STEPS_FROM_SHOT

    sp = sub.add_parser("batch", help="dub every shot of a shot list (CSV: shot, audio or dubber, actor, offset, output, "
                                      "audio_policy); shots of one actor share its adaptation")
    sp.add_argument("shot_list", help="CSV file, one row per shot; paths relative to its folder; offset: seconds, or tc "
                                      "to place the line by timecode")
    sp.add_argument("--out-dir", help="where rows without an output go (default: beside each shot), as SHOT_dubbed.mp4")
    sp.add_argument("--steps", type=int, default=RUN_STEPS, help=f"adaptation steps of an actor's first shot (default {RUN_STEPS})")
    sp.add_argument("--from-shot-steps", type=int, default=RUN_STEPS_FROM_SHOT,
                    help=f"adaptation steps of an actor's further shots, started from the first (default {RUN_STEPS_FROM_SHOT})")
    sp.add_argument("--mode", choices=("full", "texture", "mixed"), default="full", help="adaptation mode (texture/mixed need --prior)")
    sp.add_argument("--prior", help="prior renderer checkpoint for each actor's first shot")
    sp.add_argument("--audio-policy", choices=("pad", "trim", "fit", "error"),
                    help="length policy for rows that do not set one (default pad)")
    sp.add_argument("--guide-track", action="store_true", help="also each shot's own sound, as the export's second audio track")
    sp.add_argument("--check", action="store_true", help="only check the list (files, columns, numbers) and say what would run")
    sp.add_argument("--device", default="auto", help="torch device: auto (GPU when present), cpu, cuda")
    common(sp)
    sp.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    from dubstudio.batch import read_shot_list, run_batch
    from dubstudio.cli import _emit, _progress
    from dubstudio.pipeline import PipelineSettings

    if args.steps < 1 or args.from_shot_steps < 1:
        raise DubStudioError("--steps and --from-shot-steps must be at least 1.")
    if args.prior and not Path(args.prior).is_file():
        raise DubStudioError(f"{args.prior} not found; check the path.")
    rows = read_shot_list(args.shot_list)
    if args.check:
        actors = {r.actor for r in rows if r.actor}
        lines = [f"line {r.line}: {r.shot.name} <- {(r.audio or r.dubber).name}" + (f" (actor {r.actor})" if r.actor else "")
                 + (f"\n  {r.placement}" if r.placement else "") for r in rows]
        _emit(args, {"shots": len(rows), "actors": sorted(actors),
                     "rows": [{"line": r.line, "shot": str(r.shot), "offset_s": r.offset_s, "placement": r.placement or None} for r in rows]},
              "\n".join(lines + [f"{_n(len(rows), 'shot')}, {_n(len(actors), 'actor')}: the list is fine"]))
        return 0
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = PipelineSettings(steps=args.steps, mode=args.mode, prior=Path(args.prior) if args.prior else None,
                                device=device, audio_policy=args.audio_policy, guide_track=args.guide_track)

    def said(r) -> None:
        if args.json:  # (-q silences the progress bars, not the results)
            return
        if r.ok:
            how = f"from {Path(r.from_shot).parents[2].name}" if r.from_shot else "adapted"
            print(f"line {r.line}: {Path(r.shot).name} -> {r.output}  [{how}, {r.adapt_steps} steps; {r.wall_s:.0f} s]"
                  + (f"\n  warning: {r.warning}" if r.warning else ""), file=sys.stderr)
        else:
            print(f"line {r.line}: {Path(r.shot).name} FAILED: {r.error}", file=sys.stderr)

    progress = _progress(args)
    try:
        res = run_batch(rows, settings, Path(args.out_dir) if args.out_dir else None, args.from_shot_steps, progress, said)
    finally:
        progress.close()
    failed = [r for r in res.rows if not r.ok]
    human = (f"{len(res.rows) - len(failed)} of {_n(len(res.rows), 'shot')} dubbed in {res.wall_s:.0f} s"
             + ("; failed: " + ", ".join(f"line {r.line} ({Path(r.shot).name})" for r in failed) +
                ". Fix them and run the list again: finished work is kept" if failed else ""))
    _emit(args, res.to_json(), human)
    return 0 if res.ok else 1


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"
