"""``export`` (the finished shot), ``check-mark`` (is a file marked as synthetic?) and
``stopped-exports`` (stopped exports holding disk space)."""

from __future__ import annotations

from pathlib import Path

from dubstudio.app.export import DNXHR, FORMATS, POLICIES, PRORES, X264_PRESETS, ExportRequest, export_job
from dubstudio.cli.common import add_common, emit, path_or_none, with_bar
from dubstudio.cli.render import composite_choice, renderer_choice, renderer_flags


def register(sub) -> None:
    sp = sub.add_parser(
        "export",
        help="export the dubbed shot: full frames + dubbed audio as mp4 (H.264+AAC), mov (ProRes+PCM) or PNGs+WAV",
        description="Re-render the whole shot with its final curves, composite it into the full frames and mux the dubbed audio.",
    )
    sp.add_argument("--project", required=True, help="project folder (tracked; adapted, unless --renderer copy)")
    sp.add_argument("-o", "--output", required=True,
                    help="OUT.mp4 (H.264 + AAC), OUT.mov (ProRes 422 + PCM), OUT.mxf (DNxHR + PCM, for Avid) or a folder (PNG sequence + audio.wav)")
    sp.add_argument("--format", choices=FORMATS, help="override the format guessed from the output name")
    g = sp.add_argument_group("renderer")
    g.add_argument("--renderer", choices=("neural", "copy"), default="neural", help="neural (default, needs `dubstudio adapt`) or the copy baseline")
    g.add_argument("--train-frames", help="frames the copy baseline copies mouths from, A:B (with --renderer copy)")
    renderer_flags(g, "copy baseline crop size (default 256)")
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
    g.add_argument("--audio-policy", choices=POLICIES,
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
    g.add_argument("--preset", default="fast", choices=X264_PRESETS, help="x264 preset for mp4 (default fast)")
    g.add_argument("--prores", choices=PRORES, default="hq", help="ProRes 422 profile for mov (default hq)")
    g.add_argument("--dnxhr", choices=DNXHR, default="hq",
                   help="DNxHR profile for mxf (default hq, 8-bit; hqx keeps a 10-bit source's bits)")
    g.add_argument("--no-watermark", action="store_true", help="no invisible watermark (the metadata mark is always written)")
    g.add_argument("--watermark-amplitude", type=float, default=2.0, help="watermark strength in luma code values (default 2)")
    g.add_argument("--verify", action="store_true", help="check the result with ffprobe (streams, codecs, frame count, durations)")
    g.add_argument("--restart", action="store_true",
                   help="render every frame again: by default an export to a name that holds a stopped (cancelled, failed, "
                        "killed) or finished export of the shot reuses its segments whose frames did not change")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing file that is not an earlier export of this shot (the shot's own video, "
                        "its dialogue and dubber clip are never written over)")
    add_common(sp)
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("stopped-exports", help="list (or delete) the stopped exports in a folder, "
                               "which hold disk space until continued")
    sp.add_argument("folder", help="the folder exports were written to (or one export's file in it)")
    sp.add_argument("--delete", action="store_true", help="delete them (an export running now is left alone)")
    sp.add_argument("--name", action="append", help="only the stopped export to this output name (repeatable)")
    add_common(sp)
    sp.set_defaults(func=cmd_stopped_exports)

    sp = sub.add_parser("check-mark", help="tell whether a video or PNG folder carries DubStudio's synthetic mark")
    sp.add_argument("path", help="video file or PNG folder")
    sp.add_argument("--max-frames", type=int, default=300, help="frames to scan for the watermark (default 300)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--rescaled", action="store_true",
                   help="the file may be a downscaled copy: also look at it resampled to each larger standard frame size (slower)")
    g.add_argument("--original-size", metavar="WxH", help="the file was scaled from this frame size: look at it resampled to it")
    add_common(sp)
    sp.set_defaults(func=cmd_check_mark)


def export_request(args) -> ExportRequest:
    """The request ``dubstudio export ARGS`` makes (the editor's dialog makes the same)."""
    audio = "file" if args.audio else "original" if args.original_audio else "none" if args.no_audio else "auto"
    return ExportRequest(
        Path(args.project), Path(args.output), format=args.format, renderer=renderer_choice(args),
        composite=composite_choice(args), tracked_curves=args.tracked_curves, threads=args.threads, audio=audio,
        audio_file=path_or_none(args.audio), audio_offset=args.audio_offset, audio_policy=args.audio_policy,
        guide_track=args.guide_track, side_by_side=args.side_by_side, review_scale=args.review_scale,
        labels=not args.no_labels, burn_in=not args.no_burn_in, crf=args.crf, preset=args.preset, prores=args.prores,
        dnxhr=args.dnxhr, watermark=not args.no_watermark, watermark_amplitude=args.watermark_amplitude,
        verify=args.verify, restart=args.restart, overwrite=args.overwrite,
    )


def cmd_export(args) -> int:
    req = export_request(args)
    req.settings()  # a wrong choice fails before the project is opened
    result = with_bar(args, export_job, req)
    emit(args, result)
    verify = result.get("verify")
    return 1 if verify is not None and not verify["ok"] else 0


def cmd_check_mark(args) -> int:
    from dubstudio.app.marks import check_mark_job, parse_size

    size = parse_size(args.original_size) if args.original_size else None
    emit(args, check_mark_job(Path(args.path), args.max_frames, size, args.rescaled))
    return 0


def cmd_stopped_exports(args) -> int:
    from dubstudio.app.marks import stopped_exports_job

    result = stopped_exports_job(Path(args.folder), args.name or None, args.delete)
    emit(args, result)
    return 0 if result.ok else 1
