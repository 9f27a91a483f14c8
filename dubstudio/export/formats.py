"""Export formats: what each output name means and how it is encoded.

- ``mp4``: H.264 High, yuv420p, CRF 17 (visually lossless for editing proxies and delivery
  review), + AAC-LC 48 kHz (192 kb/s stereo, 128 kb/s mono); ``+faststart`` so it plays while
  downloading, ``+use_metadata_tags`` so the synthetic mark's custom keys are kept.
- ``mov``: ProRes 422 HQ (or standard) 10-bit 4:2:2 via ``prores_ks`` + PCM s24le 48 kHz, the
  usual edit-ready pair for Premiere/Resolve/Final Cut.
- ``mxf``: Avid DNxHR (HQ 8-bit 4:2:2 by default; HQX for 10-bit) + PCM s24le 48 kHz in MXF OP1a,
  what Media Composer imports natively (the synthetic mark goes into MXF user comments).
- ``png``: a folder with ``frame_%06d.png`` (named by the shot's frame number), ``audio.wav``
  (PCM 24-bit) and ``manifest.json``.

The format is taken from the output name (``.mp4``, ``.mov``, ``.mxf``, a folder or a name without a
suffix) unless ``--format`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dubstudio.core.errors import DubStudioError

__all__ = ["FORMATS", "VideoFormat", "guess_format", "video_format", "PRORES_PROFILES", "DNXHR_PROFILES", "check_frame_size"]

FORMATS = ("mp4", "mov", "mxf", "png")
PRORES_PROFILES = {"proxy": "0", "lt": "1", "standard": "2", "hq": "3"}
DNXHR_PROFILES = {"lb": "dnxhr_lb", "sq": "dnxhr_sq", "hq": "dnxhr_hq", "hqx": "dnxhr_hqx"}
DNXHR_MIN_SIZE = (256, 120)  # the encoder refuses smaller frames


@dataclass(frozen=True)
class VideoFormat:
    name: str
    codec: str
    pix_fmt: str
    options: dict = field(default_factory=dict)
    audio_codec: str = "aac"
    audio_bit_rate: int | None = None  # per channel count: see audio_rate()
    container_options: dict = field(default_factory=dict)

    def audio_rate(self, channels: int) -> int | None:
        if self.audio_codec != "aac":
            return None
        return 192_000 if channels > 1 else 128_000


def guess_format(out: Path, override: str | None = None) -> str:
    """'mp4' | 'mov' | 'mxf' | 'png' for an output path (``override`` wins, but must agree with a suffix)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if override is not None:
        if override not in FORMATS:
            raise DubStudioError(f"unknown format {override!r}; use one of {', '.join(FORMATS)}.")
        if override == "png" and suffix in (".mp4", ".mov", ".mxf"):
            raise DubStudioError(f"--format png writes a folder, not {out.name}; give a folder name (e.g. {out.with_suffix('')}).")
        if override in ("mp4", "mov", "mxf") and suffix not in ("", f".{override}"):
            raise DubStudioError(f"--format {override} cannot be written as {out.name}; name it {out.stem}.{override}.")
        return override
    if suffix == ".mp4":
        return "mp4"
    if suffix == ".mov":
        return "mov"
    if suffix == ".mxf":
        return "mxf"
    if suffix == "" or out.is_dir():
        return "png"
    raise DubStudioError(
        f"cannot tell the format of {out.name}: name it .mp4 (H.264 + AAC), .mov (ProRes 422 + PCM), .mxf (DNxHR + PCM) "
        f"or give a folder for PNGs + WAV."
    )


def video_format(name: str, crf: int = 17, preset: str = "fast", prores_profile: str = "hq", dnxhr_profile: str = "hq") -> VideoFormat:
    if name == "mp4":
        if not 0 <= crf <= 51:
            raise DubStudioError(f"--crf {crf} is outside 0..51; 17-18 is visually lossless, 23 is x264's default.")
        return VideoFormat(
            "mp4", "libx264", "yuv420p",
            {"crf": str(crf), "preset": preset, "profile": "high"},
            audio_codec="aac",
            container_options={"movflags": "+faststart+use_metadata_tags"},
        )
    if name == "mov":
        if prores_profile not in PRORES_PROFILES:
            raise DubStudioError(f"unknown ProRes profile {prores_profile!r}; use one of {', '.join(PRORES_PROFILES)}.")
        return VideoFormat(
            "mov", "prores_ks", "yuv422p10le",
            {"profile": PRORES_PROFILES[prores_profile], "vendor": "apl0"},
            audio_codec="pcm_s24le",
            container_options={"movflags": "+use_metadata_tags"},
        )
    if name == "mxf":
        if dnxhr_profile not in DNXHR_PROFILES:
            raise DubStudioError(f"unknown DNxHR profile {dnxhr_profile!r}; use one of {', '.join(DNXHR_PROFILES)}.")
        return VideoFormat(
            "mxf", "dnxhd", "yuv422p10le" if dnxhr_profile == "hqx" else "yuv422p",
            {"profile": DNXHR_PROFILES[dnxhr_profile]},
            audio_codec="pcm_s24le",
        )
    raise ValueError(f"{name} is not a video format")


def check_frame_size(fmt: VideoFormat | None, width: int, height: int) -> None:
    """Refuse up front, before any rendering, a frame size the format's encoder cannot take."""
    if fmt is not None and fmt.codec == "dnxhd":
        w, h = width + width % 2, height + height % 2
        if w < DNXHR_MIN_SIZE[0] or h < DNXHR_MIN_SIZE[1]:
            raise DubStudioError(
                f"DNxHR needs frames of at least {DNXHR_MIN_SIZE[0]}x{DNXHR_MIN_SIZE[1]}; this export is {width}x{height}. "
                f"Export it as ProRes (.mov) instead."
            )
