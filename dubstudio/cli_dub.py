"""`dubstudio dub`: drive the actor's mouth from a dubbing actor's video or from dubbed audio."""

from __future__ import annotations

from pathlib import Path


def register(sub, common) -> None:
    sp = sub.add_parser("dub", help="drive the mouth curves from a dubbing actor's video or dubbed audio")
    sp.add_argument("--project", required=True, help="a tracked project folder")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--dubber", help="video of the dubbing actor performing the new line")
    src.add_argument("--audio", help="the dubbed dialogue track (wav, or any file with audio)")
    sp.add_argument("--offset", type=offset_arg, default=0.0, metavar="SECONDS|tc",
                    help="shot time (s) where the new performance starts; negative skips the start of the audio/dubber clip; "
                         "tc: from timecode (the shot's start timecode against a Broadcast WAV's time reference or the clip's own timecode)")
    sp.add_argument("--dubber-sync", default="auto", metavar="auto|off|SECONDS",
                    help="the dubber clip's own audio/picture offset: auto = measured (their mouth against their sound, and with the installed audio model) and "
                         "applied when clear; off; or SECONDS (> 0: their audio is late). The audio is never moved, the motion is.")
    sp.add_argument("--audio-model", default="auto", metavar="auto|shot|FILE",
                    help="the model that turns dialogue into mouth motion: auto = the installed generic model "
                         "(`dubstudio audio2expr train`) adapted to the actor, or one trained on this shot alone when none is installed; "
                         "shot = always the shot's own; or a generic checkpoint file")
    common(sp)
    sp.set_defaults(func=cmd_dub)


def offset_arg(text: str) -> float | str:
    """argparse type of `--offset`: seconds, or "tc" (placed by timecode once the files are known)."""
    import argparse

    from dubstudio.driving.placement import parse_offset

    try:
        return parse_offset(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def resolve_offset(args, shot_video: Path, line: Path) -> str | None:
    """``args.offset`` in seconds; for "tc" the line is placed by timecode (its description is returned)."""
    from dubstudio.driving.placement import TIMECODE_OFFSET, place_by_timecode
    from dubstudio.core.errors import MediaError

    if args.offset != TIMECODE_OFFSET:
        return None
    if not line.is_file():
        raise MediaError(f"{line} not found; choose an existing file.")
    p = place_by_timecode(shot_video, line)
    args.offset = p.offset_s
    return p.describe()


def cmd_dub(args) -> int:
    from dubstudio.cli import _emit, _progress
    from dubstudio.project.store import Project

    sync = _sync_arg(args.dubber_sync)  # a bad flag fails before anything is opened
    project = Project.open(args.project)
    placed = resolve_offset(args, project.video_path, Path(args.dubber or args.audio))
    progress = _progress(args)
    try:
        if args.dubber:
            from dubstudio.driving.dub import dub_from_dubber

            result = dub_from_dubber(project, Path(args.dubber), args.offset, progress, sync=sync, placement=placed)
        else:
            from dubstudio.driving.dub import dub_from_audio

            result = dub_from_audio(project, Path(args.audio), args.offset, progress, placement=placed, audio_model=args.audio_model)
    finally:
        progress.close()
    out = {"project": str(project.root), "source": result.source, "driven_frames": result.driven_frames, "frames": result.frames,
           "offset_s": args.offset, "placement": placed, **result.details}
    text = f"drove {result.driven_frames}/{result.frames} frames from {result.source}; tracked curves kept (reset any range to go back)"
    if placed:
        text = f"{placed}\n{text}"
    av = result.details.get("av_sync") or {}
    if av.get("applied"):
        secs = float(av["seconds"])
        how = {"given": "as given", "auto": "measured"}.get(av.get("method"), "measured")
        if (av.get("sound") or {}).get("applied"):
            how += " (their mouth against their sound)"
        text += (f"\nthe dubber's audio runs {abs(secs):.2f} s {'late' if secs > 0 else 'early'} against their picture, {how}; "
                 f"their motion was {'delayed' if secs > 0 else 'advanced'} to match it")
    elif av.get("reason"):
        text += f"\ndubber sync: {av['reason']}"
    ad = result.details.get("adaptation") or {}
    if ad.get("mode") == "linear":
        text += f"\naudio model: the generic {Path((ad.get('generic') or {}).get('path') or 'model').name}, adapted to this actor"
    elif ad.get("mode") == "scratch":
        choice = ad.get("choice")
        why = (f" (it fitted the actor's own speech better than the generic: r {choice['r_shot']:.2f} against {choice['r_generic']:.2f})"
               if choice else "" if args.audio_model == "shot" else " (no generic model installed)")
        text += "\naudio model: trained on this shot alone" + why
    sync, rng = ad.get("sync") or {}, ad.get("range") or {}
    own = (ad.get("metrics") or {}).get("av_offset") or {}
    if own.get("frames"):
        k = int(own["frames"])
        text += (f"\nthis shot's own sound runs {abs(k)} frames ({abs(float(own['seconds'])):.2f} s) {'late' if k > 0 else 'early'} "
                 f"against its picture; the audio model learned from realigned sound and picture")
    if sync.get("applied"):
        k = int(sync["moved_frames"])
        text += (f"\nthe predicted mouth {'trailed' if k < 0 else 'led'} the dialogue's sound by {abs(k)} frames "
                 f"(a model trained on this shot learns its own audio/picture offset); moved {'earlier' if k < 0 else 'later'} to match it")
    if rng.get("applied") and rng.get("gain", 1.0) > 1.0:
        text += f"\njaw opening scaled by {rng['gain']:.2f} to the actor's own range while speaking"
    _emit(args, out, text)
    return 0


def _sync_arg(text: str) -> str | float:
    if text in ("auto", "off"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not abs(value) <= 2.0:
        raise SystemExit(f"dubstudio dub: --dubber-sync must be auto, off or seconds within +-2, got {text!r}")
    return value
