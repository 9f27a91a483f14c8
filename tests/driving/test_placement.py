"""A dubbed line placed on a shot by timecode (`--offset tc`): a reel's dialogue stem (Broadcast WAV)
or a timecoded clip against the shot's source timecode."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from dubstudio.app.batch import read_shot_list
from dubstudio.driving.placement import TIMECODE_OFFSET, parse_offset, place_by_timecode
from dubstudio.core.errors import DubStudioError, MediaError
from dubstudio.io.bwf import add_bext, read_bext
from dubstudio.core.timebase import frames_since_midnight

HOUR = 3600 * 48000  # samples at 48 kHz


def clip(path: Path, timecode: str | None, fps=Fraction(25), n: int = 120) -> Path:
    """A tiny picture-only clip stamped with ``timecode`` (a shot, or a dubbing actor's take)."""
    with av.open(str(path), "w") as out:
        if timecode:
            out.metadata["timecode"] = timecode
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i % 250, np.uint8), format="rgb24")
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def stem(path: Path, time_reference: int | None, seconds: float = 10.0) -> Path:
    """A dialogue stem: 48 kHz 24-bit WAV, with a bext time reference when given."""
    sf.write(str(path), np.zeros(int(48000 * seconds), np.float32), 48000, subtype="PCM_24")
    if time_reference is not None:
        add_bext(path, time_reference, description="reel 1 dialogue stem")
    return path


def test_a_stem_is_placed_by_its_time_reference(tmp_path):
    shot = clip(tmp_path / "sh010.mov", "01:00:02:00")
    p = place_by_timecode(shot, stem(tmp_path / "stem.wav", HOUR))  # the stem starts at 01:00:00:00
    assert p.offset_s == pytest.approx(-2.0, abs=1e-9)
    assert (p.shot_timecode, p.line_timecode, p.line_source) == ("01:00:02:00", "01:00:00:00", "bext")
    assert "the shot begins 2.000 s into the line" in p.describe()
    # a line that starts after the shot: 3 s and 12 frames at 25 fps
    later = stem(tmp_path / "later.wav", HOUR + (5 * 25 + 12) * 48000 // 25)
    p = place_by_timecode(shot, later)
    assert p.offset_s == pytest.approx(3.48, abs=1e-9) and p.line_timecode == "01:00:05:12"
    assert "the line starts 3.480 s into the shot" in p.describe()


def test_drop_frame_and_midnight(tmp_path):
    fps = Fraction(30000, 1001)
    shot = clip(tmp_path / "df.mov", "01:00:00;00", fps, n=330)
    tr = frames_since_midnight("01:00:10;00", fps) * 48000 * fps.denominator // fps.numerator
    p = place_by_timecode(shot, stem(tmp_path / "df.wav", int(tr)))
    assert p.offset_s == pytest.approx(300 / float(fps), abs=1 / 48000)  # 300 frames of 29.97, not 10.000 s
    assert p.line_timecode == "01:00:10;00"
    # a shot just before midnight, its line just after: the near way round
    night = clip(tmp_path / "night.mov", "23:59:59:00")
    assert place_by_timecode(night, stem(tmp_path / "am.wav", 48000)).offset_s == pytest.approx(2.0)


def test_a_dubbers_take_is_placed_by_its_own_timecode(tmp_path):
    shot = clip(tmp_path / "sh.mov", "10:00:00:00")
    take = clip(tmp_path / "take.mov", "09:59:59:00", n=50)
    p = place_by_timecode(shot, take)
    assert p.offset_s == pytest.approx(-1.0) and p.line_source == "timecode" and "its start timecode" in p.describe()


def test_what_cannot_be_placed_says_why(tmp_path):
    with pytest.raises(MediaError, match="carries no start timecode.*--offset SECONDS"):
        place_by_timecode(clip(tmp_path / "plain.mov", None), stem(tmp_path / "s.wav", HOUR))
    shot = clip(tmp_path / "sh.mov", "01:00:00:00")
    with pytest.raises(MediaError, match="no Broadcast WAV time reference.*no start timecode"):
        place_by_timecode(shot, stem(tmp_path / "bare.wav", None))
    with pytest.raises(MediaError, match=r"plays before the shot starts .*reel"):  # another reel's stem
        place_by_timecode(shot, stem(tmp_path / "reel2.wav", HOUR - 20 * 48000))
    with pytest.raises(MediaError, match=r"plays after the shot ends"):
        place_by_timecode(shot, stem(tmp_path / "later.wav", HOUR + 60 * 48000))
    (tmp_path / "bad.wav").write_bytes(b"not a wav at all")
    with pytest.raises(MediaError, match="cannot read bad.wav as a WAV"):
        place_by_timecode(shot, tmp_path / "bad.wav")


def test_offset_values():
    assert parse_offset("tc") == parse_offset("TimeCode") == TIMECODE_OFFSET
    assert parse_offset("-1.5") == -1.5 and parse_offset(0.25) == 0.25
    with pytest.raises(ValueError, match="neither seconds nor 'tc'"):
        parse_offset("soon")


def test_bext_is_found_after_the_sound_without_reading_it(tmp_path):
    # some recorders write bext after the data chunk; the reader walks the chunk headers
    path = stem(tmp_path / "late.wav", None, seconds=2.0)
    add_bext(path, HOUR)
    data = path.read_bytes()
    i = data.index(b"bext")
    size = struct.unpack("<I", data[i + 4:i + 8])[0]
    chunk = data[i:i + 8 + size + (size & 1)]
    body = data[12:i] + data[i + len(chunk):] + chunk
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    assert path.read_bytes().index(b"bext") > path.read_bytes().index(b"data")
    assert read_bext(path)["time_reference"] == HOUR


def test_bext_after_the_sound_of_an_rf64_stem_is_found(tmp_path):
    # an RF64 (over 4 GB) stem's data chunk says 0xFFFFFFFF: the real size is in its ds64 chunk
    path = stem(tmp_path / "late.wav", None, seconds=2.0)
    add_bext(path, HOUR)
    data = path.read_bytes()
    chunks, i = {}, 12
    while i < len(data):
        cid, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        chunks[cid] = data[i + 8:i + 8 + size]
        i += 8 + size + (size & 1)
    pcm = chunks[b"data"]
    ds64 = struct.pack("<QQQI", 0, len(pcm), len(pcm) // 2, 0)
    body = (b"ds64" + struct.pack("<I", len(ds64)) + ds64 + b"fmt " + struct.pack("<I", len(chunks[b"fmt "])) + chunks[b"fmt "]
            + b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm + b"\0" * (len(pcm) & 1)
            + b"bext" + struct.pack("<I", len(chunks[b"bext"])) + chunks[b"bext"])
    path.write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + body)
    assert read_bext(path)["time_reference"] == HOUR
    path.write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + body[len(ds64) + 8:])  # no ds64: no size to skip
    assert read_bext(path) is None


def test_a_shot_list_places_its_rows_by_timecode(tmp_path):
    reel = tmp_path / "reel"
    reel.mkdir()
    clip(reel / "sh010.mov", "01:00:02:00")
    clip(reel / "sh020.mov", None)
    stem(tmp_path / "stem.wav", HOUR)
    lst = tmp_path / "shots.csv"
    lst.write_text("shot,audio,offset\nreel/sh010.mov,stem.wav,tc\n", encoding="utf-8")
    (row,) = read_shot_list(lst)
    assert row.offset_s == pytest.approx(-2.0) and "01:00:02:00" in row.placement
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "batch", str(lst), "--check", "--json"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rows"][0]["offset_s"] == pytest.approx(-2.0) and "Broadcast WAV" in out["rows"][0]["placement"]
    lst.write_text("shot,audio,offset\nreel/sh010.mov,stem.wav,tc\nreel/sh020.mov,stem.wav,tc\n", encoding="utf-8")
    with pytest.raises(DubStudioError, match="line 3: offset tc: sh020.mov carries no start timecode"):
        read_shot_list(lst)


def test_dub_with_offset_tc_refuses_a_shot_without_timecode_before_any_work(tmp_path):
    from dubstudio.project.store import Project

    shot = clip(tmp_path / "plain.mov", None)
    project = Project.create(tmp_path / "p.dubstudio", shot)
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(project.root), "--audio",
                        str(stem(tmp_path / "s.wav", HOUR)), "--offset", "tc"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "carries no start timecode" in r.stderr
    assert not (project.root / "edits").exists()  # nothing driven, nothing written


def test_the_dub_reads_a_stem_only_around_the_shot(tmp_path):
    from dubstudio.driving.a2e_data import as_audio
    from dubstudio.driving.a2e_predict import _heard_span

    rng = np.random.default_rng(7)
    x = (0.1 * rng.standard_normal(60 * 16000)).astype(np.float32)
    path = tmp_path / "reel1.wav"
    sf.write(str(path), x, 16000, subtype="FLOAT")
    a, offset = _heard_span(path, 30.0, 4.0)  # a 4 s shot hearing the stem from 30 s on
    assert offset == pytest.approx(1.0) and len(a) == 6 * 16000  # a second of context either side
    np.testing.assert_allclose(a, as_audio(path)[29 * 16000: 35 * 16000], atol=1e-6)
    whole, offset = _heard_span(path, 50.0, 4.0)  # near the stem's end: read as before
    assert offset == 50.0 and len(whole) == len(x)


def test_info_describes_a_stem_and_where_it_starts(tmp_path):
    path = stem(tmp_path / "reel1.wav", HOUR + 48000 * 90 + 24000)  # 01:01:30.500
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "info", str(path), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["sample_rate"], out["channels"], out["starts_at"]) == (48000, 1, "01:01:30.500")
    assert out["time_reference"] == HOUR + 48000 * 90 + 24000 and out["description"] == "reel 1 dialogue stem"
