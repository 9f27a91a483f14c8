"""Info: what a media file is (a shot: picture and timecode; a dialogue stem: its Broadcast WAV start)."""

from __future__ import annotations

from pathlib import Path

from dubstudio.io.audio import audio_info
from dubstudio.io.timecode import read_start_timecode
from dubstudio.io.video import VideoReader, describe_irregular


class InfoResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        width = max(len(k) for k in self) + 2
        return "\n".join(f"{k:{width}s}{v}" for k, v in self.items())


def info_job(path: Path) -> InfoResult:
    path = Path(path)
    if not has_picture(path):
        return audio_file_info(path)
    with VideoReader(path) as r:
        info = {
            "path": str(r.path), "width": r.width, "height": r.height, "fps": str(r.fps),
            "frames": r.n_frames, "duration_s": round(float(r.duration_s), 3), "codec": r.codec,
            "pix_fmt": r.pix_fmt, "bit_depth": r.bit_depth, "pixel_aspect": f"{r.sar.numerator}:{r.sar.denominator}",
            "has_audio": r.has_audio,
            "variable_frame_rate": bool(r.irregular),
            "scan": ("interlaced, " + ("top" if r.top_field_first else "bottom") + " field first") if r.interlaced else "progressive",
        }
        if r.irregular:
            info["timing"] = r.irregular
            info["note"] = describe_irregular(path.name, r.irregular)
    info["timecode"] = read_start_timecode(path)
    return InfoResult(info)


def has_picture(path: Path) -> bool:
    """Whether ``path`` has a picture (unreadable files go to VideoReader, which says why)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            return bool(c.streams.video)
    except (av.FFmpegError, OSError, ValueError):
        return True


def audio_file_info(path: Path) -> InfoResult:
    """An audio file: its format, and where a Broadcast WAV's time reference places it."""
    a = audio_info(path)
    info = {"path": str(path), "sample_rate": a.sample_rate, "channels": a.channels, "duration_s": round(a.duration_s, 3),
            "codec": a.codec, "time_reference": None, "starts_at": None}
    if path.suffix.lower() in (".wav", ".wave", ".bwf"):
        from dubstudio.io.bwf import read_bext

        try:
            bext = read_bext(path)
        except (OSError, ValueError):
            bext = None
        if bext is not None:
            secs = bext["time_reference"] / a.sample_rate
            hh, rest = divmod(secs, 3600)
            mm, ss = divmod(rest, 60)
            info |= {"time_reference": bext["time_reference"], "starts_at": f"{int(hh) % 24:02d}:{int(mm):02d}:{ss:06.3f}",
                     "description": bext["description"] or None}
    return InfoResult(info)
