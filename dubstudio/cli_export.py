"""CLI commands ``export`` and ``check-mark`` (wired into ``dubstudio.cli`` via ``register``).

    dubstudio export --project DIR -o OUT.mp4|OUT.mov|OUT.mxf|FOLDER [--format mp4|mov|mxf|png]
                     [--renderer neural|copy] [--train-frames A:B] [--device auto]
                     [--audio FILE | --original-audio | --no-audio] [--audio-offset S]
                     [--audio-policy pad|trim|fit|error] [--side-by-side [--review-scale 0.5]]
                     [--verify] [--restart] [--json]
    dubstudio check-mark FILE_OR_FOLDER [--json]
"""

from __future__ import annotations

from pathlib import Path

from dubstudio.core.errors import DubStudioError, ProjectError

__all__ = ["register", "cmd_export", "cmd_check_mark"]


def _renderer(args, project, tracking):
    from dubstudio.cli_render import _device, load_renderer
    from dubstudio.core.frames import parse_frames

    if args.renderer == "copy":
        from dubstudio.eval.copy_baseline import CopyBaseline

        if not args.train_frames:
            raise DubStudioError("--renderer copy needs --train-frames A:B (the frames it copies mouths from), e.g. --train-frames 0:100.")
        train = parse_frames(args.train_frames, tracking.n_frames)
        return CopyBaseline.open(tracking, project.check_video(), train, resolution=args.resolution, warp=True), "copy-baseline"
    if args.train_frames:
        raise DubStudioError("--train-frames is for the copy baseline; add --renderer copy, or leave it out.")
    stage = "adapt" if not args.mode else f"adapt_{args.mode}"
    if not args.renderer_checkpoint and project.stage_record(stage) is None:
        what = "an adaptation" if not args.mode else f"a '{args.mode}' adaptation"
        raise ProjectError(
            f"{project.root} has no {what} of the neural renderer yet; run `dubstudio adapt --project {project.root}` "
            f"first, or export with the copy baseline: --renderer copy --train-frames 0:100."
        )
    r = load_renderer(project, _device(args.device), args.renderer_checkpoint, args.mode)
    mode = getattr(r, "info", {}).get("mode") if isinstance(getattr(r, "info", None), dict) else None
    return r, f"neural-{mode}" if mode else "neural"


def _settings(args):
    from dubstudio.cli_render import _composite_settings
    from dubstudio.export.audio_track import AudioRequest
    from dubstudio.export.job import ExportSettings
    from dubstudio.export.mark import WatermarkSettings
    from dubstudio.export.review import ReviewSettings
    from dubstudio.rendering.background import BackgroundSettings
    from dubstudio.rendering.render_job import RenderSettings

    if args.audio:
        audio = AudioRequest("file", Path(args.audio), args.audio_offset, args.audio_policy)
    elif args.original_audio:
        audio = AudioRequest("original", None, args.audio_offset, args.audio_policy)
    elif args.no_audio:
        if args.audio_offset is not None:
            raise DubStudioError("--audio-offset has no effect with --no-audio; leave one of them out.")
        audio = AudioRequest("none")
    else:
        audio = AudioRequest("auto", None, args.audio_offset, args.audio_policy)
    if args.review_scale != 1.0 and not args.side_by_side:
        raise DubStudioError("--review-scale is for side-by-side reviews; add --side-by-side.")
    if args.batch_size < 1:
        raise DubStudioError("--batch-size must be at least 1.")
    try:
        review = ReviewSettings(scale=args.review_scale, labels=not args.no_labels, burn_in=not args.no_burn_in)
        watermark = WatermarkSettings(enabled=not args.no_watermark, amplitude=args.watermark_amplitude)
    except ValueError as e:
        raise DubStudioError(f"{e}.") from e
    return ExportSettings(
        format=args.format,
        audio=audio,
        side_by_side=args.side_by_side,
        review=review,
        watermark=watermark,
        render=RenderSettings(
            batch_size=args.batch_size,
            composite=_composite_settings(args),
            background=None if args.no_postprocess else BackgroundSettings(),
        ),
        crf=args.crf,
        preset=args.preset,
        prores_profile=args.prores,
        dnxhr_profile=args.dnxhr,
        use_curves=not args.tracked_curves,
        verify=args.verify,
        resume=not args.restart,
        guide_track=args.guide_track,
    )


def cmd_export(args) -> int:
    from dubstudio.cli import _emit, _progress
    from dubstudio.export.job import export_shot
    from dubstudio.project.store import Project
    from dubstudio.shot.tracking import load_tracking

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    settings = _settings(args)
    project = Project.open(args.project)
    tracking = load_tracking(project)
    project.check_video()
    renderer, name = _renderer(args, project, tracking)
    progress = _progress(args)
    try:
        result = export_shot(project, renderer, Path(args.output), settings, progress, tracking=tracking, renderer_name=name)
    finally:
        progress.close()
        close = getattr(renderer, "close", None)
        if callable(close):
            close()
    result["project"] = str(project.root)
    a = result["audio"]
    if a.get("kind") == "none":
        audio_line = "no audio" + (f" ({a['note']})" if a.get("note") else "")
    else:
        audio_line = f"audio {Path(a['source']).name} ({a['kind']}, {a['policy']}: padded {a['padded_end_s']:.3f} s, trimmed {a['trimmed_end_s']:.3f} s)"
        if a.get("note"):
            audio_line += f"; {a['note']}"
    lines = [
        f"exported {result['frames']} frames ({result['frames_with_face']} re-rendered) at {result['fps']} fps -> {result['output']}  [{result['frames_per_s']} frames/s]",
        f"  {audio_line}",
    ]
    if result.get("guide_track"):
        lines.append("  second audio track: the shot's own sound (guide)")
    if result.get("resume_note"):
        lines.append(f"  {result['resume_note']}")
    for st in result.get("stopped_exports_beside") or []:
        lines.append(f"  note: a stopped export to {st['output']} ({st['frames_finished']} of {st['frames']} frames, "
                     f"{st['bytes'] / 2**20:.0f} MB in {st['work_folder']}) is beside it: export to that name to continue it, "
                     f"or free the space with `dubstudio stopped-exports {Path(result['output']).parent} --delete`")
    if result.get("timecode"):
        lines.append(f"  starts at the shot's source timecode {result['timecode']}")
    if result.get("color"):
        lines.append(f"  the shot's colour tags kept: {result['color']}")
    if result.get("source_bits_kept"):
        lines.append("  the source's bit depth kept wherever the dub did not change the picture")
    if "verify" in result:
        v = result["verify"]
        lines.append("  verified with ffprobe: ok" if v["ok"] else "  ffprobe check FAILED: " + "; ".join(v["problems"]))
    _emit(args, result, "\n".join(lines))
    if "verify" in result and not result["verify"]["ok"]:
        return 1
    return 0


def cmd_check_mark(args) -> int:
    from dubstudio.cli import _emit
    from dubstudio.export.mark import detect, read_mark

    path = Path(args.path)
    if not path.exists():
        raise DubStudioError(f"{path} not found; give an exported video or PNG folder.")
    meta = read_mark(path)
    sizes = _original_size(args.original_size) if args.original_size else ("larger-standard" if args.rescaled else None)
    wm = detect(path, max_frames=args.max_frames, sizes=sizes)
    result = {"path": str(path), "metadata_synthetic": meta["synthetic"], "manifest": meta.get("manifest"), "watermark": wm,
              "synthetic": bool(meta["synthetic"] or wm["present"])}
    human = (
        f"{path.name}: metadata says {'SYNTHETIC' if meta['synthetic'] else 'nothing'}; "
        f"watermark score {wm['score']} over {wm['frames']} frames ({'present' if wm['present'] else 'not found'}, threshold {wm['threshold']})"
        + (f", found at {wm['size'][0]}x{wm['size'][1]} (the file was scaled)" if wm.get("size") else "")
    )
    _emit(args, result, human)
    return 0


def cmd_stopped_exports(args) -> int:
    from dubstudio.cli import _emit
    from dubstudio.export.resume import delete_stopped, stopped_in

    folder = Path(args.folder)
    if folder.is_file():
        folder = folder.parent  # an export's file: the folder it is in
    if not folder.is_dir():
        raise DubStudioError(f"{folder} is not a folder; give the folder the exports were written to.")
    names = args.name or None
    if args.delete:
        done = delete_stopped(folder, names)
        freed = sum(d["bytes"] for d in done if d["deleted"])
        lines = [f"deleted the stopped export to {d['output']} ({d['frames_finished']} of {d['frames']} frames, "
                 f"{d['bytes'] / 2**20:.0f} MB)" if d["deleted"] else f"kept {d['output']}: {d['reason']}" for d in done]
        human = "\n".join(lines + [f"{freed / 2**20:.0f} MB freed"]) if done else f"no stopped exports in {folder}"
        _emit(args, {"folder": str(folder), "deleted": done, "bytes_freed": freed}, human)
        return 0 if all(d["deleted"] for d in done) else 1
    found = [st for st in stopped_in(folder) if names is None or st["output"] in names]
    lines = [f"{st['output']}: {st['frames_finished']} of {st['frames']} frames, {st['bytes'] / 2**20:.0f} MB in {st['work_folder']}"
             + (" (exporting now)" if st["running"] else "") for st in found]
    human = ("\n".join(lines) + "\nexport to a name again to continue it, or delete with --delete") if found else \
        f"no stopped exports in {folder}"
    _emit(args, {"folder": str(folder), "stopped": found}, human)
    return 0


def _original_size(text: str) -> list[tuple[int, int]]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise DubStudioError(f"--original-size {text}: give WxH, e.g. 1920x1080") from None
    return [(w, h)]


def register(subparsers, common_flags=None) -> None:
    """Add ``export`` and ``check-mark`` to the ``dubstudio`` command's subparsers."""

    def common(sp):
        if common_flags is not None:
            common_flags(sp)
        else:
            sp.add_argument("--json", action="store_true", help="print one JSON object with results as the last stdout line")
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    sp = subparsers.add_parser(
        "export",
        help="export the dubbed shot: full frames + dubbed audio as mp4 (H.264+AAC), mov (ProRes+PCM) or PNGs+WAV",
        description="Re-render the whole shot with its final curves, composite it into the full frames and mux the dubbed audio.",
    )
    sp.add_argument("--project", required=True, help="project folder (tracked; adapted, unless --renderer copy)")
    sp.add_argument("-o", "--output", required=True,
                    help="OUT.mp4 (H.264 + AAC), OUT.mov (ProRes 422 + PCM), OUT.mxf (DNxHR + PCM, for Avid) or a folder (PNG sequence + audio.wav)")
    sp.add_argument("--format", choices=("mp4", "mov", "mxf", "png"), help="override the format guessed from the output name")
    g = sp.add_argument_group("renderer")
    g.add_argument("--renderer", choices=("neural", "copy"), default="neural", help="neural (default, needs `dubstudio adapt`) or the copy baseline")
    g.add_argument("--train-frames", help="frames the copy baseline copies mouths from, A:B (with --renderer copy)")
    g.add_argument("--resolution", type=int, default=256, help="copy baseline crop size (default 256)")
    g.add_argument("--device", default="auto", help="torch device for the neural renderer: auto, cpu, cuda ... (default auto)")
    g.add_argument("--renderer-checkpoint", help="actor checkpoint file (default: the project's latest adaptation)")
    g.add_argument("--mode", choices=("texture", "full", "mixed"), help="use the project's adaptation of this mode")
    g.add_argument("--region", choices=("lower", "mouth"), default="lower", help="region composited back (default: lower face + mouth)")
    g.add_argument("--colour", choices=("lowfreq", "meanstd", "none"), default="lowfreq", help="colour matching (default lowfreq)")
    g.add_argument("--detail", type=float, default=1.0, metavar="AMOUNT",
                   help="0..1: put the original's fine skin detail (stubble, pores) back on the render, following the edit, "
                        "never on the mouth (default 1; 0: the render's own, softer skin)")
    g.add_argument("--no-postprocess", action="store_true", help="skip the background-preserving post-process")
    g.add_argument("--tracked-curves", action="store_true", help="render the tracked curves, ignoring edits and dubbing")
    g.add_argument("--batch-size", type=int, default=8, help="frames rendered at once (default 8)")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice; 1 on a busy machine)")
    g = sp.add_argument_group("audio")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--audio", help="audio to mux (default: the dubbed audio recorded by `dubstudio dub`, else the shot's own)")
    src.add_argument("--original-audio", action="store_true", help="mux the shot's own audio")
    src.add_argument("--no-audio", action="store_true", help="no audio track")
    g.add_argument("--audio-offset", type=float, help="seconds into the shot where the audio starts (negative: skip its start); default: as dubbed, else 0")
    g.add_argument("--audio-policy", choices=("pad", "trim", "fit", "error"),
                   help="when the audio's length differs from the shot's by a frame or more: pad = pad with silence, error if "
                        "longer (default for dubbed audio); trim = cut at the shot's end, error if shorter; fit = either "
                        "(default for the shot's own audio); error = refuse")
    g.add_argument("--guide-track", action="store_true",
                   help="also the shot's own sound, as a second audio track (PNG: audio_original.wav): a guide for "
                        "reviewing the dub against the original performance and for the mix")
    g = sp.add_argument_group("output")
    g.add_argument("--side-by-side", action="store_true", help="review export: original | dubbed, side by side")
    g.add_argument("--review-scale", type=float, default=1.0, help="scale of each half in a side-by-side review (e.g. 0.5 for 1080p)")
    g.add_argument("--no-labels", action="store_true", help="side by side without the ORIGINAL / DUBBED labels")
    g.add_argument("--no-burn-in", action="store_true", help="side by side without the burned-in source timecode and frame number")
    g.add_argument("--crf", type=int, default=17, help="H.264 quality for mp4 (default 17, visually lossless)")
    g.add_argument("--preset", default="fast", help="x264 preset for mp4 (default fast)")
    g.add_argument("--prores", choices=("proxy", "lt", "standard", "hq"), default="hq", help="ProRes 422 profile for mov (default hq)")
    g.add_argument("--dnxhr", choices=("lb", "sq", "hq", "hqx"), default="hq",
                   help="DNxHR profile for mxf (default hq, 8-bit; hqx keeps a 10-bit source's bits)")
    g.add_argument("--no-watermark", action="store_true", help="no invisible watermark (the metadata mark is always written)")
    g.add_argument("--watermark-amplitude", type=float, default=2.0, help="watermark strength in luma code values (default 2)")
    g.add_argument("--verify", action="store_true", help="check the result with ffprobe (streams, codecs, frame count, durations)")
    g.add_argument("--restart", action="store_true",
                   help="render every frame again: by default an export to a name that holds a stopped (cancelled, failed, "
                        "killed) or finished export of the shot reuses its segments whose frames did not change")
    common(sp)
    sp.set_defaults(func=cmd_export)

    sp = subparsers.add_parser("stopped-exports", help="list (or delete) the stopped exports in a folder, "
                               "which hold disk space until continued")
    sp.add_argument("folder", help="the folder exports were written to (or one export's file in it)")
    sp.add_argument("--delete", action="store_true", help="delete them (an export running now is left alone)")
    sp.add_argument("--name", action="append", help="only the stopped export to this output name (repeatable)")
    common(sp)
    sp.set_defaults(func=cmd_stopped_exports)

    sp = subparsers.add_parser("check-mark", help="tell whether a video or PNG folder carries DubStudio's synthetic mark")
    sp.add_argument("path", help="video file or PNG folder")
    sp.add_argument("--max-frames", type=int, default=300, help="frames to scan for the watermark (default 300)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--rescaled", action="store_true",
                   help="the file may be a downscaled copy: also look at it resampled to each larger standard frame size (slower)")
    g.add_argument("--original-size", metavar="WxH", help="the file was scaled from this frame size: look at it resampled to it")
    common(sp)
    sp.set_defaults(func=cmd_check_mark)
