"""``batch LIST.csv``: dub every shot of a shot list headless (``dubstudio.app.batch``)."""

from __future__ import annotations

import sys

from dubstudio.app.adapt import ADAPT_MODES, FROM_SHOT_STEPS, RUN_STEPS
from dubstudio.app.device import DEVICE_HELP
from dubstudio.app.export import POLICIES
from dubstudio.cli.common import add_common, emit, path_or_none, with_bar


def register(sub) -> None:
    sp = sub.add_parser("batch", help="dub every shot of a shot list (CSV: shot, audio or dubber, actor, offset, output, "
                                      "audio_policy); shots of one actor share its adaptation")
    sp.add_argument("shot_list", help="CSV file, one row per shot; paths relative to its folder; offset: seconds, or tc "
                                      "to place the line by timecode")
    sp.add_argument("--out-dir", help="where rows without an output go (default: beside each shot), as SHOT_dubbed.mp4")
    sp.add_argument("--steps", type=int, default=RUN_STEPS, help=f"adaptation steps of an actor's first shot (default {RUN_STEPS})")
    sp.add_argument("--from-shot-steps", type=int, default=FROM_SHOT_STEPS,
                    help=f"adaptation steps of an actor's further shots, started from the first (default {FROM_SHOT_STEPS})")
    sp.add_argument("--mode", choices=ADAPT_MODES, default="full", help="adaptation mode (texture/mixed need --prior)")
    sp.add_argument("--prior", help="prior renderer for each actor's first shot: a checkpoint file or a registered name")
    sp.add_argument("--audio-policy", choices=POLICIES, help="length policy for rows that do not set one (default pad)")
    sp.add_argument("--guide-track", action="store_true", help="also each shot's own sound, as the export's second audio track")
    sp.add_argument("--check", action="store_true", help="only check the list (files, columns, numbers, outputs) and say what would run")
    sp.add_argument("--overwrite", action="store_true", help="replace existing outputs that are not earlier exports of their "
                                                             "shots (a file the list reads is never written over)")
    sp.add_argument("--device", default="auto", help=DEVICE_HELP)
    sp.add_argument("--key-visemes", action="store_true", help="rows with a text: also key the script's lip contacts "
                                                                 "(p/b/m closures, f/v) as viseme keys on the curves")
    add_common(sp)
    sp.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    from dubstudio.app.batch import BatchRequest, batch_job, check_job, read_shot_list

    prior = None
    if args.prior:
        from dubstudio.nn.registry import resolve

        prior = resolve("prior", args.prior)
    req = BatchRequest(read_shot_list(args.shot_list), path_or_none(args.out_dir), steps=args.steps,
                       from_shot_steps=args.from_shot_steps, mode=args.mode, prior=prior, audio_policy=args.audio_policy,
                       guide_track=args.guide_track, device=args.device, overwrite=args.overwrite,
                       key_visemes=args.key_visemes)
    if args.check:
        emit(args, check_job(req))
        return 0

    def said(r) -> None:
        if not args.json:  # (-q silences the progress bars, not the results)
            print(r.describe(), file=sys.stderr)

    res = with_bar(args, batch_job, req, on_row=said)
    emit(args, res)
    return 0 if res.ok else 1


