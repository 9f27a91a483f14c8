"""Export formats: what each output name means and how it is encoded.

- ``mp4``: H.264 High, yuv420p, CRF 17 (visually lossless for editing proxies and delivery
  review), + AAC-LC 48 kHz (192 kb/s stereo, 128 kb/s mono); ``+faststart`` so it plays while
  downloading, ``+use_metadata_tags`` so the synthetic mark's custom keys are kept.
- ``mov``: ProRes 422 HQ (or standard) 10-bit 4:2:2 via ``prores_ks`` + PCM s24le 48 kHz, the
  usual edit-ready pair for Premiere/Resolve/Final Cut.
- ``png``: a folder with ``frame_%06d.png`` (named by the shot's frame number), ``audio.wav``
  (PCM 24-bit) and ``manifest.json``.

The format is taken from the output name (``.mp4``, ``.mov``, a folder or a name without a
suffix) unless ``--format`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dubstudio.errors import DubStudioError

__all__ = ["FORMATS", "VideoFormat", "guess_format", "video_format", "PRORES_PROFILES"]

FORMATS = ("mp4", "mov", "png")
PRORES_PROFILES = {"proxy": "0", "lt": "1", "standard": "2", "hq": "3"}


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
    """'mp4' | 'mov' | 'png' for an output path (``override`` wins, but must agree with a suffix)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if override is not None:
        if override not in FORMATS:
            raise DubStudioError(f"unknown format {override!r}; use one of {', '.join(FORMATS)}.")
        if override == "png" and suffix in (".mp4", ".mov"):
            raise DubStudioError(f"--format png writes a folder, not {out.name}; give a folder name (e.g. {out.with_suffix('')}).")
        if override in ("mp4", "mov") and suffix not in ("", f".{override}"):
            raise DubStudioError(f"--format {override} cannot be written as {out.name}; name it {out.stem}.{override}.")
        return override
    if suffix == ".mp4":
        return "mp4"
    if suffix == ".mov":
        return "mov"
    if suffix == "" or out.is_dir():
        return "png"
    raise DubStudioError(
        f"cannot tell the format of {out.name}: name it .mp4 (H.264 + AAC), .mov (ProRes 422 + PCM) or give a folder for PNGs + WAV."
    )


def video_format(name: str, crf: int = 17, preset: str = "fast", prores_profile: str = "hq") -> VideoFormat:
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
    raise ValueError(f"{name} is not a video format")
