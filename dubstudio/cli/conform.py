"""``conform import | export`` (an editor's cut to dubbing shots and back) and ``farm submit | task |
run`` (a shot list as an Open Job Description job): ``dubstudio.app.conform``, ``dubstudio.app.farm``."""

from __future__ import annotations

from pathlib import Path

from dubstudio.app.adapt import ADAPT_MODES, FROM_SHOT_STEPS, RUN_STEPS
from dubstudio.app.device import DEVICE_HELP
from dubstudio.cli.common import add_common, emit, path_or_none, with_bar


def register(sub) -> None:
    cp = sub.add_parser("conform", help="an editor's cut (EDL, OTIO, FCP XML) to a shot list, and the dubbed cut back")
    csub = cp.add_subparsers(dest="conform_cmd", required=True)
    ip = csub.add_parser("import", help="read a cut: its picture clips become shots, their lines cut from a dialogue stem")
    ip.add_argument("cut", help="the cut: .edl, .otio, .otioz, .xml (FCP 7) or .fcpxml")
    ip.add_argument("--stem", help="the language's dialogue stem for the whole cut (a Broadcast WAV placed by its time reference)")
    ip.add_argument("--stem-start", help="the stem's first sample as record timecode (a WAV without a time reference)")
    ip.add_argument("--media", action="append", default=[], help="a folder holding the cut's media (repeatable; the cut's "
                                                                   "folder is always searched)")
    ip.add_argument("--rate", help="the cut's frame rate when it does not say (an EDL; default 25)")
    ip.add_argument("--out", help="write here: each shot cut out with its handles (ProRes 422 HQ with its source timecode), "
                                  "its line, shots.csv and conform.json; without it only check and show the shots")
    ip.add_argument("--handles", type=int, default=0, help="extra source frames each side of every shot (default 0)")
    ip.add_argument("--language", default="dub", help="names the lines and exports (e.g. de; default dub)")
    ip.add_argument("--export-format", default="mov", choices=("mov", "mp4", "mxf"), help="the dubbed exports' format (default mov)")
    ip.add_argument("--no-face-check", action="store_true", help="skip looking for a face in each shot")
    ip.add_argument("--review", action="store_true", help="list every shot with its problems instead of stopping at them "
                                                          "(writes nothing; what the editor's Import Cut shows)")
    add_common(ip)
    ip.set_defaults(func=cmd_import)
    ep = csub.add_parser("export", help="the cut again, each dubbed shot's clip pointing at its export (OTIO and EDL)")
    ep.add_argument("folder", help="the folder `conform import --out` wrote")
    ep.add_argument("-o", "--output", required=True, help="the conformed cut, NAME.otio (NAME.edl is written beside it)")
    ep.add_argument("--no-edl", action="store_true", help="write the OTIO only")
    add_common(ep)
    ep.set_defaults(func=cmd_export)

    fp = sub.add_parser("farm", help="a shot list as an Open Job Description job bundle; run it here or on a farm")
    fsub = fp.add_subparsers(dest="farm_cmd", required=True)
    sp = fsub.add_parser("submit", help="write a job bundle (OpenJD: AWS Deadline Cloud, `openjd run`) for a shot list")
    sp.add_argument("shot_list")
    sp.add_argument("-o", "--output", required=True, help="the bundle's folder (template.yaml, parameter_values.yaml)")
    sp.add_argument("--projects", help="the shots' projects folder, shared by the workers (default: projects/ beside the list)")
    _stage_settings(sp)
    sp.add_argument("--python", help="the workers' Python with DubStudio installed (default: this one)")
    add_common(sp)
    sp.set_defaults(func=cmd_submit)
    tp = fsub.add_parser("task", help="one stage of one shot list line (what each task of a bundle runs)")
    tp.add_argument("shot_list")
    tp.add_argument("--line", type=int, required=True, help="the shot's line in the list")
    tp.add_argument("--stage", required=True, choices=("track", "adapt", "dub", "export"))
    tp.add_argument("--projects", required=True, help="the shots' projects folder")
    _stage_settings(tp)
    tp.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    add_common(tp)
    tp.set_defaults(func=cmd_task)
    rp = fsub.add_parser("run", help="run a job bundle on this machine with the OpenJD runner, tasks in parallel workers")
    rp.add_argument("bundle")
    rp.add_argument("--workers", type=int, default=1, help="tasks run at once (default 1)")
    rp.add_argument("--threads", type=int, help="torch threads per task (default: the cores shared by the workers)")
    add_common(rp)
    rp.set_defaults(func=cmd_run)


def _stage_settings(p) -> None:
    p.add_argument("--steps", type=int, default=RUN_STEPS, help=f"adaptation steps of an actor's first shot (default {RUN_STEPS})")
    p.add_argument("--from-shot-steps", type=int, default=FROM_SHOT_STEPS,
                   help=f"adaptation steps of an actor's further shots (default {FROM_SHOT_STEPS})")
    p.add_argument("--mode", choices=ADAPT_MODES, default="full", help="adaptation mode (texture/mixed need --prior)")
    p.add_argument("--prior", default="", help="prior renderer for each actor's first shot")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def cmd_import(args) -> int:
    from dubstudio.app.conform import ImportRequest, import_cut_job
    from dubstudio.conform.cut import parse_rate

    req = ImportRequest(Path(args.cut), path_or_none(args.stem), args.stem_start, tuple(Path(m) for m in args.media),
                        parse_rate(args.rate), None if args.review else path_or_none(args.out), args.handles, args.language,
                        f".{args.export_format}", not args.no_face_check, strict=not args.review)
    emit(args, with_bar(args, import_cut_job, req))
    return 0


def cmd_export(args) -> int:
    from dubstudio.app.conform import ConformRequest, conform_export_job

    res = with_bar(args, conform_export_job, ConformRequest(Path(args.folder), Path(args.output), not args.no_edl))
    emit(args, res)
    return 0 if not res.kept else 2


def _prior(args) -> Path | None:
    if not args.prior:
        return None
    from dubstudio.nn.registry import resolve

    return resolve("prior", args.prior)


def cmd_submit(args) -> int:
    from dubstudio.app.farm import SubmitRequest, submit_job

    req = SubmitRequest(Path(args.shot_list), Path(args.output), path_or_none(args.projects), args.steps, args.from_shot_steps,
                        args.mode, args.device, _prior(args), args.python)
    emit(args, submit_job(req))
    return 0


def cmd_task(args) -> int:
    from dubstudio.app.farm import TaskRequest, task_job

    req = TaskRequest(Path(args.shot_list), args.line, args.stage, Path(args.projects), args.steps, args.from_shot_steps,
                      args.mode, args.device, _prior(args), args.threads or None)
    res = with_bar(args, task_job, req)
    emit(args, res, human=f"line {res['line']} {res['stage']}: done in {res['wall_s']:.0f} s")
    return 0


def cmd_run(args) -> int:
    from dubstudio.app.farm import LocalRunRequest, run_bundle_job

    res = with_bar(args, run_bundle_job, LocalRunRequest(Path(args.bundle), args.workers, args.threads))
    emit(args, res)
    return 0 if res.ok else 1
