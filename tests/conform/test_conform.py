"""An editor's cut in (conform import), the shots cut out, the cut relinked to the exports
(conform export), and every kind of bad cut refused at import with the shot named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_helpers import edl, stem

from dubstudio.app.conform import ConformRequest, ImportRequest, conform_export_job, import_cut_job
from dubstudio.conform.cut import read_cut
from dubstudio.conform.shots import read_manifest
from dubstudio.core.errors import DubStudioError

pytestmark = pytest.mark.media

RATE = 25


@pytest.fixture()
def cut(media: Path, tmp_path: Path) -> Path:
    a, b = media / "talk_a.mp4", media / "talk_b.mp4"
    return edl(tmp_path / "cut.edl", [
        ("TALKA", "00:00:00:10", "00:00:01:20", "01:00:00:00", "01:00:01:10", "sh010 [anna]", a),
        ("TALKB", "00:00:01:00", "00:00:02:10", "01:00:01:10", "01:00:02:20", "sh020", b, ["LOC: 01:00:01:15 RED     actor:ben"]),
        ("TALKA", "00:00:02:00", "00:00:03:00", "01:00:02:20", "01:00:03:20", "sh030 [anna]", a),
    ])


def test_a_cut_becomes_shots_with_actors_and_ranges(cut: Path, tmp_path: Path):
    c = read_cut(cut, rate=RATE, check_faces=False)
    assert [s.name for s in c.shots] == ["sh010", "sh020", "sh030"]
    assert [s.actor for s in c.shots] == ["anna", "ben", "anna"]
    assert [s.record_frames for s in c.shots] == [35, 35, 25]
    assert c.shots[0].record_in == 3600 * RATE and c.shots[1].record_in == 3600 * RATE + 35
    assert [s.first_frame for s in c.shots] == [10, 25, 50]  # the media have no timecode: 00:00:00:00
    assert not c.all_problems


def test_import_cuts_shots_out_and_the_conform_relinks_them(cut: Path, tmp_path: Path):
    """Shot files carry the source timecode of their first frame (head handle included) and the
    source's sound; lines are cut from the stem by record timecode; the conform points each clip
    at its export and keeps record and source ranges; a missing export keeps its clip and is listed."""
    import opentimelineio as otio

    from dubstudio.io.timecode import read_start_timecode
    from dubstudio.io.video import VideoReader

    out = tmp_path / "job"
    res = import_cut_job(ImportRequest(cut, stem(tmp_path / "de.wav", 10.0), out=out, handles=3, language="de",
                                       rate=RATE, check_faces=False))
    rows = (out / "shots.csv").read_text().splitlines()
    assert rows[0] == "shot,audio,dubber,actor,offset,output,audio_policy" and len(rows) == 4
    assert rows[1].startswith("shots/001_sh010.mov,lines/001_sh010_de.wav,,anna,0.120000,exports/001_sh010_de.mov")
    m = read_manifest(out)
    assert res["shot_list"] and len(m["shots"]) == 3
    for e in m["shots"]:
        with VideoReader(e["shot_file"]) as r:
            assert r.n_frames == e["head"] + e["record_frames"] + e["tail"]
        assert read_start_timecode(e["shot_file"]) == e["shot_tc_in"]
        line, sr = sf.read(e["line_file"])
        assert len(line) == e["record_frames"] * sr // RATE
    assert m["shots"][0]["shot_tc_in"] == "00:00:00:07"  # 00:00:00:10 less 3 frames of handle
    # stand-ins for the dubbed exports: the same frames and timecode (a real one is a render)
    for e in m["shots"][:2]:
        Path(e["export"]).write_bytes(Path(e["shot_file"]).read_bytes())
    got = conform_export_job(ConformRequest(out, tmp_path / "dubbed.otio"))
    assert got.relinked == ["001 sh010", "002 sh020"] and len(got.kept) == 1 and "003 sh030: no export" in got.kept[0]
    back = otio.adapters.read_from_file(str(tmp_path / "dubbed.otio"))
    orig = otio.adapters.read_from_file(str(cut), rate=RATE)
    clips, before = list(back.find_clips()), list(orig.find_clips())
    assert [c.range_in_parent() for c in clips] == [c.range_in_parent() for c in before]
    assert [c.source_range for c in clips] == [c.source_range for c in before]
    assert clips[0].media_reference.target_url == Path(m["shots"][0]["export"]).as_uri()
    assert clips[0].media_reference.available_range.contains(clips[0].source_range)
    assert not isinstance(clips[2].media_reference, otio.schema.ExternalReference)  # kept as it was (the EDL's)
    edl_back = otio.adapters.read_from_file(str(tmp_path / "dubbed.edl"), rate=RATE)
    assert [c.range_in_parent() for c in edl_back.find_clips()] == [c.range_in_parent() for c in before]
    # importing again keeps the shots already cut out (a rerun after a fix does the rest)
    stamp = Path(m["shots"][0]["shot_file"]).stat().st_mtime_ns
    import_cut_job(ImportRequest(cut, tmp_path / "de.wav", out=out, handles=3, language="de", rate=RATE, check_faces=False))
    assert Path(m["shots"][0]["shot_file"]).stat().st_mtime_ns == stamp


def test_bad_cuts_are_refused_at_import_with_the_shot_named(media: Path, tmp_path: Path):
    a, e = media / "talk_a.mp4", media / "talk_e.mp4"
    s = stem(tmp_path / "de.wav", 4.0)
    bad = edl(tmp_path / "bad.edl", [
        ("TALKA", "00:00:00:00", "00:00:01:00", "01:00:00:00", "01:00:01:00", "fine [anna]", a),
        ("GONE", "00:00:00:00", "00:00:01:00", "01:00:01:00", "01:00:02:00", "missing", tmp_path / "nowhere" / "gone.mp4"),
        ("TALKE", "00:00:00:00", "00:00:01:00", "01:00:02:00", "01:00:03:00", "thirty", e),
        ("TALKA", "00:00:04:10", "00:00:05:10", "01:00:03:00", "01:00:04:00", "past the end", a),
        ("TALKA", "00:00:00:00", "00:00:01:00", "01:00:04:00", "01:00:05:00", "after the stem", a),
    ])
    with pytest.raises(DubStudioError) as err:
        import_cut_job(ImportRequest(bad, s, rate=RATE, check_faces=False))
    text = str(err.value)
    assert "shot 002 missing: its media was not found" in text
    assert "shot 003 thirty: its media talk_e.mp4 runs at 30 fps and the cut at 25 fps" in text
    assert "shot 004 past the end: source 00:00:04:10-00:00:05:10 lies outside talk_a.mp4" in text
    assert "shot 005 after the stem: the stem de.wav" in text and "does not cover" in text
    assert "shot 001" not in text
    # overlapping picture clips: the EDL reader refuses them, and the message names the clip
    over = edl(tmp_path / "over.edl", [
        ("TALKA", "00:00:00:00", "00:00:02:00", "01:00:00:00", "01:00:02:00", "first", a),
        ("TALKA", "00:00:02:00", "00:00:03:00", "01:00:01:00", "01:00:02:00", "second", a),
    ])
    with pytest.raises(DubStudioError, match="over.edl: cannot read the cut .*Overlapping record in value.*second"):
        import_cut_job(ImportRequest(over, s, rate=RATE, check_faces=False))
    with pytest.raises(DubStudioError, match="carries no Broadcast WAV time reference"):
        plain = tmp_path / "plain.wav"
        sf.write(plain, np.zeros(48000, np.float32), 48000)
        import_cut_job(ImportRequest(bad, plain, rate=RATE, check_faces=False))


def test_a_clip_without_a_face_is_refused(media: Path, tmp_path: Path):
    from media_helpers import write_clip

    blank = write_clip(tmp_path / "wall.mp4", [np.full((128, 128, 3), 90, np.uint8)] * 30)
    cut = edl(tmp_path / "c.edl", [
        ("TALKA", "00:00:00:00", "00:00:01:00", "01:00:00:00", "01:00:01:00", "face", media / "talk_a.mp4"),
        ("WALL", "00:00:00:00", "00:00:01:00", "01:00:01:00", "01:00:02:00", "wall", blank),
    ])
    with pytest.raises(DubStudioError) as err:
        import_cut_job(ImportRequest(cut, stem(tmp_path / "de.wav", 3.0), rate=RATE))
    assert "shot 002 wall: no face on 4 frames sampled across it" in str(err.value) and "shot 001" not in str(err.value)


def test_otio_cut_with_actor_metadata_and_a_second_picture_track(media: Path, tmp_path: Path):
    """An OTIO cut: the actor from the clip's metadata; a clip on a second video track over the
    picture is an overlap the user must flatten."""
    import opentimelineio as otio

    ot = otio.opentime
    tl = otio.schema.Timeline(name="cut", global_start_time=ot.RationalTime(3600 * RATE, RATE))
    v1, v2 = otio.schema.Track(name="V1"), otio.schema.Track(name="V2")
    ref = otio.schema.ExternalReference(target_url=(media / "talk_b.mp4").as_uri())
    clip = otio.schema.Clip(name="sh100", media_reference=ref, source_range=ot.TimeRange(ot.RationalTime(5, RATE), ot.RationalTime(40, RATE)),
                            metadata={"dubstudio": {"actor": "carla"}})
    v1.append(clip)
    v2.append(otio.schema.Gap(source_range=ot.TimeRange(duration=ot.RationalTime(10, RATE))))
    v2.append(otio.schema.Clip(name="insert", media_reference=ref.clone(),
                               source_range=ot.TimeRange(ot.RationalTime(0, RATE), ot.RationalTime(10, RATE))))
    tl.tracks.extend([v1, v2])
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(tl, str(path))
    c = read_cut(path, check_faces=False)
    assert c.shots[0].actor == "carla" and c.shots[0].record_in == 3600 * RATE and c.shots[0].first_frame == 5
    assert len(c.problems) == 1 and "'insert' on track V2 overlaps 'sh100' at 01:00:00:10-01:00:00:20" in c.problems[0]
    with pytest.raises(DubStudioError, match="flatten the cut"):
        c.check()
    assert json.dumps(c.shots[0].to_json(c.rate))  # the import's --json output serialises
