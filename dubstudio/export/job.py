"""The export job: the whole shot, re-rendered with the final curves, muxed with the dubbed audio.

``export_shot(project, renderer, out, settings, progress)`` streams the render pipeline
(``dubstudio.rendering.render_job.render_frames``: decode -> render crops in batches ->
composite -> keep background) into a sink: an mp4/mov file with the audio track interleaved, or
a PNG folder + WAV. Every frame of the shot is written once, in order, at the shot's native
rational frame rate; only one batch of frames is alive at a time. The synthetic pixels of each
frame get the invisible watermark, the container the manifest (``dubstudio.export.mark``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.export.guard import guard_output
from dubstudio.shot.curves import final_controls
from dubstudio.shot.dub_audio import recorded_dub_audio
from dubstudio.core.jobs import OrderedWorker, Progress
from dubstudio.core.errors import Cancelled, DubStudioError, MediaError
from dubstudio.export.audio_track import AudioRequest, mel_windows, prepare_audio
from dubstudio.export.formats import check_frame_size, guess_format, video_format
from dubstudio.export.mark import WatermarkSettings, build_manifest, embed, synthetic_mask
from dubstudio.export.resume import ExportWork, base_key, renderer_fingerprint, segment_keys, segment_length, stopped_beside
from dubstudio.export.review import ReviewSettings, SideBySide
from dubstudio.export.writers import PngSequenceSink, VideoSink, check_png_target
from dubstudio.rendering.render_job import RenderSettings, new_stats, render_frames
from dubstudio.shot.tracking import load_tracking

__all__ = ["ExportSettings", "export_shot"]


@dataclass(frozen=True)
class ExportSettings:
    format: str | None = None  # mp4 | mov | png; None: from the output name
    audio: AudioRequest = field(default_factory=AudioRequest)
    side_by_side: bool = False
    review: ReviewSettings = field(default_factory=ReviewSettings)
    watermark: WatermarkSettings = field(default_factory=WatermarkSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    crf: int = 17
    preset: str = "fast"
    prores_profile: str = "hq"
    dnxhr_profile: str = "hq"  # mxf: lb | sq | hq (8-bit) | hqx (10-bit)
    png_compression: int = 3
    use_curves: bool = True  # the project's edited/driven curves; False: the tracked ones
    verify: bool = False  # check the result with ffprobe and report it
    resume: bool = True  # continue a stopped export of the same pixels (False: start over)
    # also the shot's own sound, as a second audio track (mov/mp4/mxf) or audio_original.wav (PNG):
    # a guide for reviewing the dub against the original performance and for the mix
    guide_track: bool = False
    # an existing output that is not an earlier export of this shot is replaced only with this
    overwrite: bool = False
    # more files the export must never write over (a batch: every file its shot list reads)
    protect: tuple[Path, ...] = ()


def _inputs(project, source: Path, settings: ExportSettings) -> list[tuple[str, Path | None]]:
    """What this export reads and must never write over."""
    rec = recorded_dub_audio(project) or {}
    req = settings.audio
    return ([("the shot's video", source), ("the dubbed audio", Path(rec["source"]) if rec.get("source") else None),
             ("the audio to mux", Path(req.path) if getattr(req, "path", None) else None)]
            + [("a file the shot list reads", Path(p)) for p in settings.protect])


def export_shot(
    project,
    renderer,
    out: str | Path,
    settings: ExportSettings | None = None,
    progress: Progress | None = None,
    *,
    tracking=None,
    video_path: str | Path | None = None,
    renderer_name: str | None = None,
) -> dict:
    """Export the whole shot to ``out``; returns a summary (JSON-ready)."""
    settings = settings or ExportSettings()
    progress = progress or Progress()
    out = Path(out)
    fmt_name = guess_format(out, settings.format)
    fmt = video_format(fmt_name, settings.crf, settings.preset, settings.prores_profile, settings.dnxhr_profile) if fmt_name != "png" else None
    if fmt_name == "png":
        check_png_target(out)
    elif out.is_dir():
        raise MediaError(f"{out} is a folder; give a file name ending in .{fmt_name}, or --format png for a PNG sequence.")
    source = Path(video_path or project.video_path)
    guard_output(out, fmt_name, _inputs(project, source, settings), Path(project.root).name, source.name, settings.overwrite)
    tracking = tracking if tracking is not None else load_tracking(project)
    n, fps = tracking.n_frames, Fraction(tracking.fps)
    if settings.side_by_side:
        review = SideBySide(tracking.width, tracking.height, settings.review)
        check_frame_size(fmt, review.width, review.height)
    else:
        check_frame_size(fmt, tracking.width, tracking.height)
    t0 = time.perf_counter()

    progress.stage("prepare")
    controls, edited = final_controls(project, tracking) if settings.use_curves else (None, False)
    if settings.use_curves and controls is None:
        # the curves as the renderer gets them once edited, edited or not: a later export after an
        # edit then finds the untouched segments rendered from the same numbers (resume.segment_keys)
        controls = np.asarray(tracking.controls, np.float64)
    audio = prepare_audio(project, n, fps, settings.audio)
    guide = _guide_track(project, n, fps, audio, settings)
    mel = None
    if audio.report.get("kind") in ("dubbed", "file") and _takes_mel(renderer):
        mel = mel_windows(audio, n, fps)
    name = renderer_name or type(renderer).__name__
    from dubstudio.io.timecode import read_reel_name, read_start_timecode
    from dubstudio.io.video import color_tags, field_order, sample_aspect
    from dubstudio.io.video_writer import INTERLACED_CODECS

    src_video = Path(video_path or project.video_path)
    start_tc = read_start_timecode(video_path or project.video_path)
    color = color_tags(video_path or project.video_path)
    sar = sample_aspect(video_path or project.video_path)
    manifest = build_manifest(
        project=Path(project.root).name,
        source_video=Path(video_path or project.video_path).name,
        frames=n,
        frames_rendered=int(np.count_nonzero(tracking.has_face)),
        fps=f"{fps.numerator}/{fps.denominator}",
        renderer=name,
        audio={k: (Path(v).name if k == "source" and v else v) for k, v in audio.report.items() if k in ("source", "kind", "start_in_shot_s", "policy", "padded_end_s", "trimmed_end_s")},
        watermark=settings.watermark,
        output_format=fmt_name,
        side_by_side=settings.side_by_side,
        curves_edited=edited,
        settings=_frozen_settings(settings, fmt_name),
        source_timecode=start_tc,
    )
    reel = read_reel_name(video_path or project.video_path)
    if reel:
        manifest["source_reel"] = reel
    if guide is not None:  # which sound is which track
        manifest["audio_tracks"] = ["dubbed" if audio.samples is not None else None, "original (guide)"]
    fields = field_order(src_video)
    if fields is not None:  # kept by ProRes (io.video_writer); H.264, DNxHR and PNG are progressive
        manifest["source_field_order"] = fields
        if fmt is not None and fmt.codec in INTERLACED_CODECS and not settings.side_by_side:  # (a review is rescaled)
            manifest["field_order"] = fields
    if sar != 1:  # a PNG has no pixel aspect of its own: the manifest says how to display the frames
        manifest["pixel_aspect"] = f"{sar.numerator}:{sar.denominator}"

    src = Path(video_path or project.video_path)
    work = _open_work(project, tracking, renderer, out, fmt_name, settings, controls, mel, src)
    stats = new_stats()
    sink = None
    deep = None
    try:
        sink = _open_sink(fmt_name, fmt, work, fps, audio, manifest, settings, color, sar, guide)
        if settings.resume:
            progress.stage("reading the previous export")
            sink.reuse_previous()
        progress.stage("export")
        progress.continue_from(work.done)
        progress.update(work.done, n)
        sbs = None

        def finish_frame(f) -> None:
            """Review layout, watermark, the source's extra bits, encode: on the writer thread."""
            nonlocal sbs
            canvas = f.output
            if settings.side_by_side:
                if sbs is None:
                    sbs = SideBySide(f.original.shape[1], f.original.shape[0], settings.review, start_tc, fps)
                canvas = sbs.compose(f.original, f.output, f.index)
            m = synthetic_mask(f.original, f.output, f.box, f.weight) if settings.watermark.enabled else None
            if m is not None:
                if sbs is not None:
                    m = sbs.map_mask(*m)
                embed(canvas, *m, settings.watermark)
            if deep is not None:  # the original's extra bits outside (and under) what the composite changed
                canvas = _deepen(canvas, f.original, deep.next(f.index))
            sink.write(f.index, canvas, face=f.box is not None, marked=m is not None)

        for run in work.missing_runs():
            gen = render_frames(project, tracking, renderer, run, controls, _WholeShot(progress, work.done, n), settings.render,
                                video_path, stats, mel)
            deep = _deep_source(src, fmt_name, settings, run.start)
            # the encoder (which releases the GIL) works on frame k while the renderer makes k+1..
            writer = OrderedWorker(finish_frame, depth=settings.render.batch_size, name="export-writer")
            try:
                with contextlib.closing(gen):
                    for f in gen:
                        writer.put(f)
                writer.finish()
            except Cancelled:
                writer.finish()  # the frames rendered are written (a batch at most): less to do next time
                raise
            except BaseException:
                writer.abort()
                raise
            if deep is not None:
                deep.close()
                deep = None
        if not work.complete:
            raise MediaError(
                f"the shot's video gave {work.done} of its {n} frames; "
                f"check the file with `dubstudio info` and track it again if it changed."
            )
        sink.close(keep=True)
        sink = None
    except DubStudioError as e:
        if work.reusable and work.done:
            said = str(e).removesuffix("; finished work is saved").rstrip(". ")
            raise type(e)(f"{said}. The {work.done} frames finished are kept: export to the same name again to continue.") from e
        raise
    finally:
        if sink is not None:  # cancel or error: nothing under the final name; finished segments stay
            sink.close(keep=False)
        else:
            work.release()
        if deep is not None:
            deep.close()
    wall = time.perf_counter() - t0
    last = work.ordered()[-1]
    h, w = last["height"], last["width"]
    reused = work.from_stopped + work.from_previous
    result = {
        "output": str(out),
        "format": fmt_name,
        "frames": n,
        "frames_with_face": work.totals("with_face"),
        "frames_watermarked": work.totals("marked"),
        "frames_reused": reused,
        "frames_rendered": n - reused,
        "resume_note": work.note(),
        "stopped_exports_beside": stopped_beside(out),
        "fps": f"{fps.numerator}/{fps.denominator}",
        "width": w,
        "height": h,
        "duration_s": round(float(n / fps), 6),
        "side_by_side": settings.side_by_side,
        "timecode": start_tc,
        "color": color.describe() if color.specified and fmt_name != "png" else None,
        "source_bits_kept": _keeps_source_bits(src, fmt_name, settings),
        "pixel_aspect": None if sar == 1 else f"{sar.numerator}:{sar.denominator}",
        "renderer": name,
        "curves_edited": edited,
        "audio": audio.report,
        "guide_track": guide is not None,
        "audio_conditioned_renderer": mel is not None,
        "synthetic_mark": {"metadata": True, "watermark": settings.watermark.describe()},
        "wall_s": round(wall, 3),
        "frames_per_s": round((n - reused) / wall, 3) if wall > 0 else None,
        "timing_s": {k: round(stats[k], 3) for k in ("render_s", "composite_s", "post_s")},
    }
    if fmt is not None:
        result["codecs"] = {"video": fmt.codec, "audio": fmt.audio_codec if audio.samples is not None else None}
    if settings.verify:
        from dubstudio.export.verify import check

        vc = {"mp4": "h264", "mov": "prores", "mxf": "dnxhd", "png": "png"}[fmt_name]
        n_audio = int(audio.samples is not None) + int(guide is not None)
        result["verify"] = check(out, n, fps, n_audio, vc, timecode=start_tc if fmt_name != "png" else None)
    return result


class _WholeShot:
    """The render's progress (frames of its range) reported as frames of the whole shot, so a
    continued export's bar picks up where the stopped one ended."""

    def __init__(self, progress: Progress, offset: int, total: int) -> None:
        self.progress, self.offset, self.total = progress, offset, total

    def update(self, done: int, total: int | None = None, **metrics) -> None:
        self.progress.update(self.offset + done, self.total, **metrics)

    def check(self) -> None:
        self.progress.check()

    def stage(self, name: str) -> None:
        self.progress.stage(name)


class _DeepFrames:
    """The source's frames at 16 bits, decoded in step with the render pipeline's 8-bit ones."""

    def __init__(self, video: Path, start: int = 0) -> None:
        from dubstudio.io.video import VideoReader

        self.reader = VideoReader(video, cache_size=0, deep=True)
        self.frames = self.reader.iter_frames(start)

    def next(self, index: int) -> np.ndarray:
        i, rgb = next(self.frames)
        if i != index:
            raise MediaError(f"the source's frames went out of step ({i} for {index}); export again.")
        return rgb

    def close(self) -> None:
        self.frames.close()
        self.reader.close()


def _keeps_source_bits(video, fmt_name: str, settings: ExportSettings) -> bool:
    """A 16-bit decode of a 10/12-bit source goes into the output when it keeps more than 8 bits
    (ProRes is 10-bit, PNG frames are then written at 16): the render pipeline works in 8 bits,
    and re-quantising the whole frame to 8 would band skies and gradients the camera recorded in
    10. Side-by-side reviews stay 8-bit."""
    from dubstudio.io.video import VideoReader

    ten_bit = fmt_name in ("mov", "png") or (fmt_name == "mxf" and settings.dnxhr_profile == "hqx")
    if not ten_bit or settings.side_by_side:
        return False
    with VideoReader(video, cache_size=0) as r:
        return r.bit_depth > 8


def _deep_source(video, fmt_name: str, settings: ExportSettings, start: int = 0) -> _DeepFrames | None:
    return _DeepFrames(Path(video), start) if _keeps_source_bits(video, fmt_name, settings) else None


def _deepen(canvas: np.ndarray, original8: np.ndarray, original16: np.ndarray) -> np.ndarray:
    """The 16-bit original plus what the composite (and the watermark) changed in 8 bits: pixels
    left alone keep every bit of the source, changed pixels keep its fine gradation under the
    change."""
    delta = canvas.astype(np.int32) - original8.astype(np.int32)
    return np.clip(original16.astype(np.int32) + delta * 257, 0, 65535).astype(np.uint16)


def _frozen_settings(s: ExportSettings, fmt_name: str) -> dict:
    """The settings that shaped the pixels and the sound, stored with the export (rule 7)."""
    r = s.render
    out = {
        "composite": dataclasses.asdict(r.composite),
        "background_post_process": r.background is not None,
        "curves": "final" if s.use_curves else "tracked",
        "audio_request": {"mode": s.audio.mode, "offset_s": s.audio.offset_s, "policy": s.audio.policy},
    }
    if s.guide_track:
        out["guide_track"] = True
    if fmt_name == "mp4":
        out["h264"] = {"crf": s.crf, "preset": s.preset}
    elif fmt_name == "mov":
        out["prores_profile"] = s.prores_profile
    elif fmt_name == "mxf":
        out["dnxhr_profile"] = s.dnxhr_profile
    if s.side_by_side:
        out["review"] = {"scale": s.review.scale, "labels": s.review.labels, "burn_in": s.review.burn_in}
    return out


def _takes_mel(renderer) -> bool:
    import inspect

    try:
        return "mel" in inspect.signature(renderer.render_crops).parameters
    except (TypeError, ValueError):
        return False


def _open_sink(fmt_name, fmt, work: ExportWork, fps: Fraction, audio, manifest: dict, settings: ExportSettings, color=None,
               sar: Fraction | None = None, guide=None):
    if fmt_name == "png":
        return PngSequenceSink(work, audio, manifest, settings.png_compression, guide=guide)
    return VideoSink(work, fmt, fps, audio, manifest, timecode=manifest.get("source_timecode"),
                     color=color, sar=sar, reel=manifest.get("source_reel"), guide=guide,
                     field_order=manifest.get("field_order"))


def _guide_track(project, n: int, fps: Fraction, audio, settings: ExportSettings):
    """The shot's own sound for ``guide_track``, fitted to the shot; None when not asked for."""
    if not settings.guide_track:
        return None
    if audio.report.get("kind") == "original":
        raise DubStudioError("the export's sound is already the shot's own: a second track of it would add nothing; "
                             "export the dubbed audio with the guide track, or leave the guide track off.")
    try:
        guide = prepare_audio(project, n, fps, AudioRequest(mode="original"))
    except DubStudioError as e:
        raise DubStudioError(f"the guide track cannot be made ({e}); leave the guide track off.") from e
    if guide.samples is None:
        raise DubStudioError("the shot has no sound of its own to add as a second track; leave the guide track off.")
    return guide


def _open_work(project, tracking, renderer, out: Path, fmt_name: str, settings: ExportSettings, controls, mel, video: Path) -> ExportWork:
    """The export's work folder, with what a stopped run of the same export finished."""
    from dubstudio.masks.store import MaskStore

    base = base_key(
        renderer_fp=renderer_fingerprint(renderer), tracking=tracking,
        mask_file=MaskStore(project).mask_path if project is not None else None, video=video, fmt_name=fmt_name,
        settings=_key_settings(settings), fps=Fraction(tracking.fps),
    )
    seg_len = segment_length(Fraction(tracking.fps), settings.render.batch_size)
    keys = segment_keys(base, tracking, controls, mel, seg_len, int(getattr(renderer, "window", 0) or 0))
    return ExportWork.open(out, keys, tracking.n_frames, seg_len, settings.resume)


def _key_settings(s: ExportSettings) -> dict:
    """The settings that shape the frames (the sound is muxed at the end, from this run's; where
    the renderer hears it, its windows are part of each segment's key)."""
    d = dataclasses.asdict(s)
    for k in ("verify", "resume", "audio", "guide_track", "overwrite", "protect"):
        d.pop(k, None)
    return d
