"""Export per format, verified with ffprobe (not our reader): streams, codecs, frame count, rate,
durations, |audio - video| < 1 frame; plus the synthetic mark and the side-by-side layout."""

from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from dubstudio.core.errors import DubStudioError
from dubstudio.export.audio_track import AudioRequest
from dubstudio.export.audio_track import AudioLengthError
from dubstudio.export.job import ExportSettings, export_shot
from dubstudio.export.mark import detect, read_mark
from dubstudio.export.review import ReviewSettings
from dubstudio.export.verify import check, ffprobe, video_pts
from dubstudio.io.video import VideoReader
from dubstudio.rendering.render_job import RenderSettings, render_frames

pytestmark = pytest.mark.media

FAST = RenderSettings(batch_size=8, background=None)  # the segmenter is tested in tests/rendering


def settings(**kw) -> ExportSettings:
    kw.setdefault("render", FAST)
    return ExportSettings(**kw)


def test_mp4_h264_aac_at_29_97_with_the_shots_own_audio(derived_shot, shifted, tmp_path):
    shot = derived_shot(n=24, fps=Fraction(30000, 1001), audio_s=24 * 1001 / 30000 + 0.03, channels=1)
    r = shifted(shot.tracking, shot.clip)
    out = tmp_path / "dub.mp4"
    res = export_shot(shot.project, r, out, settings(verify=True))
    assert res["frames"] == 24 and res["frames_with_face"] == 24 and res["format"] == "mp4"
    assert [len(c) for c in r.calls] == [8, 8, 8]  # streamed in batches
    a = res["audio"]
    assert a["kind"] == "original" and a["policy"] == "fit" and "shot's own audio" in a["note"]
    assert a["samples"] == round(Fraction(24) / Fraction(30000, 1001) * 48000) == 38438
    assert res["verify"]["ok"], res["verify"]["problems"]

    d = ffprobe(out)
    v = next(s for s in d["streams"] if s["codec_type"] == "video")
    au = next(s for s in d["streams"] if s["codec_type"] == "audio")
    assert len(d["streams"]) == 2
    assert (v["codec_name"], v["pix_fmt"], v["profile"]) == ("h264", "yuv420p", "High")
    assert v["r_frame_rate"] == "30000/1001" and v["avg_frame_rate"] == "30000/1001"
    assert int(v["nb_read_frames"]) == 24
    pts = video_pts(out)  # exact rational timestamps: frame k at k * 1001/30000 s, no drift
    assert pts == [Fraction(k * 1001, 30000) for k in range(24)]
    assert (v["width"], v["height"]) == (256, 256)
    frame_s = 1001 / 30000
    assert abs(float(v["duration"]) - 24 * frame_s) < frame_s / 2
    assert (au["codec_name"], int(au["sample_rate"]), au["channels"]) == ("aac", 48000, 1)
    assert abs(float(au["duration"]) - float(v["duration"])) < frame_s
    # metadata: the machine-readable mark and the manifest
    tags = d["format"]["tags"]
    assert tags["dubstudio_synthetic"] == "1" and "Synthetic media" in tags["comment"]
    man = json.loads(tags["dubstudio_manifest"])
    assert man["synthetic"] and man["frames"] == 24 and man["frames_rendered"] == 24 and man["fps"] == "30000/1001"
    assert man["audio"]["source"] == shot.clip.name and man["project"] == shot.project.root.name
    assert str(tmp_path) not in tags["dubstudio_manifest"]  # names only, no folders
    assert read_mark(out)["synthetic"]
    # the watermark survives H.264 (crf 17) and is absent from the source
    marked, clean = detect(out), detect(shot.clip)
    assert marked["present"] and marked["score"] > 20, marked
    assert not clean["present"] and abs(clean["score"]) < 5, clean
    assert not list(tmp_path.glob(".*partial*"))


def test_mov_prores_hq_pcm_with_given_audio_and_policies(derived_shot, shifted, tmp_path, media):
    shot = derived_shot(n=25, fps=Fraction(25), scale=0.5)
    r = shifted(shot.tracking, shot.clip)
    wav = media / "speech_de.wav"  # 9.34 s for a 1 s shot
    out = tmp_path / "dub.mov"
    with pytest.raises(AudioLengthError, match="--audio-policy trim"):
        export_shot(shot.project, r, out, settings(audio=AudioRequest("file", wav)))
    assert not out.exists()
    res = export_shot(shot.project, r, out, settings(audio=AudioRequest("file", wav, offset_s=-1.0, policy="trim"), verify=True))
    a = res["audio"]
    assert a["kind"] == "file" and a["policy"] == "trim" and a["skipped_start_s"] == 1.0
    assert abs(a["trimmed_end_s"] - (9.34 - 1.0 - 1.0)) < 0.01 and a["padded_end_s"] == 0
    assert a["channels"] == 2 and a["samples"] == 48000
    assert res["verify"]["ok"], res["verify"]["problems"]
    d = ffprobe(out)
    v = next(s for s in d["streams"] if s["codec_type"] == "video")
    au = next(s for s in d["streams"] if s["codec_type"] == "audio")
    assert len(d["streams"]) == 2
    assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("prores", "HQ", "yuv422p10le")
    assert v["r_frame_rate"] == "25/1" and int(v["nb_read_frames"]) == 25
    assert (au["codec_name"], int(au["sample_rate"]), au["channels"]) == ("pcm_s24le", 48000, 2)
    assert abs(float(au["duration"]) - 1.0) < 1e-3 and abs(float(v["duration"]) - 1.0) < 1e-3
    assert d["format"]["tags"]["dubstudio_synthetic"] == "1"
    # the audio is the wav from 1.0 s on, sample for sample (PCM: lossless up to 24-bit rounding)
    import subprocess

    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "f32le", "-ac", "2", "-"], capture_output=True, check=True).stdout
    got = np.frombuffer(pcm, np.float32).reshape(-1, 2)
    ref, sr = sf.read(wav, dtype="float32")
    assert sr == 48000 and len(got) == 48000
    np.testing.assert_allclose(got, ref[48000:96000], atol=1e-4)
    # the side with the standard profile
    res = export_shot(shot.project, r, tmp_path / "std.mov", settings(audio=AudioRequest("none"), prores_profile="standard", watermark=_no_wm()))
    v = next(s for s in ffprobe(tmp_path / "std.mov")["streams"] if s["codec_type"] == "video")
    assert v["profile"] == "Standard" and len(ffprobe(tmp_path / "std.mov")["streams"]) == 1
    assert res["audio"]["kind"] == "none"


def _no_wm():
    from dubstudio.export.mark import WatermarkSettings

    return WatermarkSettings(enabled=False)


def test_png_sequence_wav_and_manifest(derived_shot, shifted, tmp_path):
    shot = derived_shot(n=12, fps=Fraction(24000, 1001), audio_s=0.3, channels=2, no_face=(3,))
    r = shifted(shot.tracking, shot.clip)
    out = tmp_path / "frames"
    res = export_shot(shot.project, r, out, settings(verify=True))
    assert res["format"] == "png" and res["frames_with_face"] == 11 and res["frames_watermarked"] == 11
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["audio.wav", "manifest.json"] + [f"frame_{i:06d}.png" for i in range(12)])
    info = sf.info(str(out / "audio.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    assert info.frames == round(Fraction(12) / Fraction(24000, 1001) * 48000) == 24024
    a = res["audio"]
    assert a["policy"] == "fit" and abs(a["padded_end_s"] - (12 * 1001 / 24000 - 0.3)) < 0.025  # the shot's own audio is short (AAC adds < 1 frame)
    assert res["verify"]["ok"], res["verify"]["problems"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["synthetic"] and man["frames"] == 12 and man["frames_rendered"] == 11
    with Image.open(out / "frame_000000.png") as im:
        assert im.text["dubstudio_synthetic"] == "1" and "Synthetic media" in im.text["Comment"]
        assert im.size == (256, 256)
    with VideoReader(shot.clip) as src:
        for i in (2, 3, 5):
            got = cv2.cvtColor(cv2.imread(str(out / f"frame_{i:06d}.png")), cv2.COLOR_BGR2RGB)
            orig = src.frame(i)
            if i == 3:  # no face: the original, bit for bit (no watermark either)
                assert np.array_equal(got, orig)
                continue
            cx, cy, side = shot.tracking.crop[i]
            outside = np.ones(orig.shape[:2], bool)
            outside[max(0, int(cy - side / 2)) : int(cy + side / 2) + 2, max(0, int(cx - side / 2)) : int(cx + side / 2) + 2] = False
            assert np.array_equal(got[outside], orig[outside])  # untouched outside the face box
            assert np.abs(got.astype(int) - orig).max() > 30  # the mouth did change
    assert detect(out)["present"]
    assert read_mark(out)["synthetic"] and read_mark(out / "frame_000001.png")["synthetic"]
    assert not list(tmp_path.glob(".frames.partial*"))
    # exporting again replaces the previous export in place
    export_shot(shot.project, r, out, settings(audio=AudioRequest("none")))
    assert not (out / "audio.wav").exists() and len(list(out.glob("frame_*.png"))) == 12


def test_side_by_side_geometry_and_mark(derived_shot, shifted, tmp_path):
    shot = derived_shot(n=16, fps=Fraction(25), scale=0.5)
    r = shifted(shot.tracking, shot.clip)
    none = AudioRequest("none")
    out, plain, flat = tmp_path / "review", tmp_path / "review_plain", tmp_path / "flat"
    res = export_shot(shot.project, r, out, settings(side_by_side=True, review=ReviewSettings(labels=False, burn_in=False), audio=none))
    assert (res["width"], res["height"]) == (2 * 256 + 8, 256)
    export_shot(shot.project, r, plain, settings(side_by_side=True, review=ReviewSettings(labels=False, burn_in=False), audio=none, watermark=_no_wm()))
    export_shot(shot.project, r, flat, settings(audio=none, watermark=_no_wm()))
    with VideoReader(shot.clip) as src:
        orig = src.frame(5)
    read = lambda p: cv2.cvtColor(cv2.imread(str(p / "frame_000005.png")), cv2.COLOR_BGR2RGB)  # noqa: E731
    img, img_plain, dub = read(out), read(plain), read(flat)
    assert img.shape == (256, 520, 3)
    assert np.array_equal(img[:, :256], orig)  # left: the original, untouched
    assert np.all(img[:, 256:264] == 128)  # the separator
    assert np.array_equal(img_plain[:, 264:], dub)  # right: the dubbed frame
    diff = img[:, 264:].astype(int) - dub
    assert np.abs(diff).max() <= 2 and np.any(diff)  # + the watermark, on the canvas grid
    # the mark sits on the rendered pixels (changed, or at least half rendered), nowhere else
    f5 = list(render_frames(shot.project, shot.tracking, r, range(5, 6), settings=FAST))[0]
    y0, x0, w = f5.weight
    share = np.zeros(orig.shape[:2], np.float32)
    share[y0 : y0 + w.shape[0], x0 : x0 + w.shape[1]] = w
    changed = np.any(dub != orig, axis=2)
    rendered = (share >= 0.5) | (changed & (share > 0))
    marked = np.any(diff != 0, axis=2)
    assert not np.any(marked & ~rendered) and marked.sum() > 0.95 * rendered.sum()
    assert rendered.sum() > changed.sum()  # pixels the render happened to leave equal are marked too
    assert detect(out)["present"] and not detect(plain)["present"]
    # labels + half scale (e.g. a 1080p review at 0.5 -> 1928 x 540)
    res = export_shot(shot.project, r, tmp_path / "half.mp4", settings(side_by_side=True, review=ReviewSettings(scale=0.5), audio=AudioRequest("none"), verify=True))
    assert (res["width"], res["height"]) == (2 * 128 + 8, 128) and res["verify"]["ok"]
    v = ffprobe(tmp_path / "half.mp4")["streams"][0]
    assert (v["width"], v["height"]) == (264, 128)


def test_a_review_burns_in_the_source_timecode_and_frame(derived_shot, shifted, tmp_path):
    """Review notes quote a timecode: each review frame shows its own, bottom centre, clear of both
    halves' faces; the rest of the frame is the review without it."""
    from dubstudio.export.review import SideBySide

    shot = derived_shot(n=8, fps=Fraction(30000, 1001), scale=0.5, timecode="01:00:59;26")
    r = shifted(shot.tracking, shot.clip)
    kw = dict(side_by_side=True, audio=AudioRequest("none"), watermark=_no_wm())
    export_shot(shot.project, r, tmp_path / "tc", settings(review=ReviewSettings(labels=False), **kw))
    export_shot(shot.project, r, tmp_path / "bare", settings(review=ReviewSettings(labels=False, burn_in=False), **kw))
    read = lambda p, i: cv2.imread(str(p / f"frame_{i:06d}.png")).astype(int)  # noqa: E731
    for i in (3, 4):
        diff = np.any(read(tmp_path / "tc", i) != read(tmp_path / "bare", i), axis=2)
        ys, xs = np.nonzero(diff)
        assert ys.min() > 256 * 0.8 and abs((xs.min() + xs.max()) / 2 - 260) < 8  # a box at the bottom centre
    assert np.any(read(tmp_path / "tc", 3) != read(tmp_path / "tc", 4))
    sbs = SideBySide(256, 256, ReviewSettings(), "01:00:59;26", Fraction(30000, 1001))
    # 29.97 drop-frame: 01:01:00;00 and ;01 do not exist
    assert sbs.burn_in_text(3) == "01:00:59;29   frame 3" and sbs.burn_in_text(4) == "01:01:00;02   frame 4"
    assert SideBySide(256, 256).burn_in_text(7) == "frame 7"  # no timecode: the frame number alone


def test_mxf_dnxhr_for_avid(derived_shot, shifted, tmp_path, media):
    """DNxHR HQ + PCM in MXF OP1a, with the start timecode and the synthetic mark (as MXF user
    comments, which the muxer keeps where it drops custom tags), the watermark, and the 10-bit
    DNxHR HQX profile."""
    shot = derived_shot(n=25, fps=Fraction(30000, 1001), scale=0.75, timecode="10:00:00;00")
    r = shifted(shot.tracking, shot.clip)
    out = tmp_path / "dub.mxf"
    res = export_shot(shot.project, r, out, settings(audio=AudioRequest("file", media / "speech_de.wav", policy="trim"), verify=True))
    assert res["format"] == "mxf" and res["verify"]["ok"], res["verify"]["problems"]
    d = ffprobe(out)
    v = next(s for s in d["streams"] if s["codec_type"] == "video")
    au = next(s for s in d["streams"] if s["codec_type"] == "audio")
    assert (v["codec_name"], v["profile"], v["pix_fmt"], int(v["nb_read_frames"])) == ("dnxhd", "DNXHR HQ", "yuv422p", 25)
    assert (au["codec_name"], int(au["sample_rate"])) == ("pcm_s24le", 48000)
    assert d["format"]["tags"]["timecode"] == "10:00:00;00"
    mark = read_mark(out)
    assert mark["synthetic"] and mark["manifest"]["format"] == "mxf" and mark["manifest"]["settings"]["dnxhr_profile"] == "hq"
    assert detect(out)["present"]
    res = export_shot(shot.project, r, tmp_path / "hqx.mxf", settings(audio=AudioRequest("none"), dnxhr_profile="hqx", verify=True))
    v = ffprobe(tmp_path / "hqx.mxf")["streams"][0]
    assert res["verify"]["ok"] and (v["profile"], v["pix_fmt"]) == ("DNXHR HQX", "yuv422p10le")


def test_mxf_refuses_frames_too_small_for_dnxhr_before_rendering(derived_shot, shifted, tmp_path):
    shot = derived_shot(n=4, fps=Fraction(25), scale=0.25)  # 128 x 128
    r = shifted(shot.tracking, shot.clip)
    with pytest.raises(DubStudioError, match="DNxHR needs frames of at least 256x120.*ProRes"):
        export_shot(shot.project, r, tmp_path / "small.mxf", settings())
    assert r.calls == [] and not (tmp_path / "small.mxf").exists()


def test_check_rejects_what_it_should(derived_shot, shifted, tmp_path):
    """The verifier itself can fail: a 24-frame export checked against 25 frames / another rate / audio."""
    shot = derived_shot(n=24, fps=Fraction(25))
    out = tmp_path / "a.mp4"
    export_shot(shot.project, shifted(shot.tracking, shot.clip), out, settings(audio=AudioRequest("none")))
    assert check(out, 24, Fraction(25), audio=False, video_codec="h264")["ok"]
    assert "24 frames, expected 25" in " ".join(check(out, 25, Fraction(25), audio=False)["problems"])
    assert "frame rate" in " ".join(check(out, 24, Fraction(30000, 1001), audio=False)["problems"])
    assert "no audio stream" in " ".join(check(out, 24, Fraction(25), audio=True)["problems"])


def test_the_mark_covers_the_rendered_area_even_where_the_render_matches_the_frame(derived_shot, shifted, tmp_path):
    """A render close to the frame (here a perfect one, with the detail pass putting the frame's own
    texture back) leaves few pixels *different* from the original; the mark goes on every pixel
    that is at least half rendered, so it is still found in a short shot."""
    shot = derived_shot(n=24, fps=Fraction(30000, 1001), scale=0.75)
    r = shifted(shot.tracking, shot.clip, resolution=256, offset=0)
    out = tmp_path / "same.mp4"
    res = export_shot(shot.project, r, out, settings(audio=AudioRequest("none")))
    assert res["frames_watermarked"] == 24
    found = detect(out)
    assert found["present"] and found["score"] > 20, found


def test_the_export_starts_at_the_shots_source_timecode(derived_shot, shifted, tmp_path):
    """A shot stamped with its source timecode (01:00:59;20 drop-frame, as an edit exports a
    29.97 shot) is exported with the same start timecode in every format, so it conforms back."""
    from dubstudio.io.timecode import read_start_timecode

    shot = derived_shot(n=12, fps=Fraction(30000, 1001), audio_s=0.5, timecode="01:00:59;20")
    assert read_start_timecode(shot.clip) == "01:00:59;20"
    r = shifted(shot.tracking, shot.clip)
    for name, kw in (("dub.mp4", {}), ("review.mov", {"side_by_side": True})):
        res = export_shot(shot.project, r, tmp_path / name, settings(verify=True, **kw))
        assert res["timecode"] == "01:00:59;20" and res["verify"]["ok"], res["verify"]
        d = ffprobe(tmp_path / name)
        tmcd = [s for s in d["streams"] if s["codec_type"] == "data"]
        assert [s["codec_tag_string"] for s in tmcd] == ["tmcd"] and tmcd[0]["tags"]["timecode"] == "01:00:59;20"
        assert json.loads(d["format"]["tags"]["dubstudio_manifest"])["source_reel"] == "A001C003"
        if name.endswith(".mov"):  # QuickTime keeps the reel beside the timecode (mp4's tmcd has no reel)
            assert tmcd[0]["tags"]["reel_name"] == "A001C003"
        assert json.loads(d["format"]["tags"]["dubstudio_manifest"])["source_timecode"] == "01:00:59;20"
        with VideoReader(tmp_path / name) as back:  # the timecode track is not a picture
            assert back.n_frames == 12
    res = export_shot(shot.project, r, tmp_path / "seq", settings(format="png", verify=True))
    assert res["verify"]["ok"] and json.loads((tmp_path / "seq" / "manifest.json").read_text())["source_timecode"] == "01:00:59;20"
    # its WAV is a Broadcast WAV starting at that timecode: 01:00:59;20 is frame 107892 + 1790 =
    # 109682 of the day (drop-frame: an hour is 107892 frames, minute 0 drops none), and
    # 109682 * 1001/30000 s * 48 kHz = 175,666,691 samples since midnight (ffprobe reads it)
    wav = ffprobe(tmp_path / "seq" / "audio.wav", count_frames=False)
    assert wav["format"]["tags"]["time_reference"] == "175666691"
    assert sf.info(str(tmp_path / "seq" / "audio.wav")).frames == res["audio"]["samples"]
    # the check fails on a file whose timecode is not the shot's
    assert not check(tmp_path / "dub.mp4", 12, Fraction(30000, 1001), True, timecode="10:00:00:00")["ok"]
    # a shot without a timecode gets none (no invented 00:00:00:00 track)
    plain = derived_shot(n=12, fps=Fraction(25))
    res = export_shot(plain.project, shifted(plain.tracking, plain.clip), tmp_path / "plain.mp4", settings(verify=True))
    assert res["timecode"] is None and res["verify"]["summary"]["timecode"] is None
    assert not [s for s in ffprobe(tmp_path / "plain.mp4")["streams"] if s["codec_type"] == "data"]


def test_the_export_keeps_the_shots_colour_tags(derived_shot, shifted, tmp_path):
    """An HD shot encoded and tagged BT.709 exports BT.709-encoded and -tagged (H.264 and ProRes):
    untagged, a player reads HD as BT.709 anyway and the export's BT.601 pixels shift hue against
    the source on the same screen (saturated green by ~25 levels: tests/io/test_video_color.py)."""
    shot = derived_shot(n=8, fps=Fraction(25), bt709=True)
    r = shifted(shot.tracking, shot.clip)

    def as_player(path):  # decoded the way the tags say, none of our code
        import av

        with av.open(str(path)) as c:
            f = next(c.decode(video=0))
            return f.reformat(format="rgb24", src_colorspace="itu709").to_ndarray().astype(int)

    src = as_player(shot.clip)
    cx, cy, side = shot.tracking.crop[0]  # the rendered area (centre, side): compare outside it
    keep = np.ones(src.shape[:2], bool)
    keep[max(0, int(cy - side / 2)):int(cy + side / 2) + 1, max(0, int(cx - side / 2)):int(cx + side / 2) + 1] = False
    assert keep.mean() > 0.2
    for name in ("dub.mp4", "dub.mov"):
        res = export_shot(shot.project, r, tmp_path / name, settings(verify=True, watermark=_no_wm()))
        v = res["verify"]["summary"]["video"]
        assert v["color"] == {"color_range": "tv", "color_space": "bt709", "color_transfer": "bt709", "color_primaries": "bt709"}, v
        assert res["color"] == "bt709, tv"
        out = as_player(tmp_path / name)
        # outside the face: re-encoding noise only (1.9 levels on average; BT.601 pixels read as BT.709: 3.7)
        assert np.abs(out - src)[keep].mean() < 2.5


def test_a_10_bit_source_keeps_its_bits_in_a_prores_export(derived_shot, shifted, tmp_path, monkeypatch):
    """A 10-bit ProRes original with gradation finer than 8 bits: the ProRes export keeps it
    outside what the composite changed (the render pipeline itself works in 8 bits)."""
    from dubstudio.io.video import VideoReader

    shot = derived_shot(n=8, fps=Fraction(25), prores10=True)
    r = shifted(shot.tracking, shot.clip)
    with VideoReader(shot.clip, deep=True) as src:
        assert src.bit_depth == 10
        source = src.frame(3).astype(np.int64)
    cx, cy, side = shot.tracking.crop[3]
    keep = np.ones(source.shape[:2], bool)
    keep[max(0, int(cy - side / 2)):int(cy + side / 2) + 1, max(0, int(cx - side / 2)):int(cx + side / 2) + 1] = False
    keep[source.shape[0] // 5 - 2:] = False  # the sky above the face, where 8 bits make bands
    assert keep.sum() > 1000

    def error(path):  # mean |export - source| in the sky, in 16-bit units (one 8-bit level = 257)
        with VideoReader(path, deep=True) as back:
            return float(np.abs(back.frame(3).astype(np.int64) - source)[keep].mean())

    res = export_shot(shot.project, r, tmp_path / "dub.mov", settings(verify=True))
    assert res["source_bits_kept"] and res["verify"]["ok"], res["verify"]
    assert detect(tmp_path / "dub.mov")["present"]  # the watermark rides on the 8-bit change
    review = export_shot(shot.project, r, tmp_path / "review.mov", settings(side_by_side=True))
    assert not review["source_bits_kept"]
    assert not export_shot(shot.project, r, tmp_path / "dub.mp4", settings())["source_bits_kept"]  # H.264 here is 8-bit
    # a PNG sequence gets 16-bit frames: lossless, so outside the face they are the source's decode
    assert export_shot(shot.project, r, tmp_path / "seq", settings(format="png", verify=True))["source_bits_kept"]
    png = cv2.cvtColor(cv2.imread(str(tmp_path / "seq" / "frame_000003.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert png.dtype == np.uint16 and np.abs(png.astype(np.int64) - source)[keep].max() == 0
    distinct = lambda a: len(np.unique(a[2, :, 1]))  # noqa: E731  levels across one sky row
    assert distinct(png) > 2 * distinct((png // 257).astype(np.int64))  # 22 against 8: no bands
    assert detect(tmp_path / "seq")["present"]
    from dubstudio.export import job

    monkeypatch.setattr(job, "_deep_source", lambda *a: None)  # the same ProRes export through 8 bits
    export_shot(shot.project, r, tmp_path / "eight.mov", settings())
    # measured: 3.7 against 56 (8 bits quantise the sky into bands: a quarter level off on average)
    assert error(tmp_path / "dub.mov") < 0.25 * error(tmp_path / "eight.mov")


def test_anamorphic_footage_keeps_its_pixel_aspect(derived_shot, shifted, tmp_path):
    """A 2x anamorphic shot (pixels shown twice as wide as tall) exports with the same pixel aspect;
    without it a player shows the dubbed shot squeezed to half its width."""
    shot = derived_shot(n=8, fps=Fraction(25), sar=Fraction(2))
    r = shifted(shot.tracking, shot.clip)
    for name, kw in (("dub.mp4", {}), ("dub.mov", {}), ("review.mp4", {"side_by_side": True})):
        res = export_shot(shot.project, r, tmp_path / name, settings(verify=True, **kw))
        assert res["pixel_aspect"] == "2:1" and res["verify"]["summary"]["video"]["sample_aspect_ratio"] == "2:1", name
    export_shot(shot.project, r, tmp_path / "seq", settings(format="png"))
    assert json.loads((tmp_path / "seq" / "manifest.json").read_text())["pixel_aspect"] == "2:1"
    square = derived_shot(n=8, fps=Fraction(25))
    res = export_shot(square.project, shifted(square.tracking, square.clip), tmp_path / "square.mp4", settings(verify=True))
    assert res["pixel_aspect"] is None and res["verify"]["summary"]["video"]["sample_aspect_ratio"] in (None, "1:1", "0:1")
