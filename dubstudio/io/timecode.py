"""Source timecode read from media files: a clip's start timecode and reel name (the arithmetic
is ``core.timebase``).

Shots reach a dubbing editor as exports from an edit, stamped with the source timecode; a dubbed
shot must carry the same start timecode to conform back onto the timeline. ffmpeg exposes it as a
``timecode`` tag (the mov/mp4 ``tmcd`` track, MXF, ...), written ``HH:MM:SS:FF``, or
``HH:MM:SS;FF`` for drop-frame (29.97 / 59.94). The drop-frame arithmetic comes from the
``timecode`` package (skipping frame numbers 00 and 01 each minute except every tenth is easy to
get subtly wrong by hand); the parsing and validation are ours, since the package silently wraps
out-of-range fields.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from dubstudio.core.timebase import parse_timecode

log = logging.getLogger(__name__)

__all__ = ["read_start_timecode", "read_reel_name"]


def read_start_timecode(path: str | Path) -> str | None:
    """The start timecode a video file carries (video stream tag, then ``tmcd``/data streams,
    then the container), normalised; None when it has none or it cannot be read."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            video = c.streams.video
            fps = Fraction(video[0].average_rate or video[0].guessed_rate or 25) if video else Fraction(25)
            candidates = [s.metadata.get("timecode") for s in video]
            candidates += [s.metadata.get("timecode") for s in c.streams if s.type not in ("video", "audio")]
            candidates.append(c.metadata.get("timecode"))
    except (av.FFmpegError, OSError, ValueError):
        return None
    for text in candidates:
        if text:
            tc = parse_timecode(text, fps)
            if tc is not None:
                return tc
            log.warning("%s: ignoring the timecode tag %r (not a valid timecode at %s fps)", Path(path).name, text, fps)
    return None


def read_reel_name(path: str | Path) -> str | None:
    """The source's reel (tape/card) name, which conforming matches with the timecode; a
    ``reel_name`` tag on any stream or the container, None when there is none."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            names = [s.metadata.get("reel_name") for s in c.streams] + [c.metadata.get("reel_name")]
    except (av.FFmpegError, OSError, ValueError):
        return None
    return next((str(n).strip()[:64] for n in names if n and str(n).strip()), None)
