"""Export: the whole shot re-rendered with its final curves, composited into the full frames,
with the dubbed audio muxed in sync, verified, marked as synthetic media."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path

from dubstudio.app.renderer import CompositeChoice, RendererChoice, close_renderer, open_renderer
from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.export.audio_track import AudioRequest
from dubstudio.export.job import ExportSettings, export_shot
from dubstudio.export.mark import WatermarkSettings
from dubstudio.export.review import ReviewSettings
from dubstudio.shot import Shot

FORMATS = ("mp4", "mov", "mxf", "png")
AUDIO_SOURCES = ("auto", "original", "file", "none")  # auto: the recorded dub's audio, else the shot's own
POLICIES = ("pad", "trim", "fit", "error")
PRORES = ("proxy", "lt", "standard", "hq")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
DNXHR = ("lb", "sq", "hq", "hqx")


@dataclass(frozen=True)
class ExportRequest:
    project: Path
    output: Path  # OUT.mp4 | OUT.mov | OUT.mxf | a folder (PNG sequence + WAV)
    format: str | None = None  # None: from the output's name
    renderer: RendererChoice = field(default_factory=RendererChoice)
    composite: CompositeChoice = field(default_factory=CompositeChoice)
    tracked_curves: bool = False  # render the tracked curves, ignoring edits and the dub
    threads: int = 0  # torch CPU threads (0: torch's choice)
    audio: str = "auto"  # auto | original | file | none
    audio_file: Path | None = None  # with audio="file"
    audio_offset: float | None = None  # shot time (s) where the audio starts; None: as dubbed, else 0
    audio_policy: str | None = None  # pad | trim | fit | error (None: by the audio's kind)
    guide_track: bool = False  # also the shot's own sound, as a second audio track
    side_by_side: bool = False  # original | dubbed review
    review_scale: float = 1.0
    labels: bool = True  # the review's ORIGINAL / DUBBED labels
    burn_in: bool = True  # the review's burned-in source timecode and frame number
    crf: int = 17  # mp4: H.264 quality
    preset: str = "fast"  # mp4: x264 preset
    prores: str = "hq"  # mov: ProRes 422 profile
    dnxhr: str = "hq"  # mxf: DNxHR profile (hqx keeps a 10-bit source's bits)
    watermark: bool = True  # the invisible watermark (the metadata mark is always written)
    watermark_amplitude: float = 2.0
    verify: bool = False  # check the result with ffprobe
    restart: bool = False  # render everything again instead of reusing a stopped export's segments
    overwrite: bool = False  # replace an existing file that is not an earlier export of this shot
    protect: tuple[Path, ...] = ()  # more files never to write over (a batch: its shot list's inputs)

    def audio_request(self) -> AudioRequest:
        if self.audio not in AUDIO_SOURCES:
            raise DubStudioError(f"audio must be one of {', '.join(AUDIO_SOURCES)}, got {self.audio!r}.")
        if self.audio_policy is not None and self.audio_policy not in POLICIES:
            raise DubStudioError(f"--audio-policy must be one of {', '.join(POLICIES)}, got {self.audio_policy!r}.")
        if self.audio == "file":
            if self.audio_file is None:
                raise DubStudioError("choose the audio file to export with.")
            return AudioRequest("file", Path(self.audio_file), self.audio_offset, self.audio_policy)
        if self.audio == "none":
            if self.audio_offset is not None:
                raise DubStudioError("--audio-offset has no effect with --no-audio; leave one of them out.")
            return AudioRequest("none")
        return AudioRequest(self.audio, None, self.audio_offset, self.audio_policy)

    def settings(self) -> ExportSettings:
        """The export job's settings, every choice checked (a clear error for a wrong one)."""
        if self.format is not None and self.format not in FORMATS:
            raise DubStudioError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}.")
        if self.preset not in X264_PRESETS:
            raise DubStudioError(f"--preset must be one of x264's presets ({', '.join(X264_PRESETS)}), got {self.preset!r}.")
        if self.review_scale != 1.0 and not self.side_by_side:
            raise DubStudioError("--review-scale is for side-by-side reviews; add --side-by-side.")
        try:
            review = ReviewSettings(scale=self.review_scale, labels=self.labels, burn_in=self.burn_in)
            watermark = WatermarkSettings(enabled=self.watermark, amplitude=self.watermark_amplitude)
        except ValueError as e:
            raise DubStudioError(f"{e}.") from e
        return ExportSettings(
            format=self.format, audio=self.audio_request(), side_by_side=self.side_by_side, review=review,
            watermark=watermark, render=self.composite.render_settings(), crf=self.crf, preset=self.preset,
            prores_profile=self.prores, dnxhr_profile=self.dnxhr, use_curves=not self.tracked_curves,
            verify=self.verify, resume=not self.restart, guide_track=self.guide_track, overwrite=self.overwrite,
            protect=tuple(Path(p) for p in self.protect),
        )

    def command_line(self) -> str:
        """The same export from a terminal (``dubstudio export ...``); the CLI parses it back to
        this request (tests/app/test_parity.py)."""
        a = ["--project", str(self.project), "-o", str(self.output)]
        if self.format:
            a += ["--format", self.format]
        r, c, d = self.renderer, self.composite, _DEFAULT
        if r.kind == "copy":
            a += ["--renderer", "copy", "--train-frames", str(r.train_frames)]
            if r.resolution != d.renderer.resolution:
                a += ["--resolution", str(r.resolution)]
        else:
            if r.mode:
                a += ["--mode", r.mode]
            if r.checkpoint:
                a += ["--renderer-checkpoint", str(r.checkpoint)]
            a += ["--device", r.device]
            a += ["--mouth-detail", "off"] if not r.mouth_detail else []
        for flag, value, default in (("--region", c.region, "lower"), ("--colour", c.colour, "lowfreq"),
                                     ("--batch-size", c.batch_size, 8), ("--threads", self.threads, 0)):
            if value != default:
                a += [flag, str(value)]
        if c.detail != 1.0:
            a += ["--detail", _num(c.detail)]
        a += ["--no-postprocess"] if not c.postprocess else []
        a += ["--tracked-curves"] if self.tracked_curves else []
        if self.audio == "file":
            if self.audio_file is None:
                raise DubStudioError("choose the audio file to export with.")
            a += ["--audio", str(self.audio_file)]
        elif self.audio == "original":
            a += ["--original-audio"]
        elif self.audio == "none":
            a += ["--no-audio"]
        if self.audio != "none":
            if self.audio_offset is not None:
                a += ["--audio-offset", _num(self.audio_offset)]
            if self.audio_policy:
                a += ["--audio-policy", self.audio_policy]
        a += ["--guide-track"] if self.guide_track else []
        if self.side_by_side:
            a += ["--side-by-side"]
            if self.review_scale != 1.0:
                a += ["--review-scale", _num(self.review_scale)]
            a += ["--no-labels"] if not self.labels else []
            a += ["--no-burn-in"] if not self.burn_in else []
        fmt = self.format or _guess(self.output)
        if fmt == "mp4" and self.crf != d.crf:
            a += ["--crf", str(self.crf)]
        if fmt == "mp4" and self.preset != d.preset:
            a += ["--preset", self.preset]
        if fmt == "mov" and self.prores != d.prores:
            a += ["--prores", self.prores]
        if fmt == "mxf" and self.dnxhr != d.dnxhr:
            a += ["--dnxhr", self.dnxhr]
        a += ["--no-watermark"] if not self.watermark else []
        if self.watermark_amplitude != d.watermark_amplitude:
            a += ["--watermark-amplitude", _num(self.watermark_amplitude)]
        a += ["--verify"] if self.verify else []
        a += ["--restart"] if self.restart else []
        a += ["--overwrite"] if self.overwrite else []
        return shlex.join(["dubstudio", "export", *a])


def _num(x: float) -> str:
    """A number as the command line takes it back exactly ("0.5", "3723.125", not 6 digits)."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


_DEFAULT = ExportRequest(Path("."), Path("out.mp4"))
REQUEST_FIELDS = tuple(f.name for f in fields(ExportRequest))


def _guess(output: Path) -> str | None:
    from dubstudio.export.formats import guess_format

    try:
        return guess_format(Path(output), None)
    except DubStudioError:
        return None


class ExportResult(dict):
    """``export_shot``'s summary (JSON-ready), with its description."""

    def to_json(self) -> dict:
        return dict(self)

    def lines(self) -> list[str]:
        return describe(self)

    def describe(self) -> str:
        return "\n".join(self.lines())


def export_job(req: ExportRequest, progress: Progress | None = None) -> ExportResult:
    """Export the shot of ``req.project`` to ``req.output``."""
    settings = req.settings()  # every choice checked before anything is opened
    req.renderer.check()
    if req.threads:
        import torch

        torch.set_num_threads(req.threads)
    progress = progress or Progress()
    shot = Shot.open(req.project)
    tracking = shot.tracking
    shot.video()
    progress.stage("loading the renderer")
    renderer, name = open_renderer(shot, req.renderer)
    try:
        result = export_shot(shot.project, renderer, Path(req.output), settings, progress, tracking=tracking, renderer_name=name)
    finally:
        close_renderer(renderer)
    result["project"] = str(shot.root)
    return ExportResult(result)


def describe(r: dict) -> list[str]:
    """What an export wrote, a line each (the CLI prints the lines, the editor joins them)."""
    size = f", {r['width']}x{r['height']}" if r.get("width") else ""
    rendered, reused = r.get("frames_rendered", r["frames_with_face"]), r.get("frames_reused", 0)
    work = f"{rendered} rendered now, {reused} reused from the earlier export" if reused else f"{rendered} rendered"
    lines = [f"exported {r['frames']} frames ({work}; {r['duration_s']:.2f} s at {r['fps']} fps{size}"
             f"{', side by side' if r.get('side_by_side') else ''}, {r.get('renderer')}) -> {r['output']}  [{r['frames_per_s']} frames/s]"]
    a = r.get("audio") or {}
    if a.get("kind") in (None, "none"):
        lines.append("no audio" + (f" ({a['note']})" if a.get("note") else ""))
    else:
        line = (f"audio {Path(a['source']).name} ({a['kind']}, {a['policy']}: padded {a['padded_end_s']:.3f} s, "
                f"trimmed {a['trimmed_end_s']:.3f} s)")
        lines.append(line + (f"; {a['note']}" if a.get("note") else ""))
    if r.get("guide_track"):
        lines.append("second audio track: the shot's own sound (guide)")
    wm = (r.get("synthetic_mark") or {}).get("watermark") or {}
    lines.append("marked as synthetic media (metadata" + (" + invisible watermark)" if wm.get("method") else ")"))
    if r.get("resume_note"):
        lines.append(r["resume_note"])
    for st in r.get("stopped_exports_beside") or []:
        lines.append(f"note: a stopped export to {st['output']} ({st['frames_finished']}/{st['frames']} frames, "
                     f"{st['bytes'] / 2**20:.0f} MB in {st['work_folder']}) is beside it: export to that name to continue it, "
                     f"or free the space with `dubstudio stopped-exports {Path(r['output']).parent} --delete`")
    if r.get("timecode"):
        lines.append(f"starts at the shot's source timecode {r['timecode']}")
    if r.get("color"):
        lines.append(f"the shot's colour tags kept: {r['color']}")
    if r.get("source_bits_kept"):
        lines.append("the source's bit depth kept wherever the dub did not change the picture")
    if "verify" in r and r["verify"] is not None:
        v = r["verify"]
        lines.append("verified with ffprobe: ok" if v["ok"] else "ffprobe check FAILED: " + "; ".join(v["problems"]))
    return lines
