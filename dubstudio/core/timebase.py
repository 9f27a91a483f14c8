"""Timecode arithmetic on the shot's timebase (integer frames at a rational rate).

Shots reach a dubbing editor as exports from an edit, stamped with the source timecode, written
``HH:MM:SS:FF``, or ``HH:MM:SS;FF`` for drop-frame (29.97 / 59.94). The drop-frame arithmetic comes
from the ``timecode`` package (skipping frame numbers 00 and 01 each minute except every tenth is
easy to get subtly wrong by hand); the parsing and validation are ours, since the package silently
wraps out-of-range fields. Reading a file's timecode is ``io.timecode``.
"""

from __future__ import annotations

import re
from fractions import Fraction

_TC = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")

__all__ = ["nominal_rate", "parse_timecode", "timecode_at", "frames_since_midnight"]


def nominal_rate(fps: Fraction) -> int:
    """Frames counted per timecode second: 30 for 29.97, 24 for 23.976."""
    return max(1, round(Fraction(fps)))


def _drop_frame_rate(fps: Fraction) -> bool:
    """Rates that have a drop-frame count: 29.97 and 59.94."""
    return Fraction(fps) in (Fraction(30000, 1001), Fraction(60000, 1001))


def parse_timecode(text: str, fps: Fraction) -> str | None:
    """``text`` normalised to ``HH:MM:SS:FF`` (``;`` before FF for drop-frame), or None when it
    is not a valid timecode at ``fps`` (fields out of range, or a frame number that drop-frame
    skips)."""
    m = _TC.match(str(text).strip())
    if not m:
        return None
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    drop = sep in ";," and _drop_frame_rate(fps)
    if hh > 23 or mm > 59 or ss > 59 or ff >= nominal_rate(fps):
        return None
    if drop and ss == 0 and mm % 10 != 0 and ff < 2 * nominal_rate(fps) // 30:
        return None  # 01:01:00;00 and ;01 do not exist in drop-frame
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


def timecode_at(start: str | None, fps: Fraction, frame: int) -> str:
    """Timecode of ``frame`` (0 = the first) of a clip starting at ``start`` (None: 00:00:00:00,
    non-drop-frame). Rates with no timecode (e.g. 12.5) count nominal frames."""
    from timecode import Timecode

    fps = Fraction(fps)
    start = start or "00:00:00:00"
    rate = str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator}"
    try:
        tc = Timecode(rate, start, force_non_drop_frame=";" not in start)
        return str(tc + int(frame)) if frame else str(tc)
    except (ValueError, TypeError, ZeroDivisionError):  # a rate the package does not count
        n = nominal_rate(fps)
        hh, mm, ss, ff = (int(x) for x in re.split(r"[:;]", start))
        total = ((hh * 60 + mm) * 60 + ss) * n + ff + int(frame)
        secs, ff = divmod(total, n)
        mm, ss = divmod(secs, 60)
        hh, mm = divmod(mm, 60)
        return f"{hh % 24:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def frames_since_midnight(start: str, fps: Fraction) -> int:
    """How many frames ``start`` counts from 00:00:00:00 (drop-frame aware): its position in
    real time is that many frames at ``fps`` (a Broadcast WAV's time reference)."""
    from timecode import Timecode

    fps = Fraction(fps)
    rate = str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator}"
    try:
        return int(Timecode(rate, start, force_non_drop_frame=";" not in start).frames) - 1
    except (ValueError, TypeError, ZeroDivisionError):
        hh, mm, ss, ff = (int(x) for x in re.split(r"[:;]", start))
        return ((hh * 60 + mm) * 60 + ss) * nominal_rate(fps) + ff
