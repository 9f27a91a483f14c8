"""Where a dubbed line starts in a shot, read from timecode (`--offset tc`).

Dubbing studios deliver a reel's dialogue as one stem, a Broadcast WAV whose ``bext`` time
reference places its first sample on the edit's timeline; a shot from the edit carries its source
timecode. The line's start in the shot is then the difference of the two, the number an editor
would otherwise work out by hand and type as ``--offset``. A dubbing actor's video (or any file with
a timecode track) is placed the same way by its own start timecode.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from fractions import Fraction
from pathlib import Path

from dubstudio.core.errors import MediaError
from dubstudio.core.timebase import frames_since_midnight, timecode_at
from dubstudio.io.timecode import read_start_timecode

DAY_S = 86400
TIMECODE_OFFSET = "tc"  # what `--offset` and a shot list's offset column take for this

__all__ = ["TIMECODE_OFFSET", "Placement", "parse_offset", "place_by_timecode"]


@dataclass(frozen=True)
class Placement:
    """A line placed on a shot by timecode."""

    offset_s: float  # shot time at which the line's first sample plays (as `--offset`)
    shot_timecode: str
    line_timecode: str  # the line's start, as timecode at the shot's rate
    line_source: str  # "bext" (Broadcast WAV time reference) or "timecode" (the file's start timecode)

    def describe(self) -> str:
        where = (f"the line starts {self.offset_s:.3f} s into the shot" if self.offset_s >= 0
                 else f"the shot begins {-self.offset_s:.3f} s into the line")
        how = "its Broadcast WAV time reference" if self.line_source == "bext" else "its start timecode"
        return f"by timecode: the shot starts at {self.shot_timecode}, the line at {self.line_timecode} ({how}), so {where}"


def parse_offset(text: str | float) -> float | str:
    """An `--offset` value: seconds, or ``"tc"`` to place the line by timecode."""
    if isinstance(text, (int, float)):
        return check_offset(float(text))
    t = str(text).strip().lower()
    if t in (TIMECODE_OFFSET, "timecode"):
        return TIMECODE_OFFSET
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"offset {text!r} is neither seconds nor 'tc' (place the line by timecode)") from None
    return check_offset(value)


MAX_OFFSET_S = 86_400.0  # a day: a reel's stem may start hours before the shot, never more


def check_offset(value: float) -> float:
    """Seconds of an offset, finite and within a day either way."""
    if not math.isfinite(value):
        raise ValueError(f"offset {value} is not a number of seconds; give e.g. 1.5, -2 or tc")
    if abs(value) > MAX_OFFSET_S:
        raise ValueError(f"offset {value:g} s is more than a day away from the shot; give seconds within ±{MAX_OFFSET_S:g}, or tc")
    return value


def _fps(path: Path) -> Fraction:
    from dubstudio.io.video import VideoReader

    with VideoReader(path) as r:
        return Fraction(r.fps)


def _length_s(path: Path) -> float:
    """A file's length: its sound's, else its picture's."""
    from dubstudio.io.audio import audio_info

    try:
        return float(audio_info(path).duration_s)
    except MediaError:
        from dubstudio.io.video import VideoReader

        with VideoReader(path) as r:
            return float(r.duration_s)


def _shot_start(video: Path) -> tuple[Fraction, str, Fraction]:
    """(seconds since midnight, timecode, fps) of a shot's first frame."""
    tc = read_start_timecode(video)
    if tc is None:
        raise MediaError(f"{video.name} carries no start timecode, so a line cannot be placed on it by timecode; "
                         f"give the line's start in seconds instead (--offset SECONDS).")
    fps = _fps(video)
    return Fraction(frames_since_midnight(tc, fps)) / fps, tc, fps


def _line_start(line: Path, shot_fps: Fraction) -> tuple[Fraction, str, str | None]:
    """(seconds since midnight, source, its own timecode text or None) of a line's first sample; a
    timecode on a file with no picture is counted at the shot's rate."""
    from dubstudio.io.bwf import read_bext

    if line.suffix.lower() in (".wav", ".wave", ".bwf"):
        try:
            bext = read_bext(line)
        except (OSError, ValueError) as e:
            raise MediaError(f"cannot read {line.name} as a WAV file ({e}).") from e
        if bext is not None:
            from dubstudio.io.audio import audio_info

            return Fraction(int(bext["time_reference"]), int(audio_info(line).sample_rate)), "bext", None
    tc = read_start_timecode(line)
    if tc is None:
        raise MediaError(f"{line.name} has no Broadcast WAV time reference (bext) and no start timecode, so it cannot be "
                         f"placed by timecode; give its start in the shot in seconds instead (--offset SECONDS).")
    try:
        fps = _fps(line)
    except MediaError:
        fps = shot_fps
    return Fraction(frames_since_midnight(tc, fps)) / fps, "timecode", tc


def place_by_timecode(shot_video: str | Path, line: str | Path) -> Placement:
    """The line's start in the shot from the shot's start timecode and the line's (a Broadcast WAV's
    time reference, else its own start timecode). Across midnight the nearer way round counts."""
    shot_video, line = Path(shot_video), Path(line)
    shot_s, shot_tc, fps = _shot_start(shot_video)
    line_s, source, line_tc = _line_start(line, fps)
    d = line_s - shot_s
    if d > DAY_S / 2:
        d -= DAY_S
    elif d < -DAY_S / 2:
        d += DAY_S
    if line_tc is None:  # the line's start written at the shot's rate, for the message
        frame = int(round(line_s * fps))
        line_tc = timecode_at("00:00:00;00" if ";" in shot_tc else None, fps, frame % int(round(DAY_S * fps)))
    shot_len, line_len = _length_s(shot_video), _length_s(line)
    if d >= shot_len or d + line_len <= 0:  # e.g. another reel's stem
        when = "after the shot ends" if d >= shot_len else "before the shot starts"
        raise MediaError(f"by timecode, {line.name} (from {line_tc}, {line_len:.2f} s) plays {when} "
                         f"({shot_video.name} runs {shot_len:.2f} s from {shot_tc}): is it the stem of this shot's reel?")
    return Placement(float(d), shot_tc, line_tc, source)
