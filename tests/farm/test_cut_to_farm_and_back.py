"""The whole path of issue 25 on real footage, on CPU: a cut (an EDL with source timecodes, three
shots, two actors, one language's dialogue stem) -> conform import -> the shot list -> an OpenJD
job bundle -> the bundle run here by the OpenJD runner in two parallel workers -> dubbed exports ->
the conformed OTIO, read back with the cut's record ranges and each clip on its own export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = [pytest.mark.media, pytest.mark.slow]

RATE = 25


def with_timecode(src: Path, out: Path, tc: str) -> Path:
    """``src`` remuxed (stream copy, nothing re-encoded) into a .mov stamped with start timecode ``tc``."""
    import av

    with av.open(str(src)) as inp, av.open(str(out), "w", format="mov") as dst:
        dst.metadata["timecode"] = tc
        streams = {}
        for s in inp.streams:
            if s.type in ("video", "audio"):
                streams[s.index] = dst.add_stream_from_template(s)
        for pkt in inp.demux(list(inp.streams)):
            if pkt.dts is None or pkt.stream.index not in streams:
                continue
            pkt.stream = streams[pkt.stream.index]
            dst.mux(pkt)
    return out


def test_cut_to_farm_to_conform(media: Path, tmp_path: Path):
    import opentimelineio as otio

    from dubstudio.app.conform import ConformRequest, ImportRequest, conform_export_job, import_cut_job
    from dubstudio.app.farm import LocalRunRequest, SubmitRequest, run_bundle_job, submit_job
    from dubstudio.io.bwf import add_bext
    from dubstudio.io.timecode import read_start_timecode
    from dubstudio.io.video import VideoReader

    src = tmp_path / "src"
    src.mkdir()
    a = with_timecode(media / "talk_a.mp4", src / "A001C003.mov", "10:00:00:00")
    assert read_start_timecode(with_timecode(media / "talk_b.mp4", src / "B002C001.mov", "14:20:05:00")) == "14:20:05:00"
    assert read_start_timecode(a) == "10:00:00:00"
    cut = tmp_path / "reel1.edl"
    cut.write_text("\n".join([
        "TITLE: REEL 1", "FCM: NON-DROP FRAME", "",
        "001  A001C003 V     C        10:00:00:05 10:00:01:15 01:00:00:00 01:00:01:10",
        "* FROM CLIP NAME: sh010 [anna]",
        "002  B002C001 V     C        14:20:06:00 14:20:07:10 01:00:01:10 01:00:02:20",
        "* FROM CLIP NAME: sh020 [ben]",
        "003  A001C003 V     C        10:00:02:10 10:00:03:20 01:00:02:20 01:00:04:05",
        "* FROM CLIP NAME: sh030 [anna]", ""]))
    # the German dialogue stem of the reel, a Broadcast WAV starting at 01:00:00:00
    speech, sr = sf.read(media / "speech_de.wav", dtype="float32", always_2d=True)
    sf.write(tmp_path / "reel1_de.wav", speech[sr : sr + 5 * sr], sr, subtype="PCM_24")
    add_bext(tmp_path / "reel1_de.wav", 3600 * sr)

    job = tmp_path / "job"
    imp = import_cut_job(ImportRequest(cut, tmp_path / "reel1_de.wav", media=(src,), rate=RATE, out=job, handles=4, language="de"))
    assert [s["actor"] for s in imp["shots"]] == ["anna", "ben", "anna"]
    bundle = tmp_path / "bundle"
    sub = submit_job(SubmitRequest(Path(imp["shot_list"]), bundle, steps=12, from_shot_steps=4))
    assert sub["waves"] == [["Track"], ["Adapt", "Dub"], ["AdaptFromShot"], ["Export"]]
    ran = run_bundle_job(LocalRunRequest(bundle, workers=2, threads=1))
    assert ran.ok, ran.describe() + "\n" + "\n".join(Path(p).read_text()[-3000:] for p in sorted((bundle / "logs").glob("*.log"))
                                                     if "error" in Path(p).read_text().lower())[:6000]
    assert [s["step"] for s in ran.steps] == ["Track", "Adapt", "Dub", "AdaptFromShot", "Export"]

    conformed = conform_export_job(ConformRequest(job, tmp_path / "reel1_de.otio"))
    assert conformed.relinked == ["001 sh010", "002 sh020", "003 sh030"] and not conformed.kept
    back = otio.adapters.read_from_file(str(tmp_path / "reel1_de.otio"))
    original = otio.adapters.read_from_file(str(cut), rate=RATE)
    before = list(original.find_clips())
    clips = list(back.find_clips())
    assert [c.range_in_parent() for c in clips] == [c.range_in_parent() for c in before]
    assert [c.source_range for c in clips] == [c.source_range for c in before]
    for clip, name in zip(clips, ("001_sh010_de.mov", "002_sh020_de.mov", "003_sh030_de.mov"), strict=True):
        export = job / "exports" / name
        assert clip.media_reference.target_url == export.resolve().as_uri()
        assert clip.media_reference.available_range.contains(clip.source_range)
        with VideoReader(export) as r:
            assert r.n_frames == clip.media_reference.available_range.duration.value
        # the export starts at the source timecode of its first frame: the clip's source range is in it
        first = otio.opentime.from_timecode(read_start_timecode(export), RATE)
        assert first == clip.media_reference.available_range.start_time
    # the second shot of an actor started from the first one's adaptation (batch's chaining)
    log = (bundle / "logs" / "AdaptFromShot_line4.log").read_text()
    assert "line 4 adapt: done" in log
    assert np.isfinite(ran.wall_s)
