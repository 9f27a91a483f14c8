"""Source timecode: parsing, drop-frame counting, and reading it from a file."""

from fractions import Fraction

import av
import numpy as np
import pytest

from dubstudio.core.timebase import parse_timecode, timecode_at
from dubstudio.io.timecode import read_start_timecode

NTSC = Fraction(30000, 1001)


def test_parse_normalises_and_rejects_what_is_not_a_timecode():
    assert parse_timecode("01:00:00:00", Fraction(25)) == "01:00:00:00"
    assert parse_timecode("01:00:00;00", NTSC) == "01:00:00;00"  # drop-frame kept
    assert parse_timecode("01:00:00;00", Fraction(25)) == "01:00:00:00"  # 25 fps has no drop-frame
    assert parse_timecode(" 10:20:30:12 ", Fraction(24)) == "10:20:30:12"
    for bad, fps in (("01:00:00:25", 25), ("24:00:00:00", 25), ("01:60:00:00", 25), ("1:00:00:00", 25), ("garbage", 25),
                     ("01:01:00;00", NTSC), ("01:01:00;01", NTSC)):  # drop-frame skips ;00 and ;01 at minutes 1-9
        assert parse_timecode(bad, Fraction(fps)) is None, bad
    assert parse_timecode("01:10:00;00", NTSC) == "01:10:00;00"  # every tenth minute keeps them


def test_counting_from_the_start_timecode():
    assert timecode_at(None, Fraction(25), 0) == "00:00:00:00"
    assert timecode_at(None, Fraction(25), 51) == "00:00:02:01"
    assert timecode_at("10:00:00:00", Fraction(25), 25 * 3600) == "11:00:00:00"
    assert timecode_at("01:00:00:00", Fraction(24000, 1001), 24 * 60) == "01:01:00:00"  # 23.976 counts 24 a second
    # drop-frame: the minute after 01:00:59;29 starts at ;02; every tenth minute at ;00
    assert timecode_at("01:00:59;29", NTSC, 1) == "01:01:00;02"
    assert timecode_at("00:09:59;29", NTSC, 1) == "00:10:00;00"
    assert timecode_at("01:00:00;00", NTSC, 17982) == "01:10:00;00"  # 10 min of 29.97 is 17982 frames
    assert timecode_at("01:00:00:00", NTSC, 1800) == "01:01:00:00"  # non-drop 29.97 counts straight


def _clip(path, timecode=None, fps=25):
    with av.open(str(path), "w") as c:
        if timecode:
            c.metadata["timecode"] = timecode
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for i in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_read_start_timecode(tmp_path, caplog):
    assert read_start_timecode(_clip(tmp_path / "tc.mp4", "01:02:03:04")) == "01:02:03:04"
    assert read_start_timecode(_clip(tmp_path / "df.mov", "00:59:59;28", fps=NTSC)) == "00:59:59;28"
    assert read_start_timecode(_clip(tmp_path / "none.mp4")) is None
    assert read_start_timecode(tmp_path / "missing.mp4") is None
    (tmp_path / "text.mp4").write_text("not a video")
    assert read_start_timecode(tmp_path / "text.mp4") is None


@pytest.mark.media
def test_the_media_clips_carry_no_timecode(media):
    assert read_start_timecode(media / "talk_a.mp4") is None
