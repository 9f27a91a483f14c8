"""VideoReader on the real test clips and on broken/synthetic files."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dubstudio.core.errors import MediaError
from dubstudio.io.video import VideoReader

pytestmark = pytest.mark.media

# name: (width, height, fps, frames, codec), from SOURCES.md
CLIPS = {
    "talk_a.mp4": (844, 844, 25, 125, "h264"),
    "talk_b.mp4": (512, 512, 25, 200, "mpeg4"),
    "talk_c.mp4": (450, 450, 25, 500, "h264"),
    "talk_d.mp4": (1080, 1920, 25, 502, "hevc"),
    "talk_e.mp4": (700, 700, 30, 199, "h264"),
    "talk_long.mp4": (256, 256, 25, 1499, "h264"),
    "dubber_a.mp4": (1920, 1080, 25, 118, "h264"),
    "dubber_b.mp4": (512, 512, 25, 183, "h264"),
}


def reference_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """Plain sequential PyAV decode (no seeking, none of our code): the ground truth, converted to
    RGB with the reader's swscale flags (accurate rounding; swscale's default is ~1 level dark)."""
    from av.video.reformatter import Interpolation as I  # noqa: E741

    flags = I.BILINEAR | I.ACCURATE_RND | I.FULL_CHR_H_INT
    out = {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, f in enumerate(c.decode(s)):
            if i in wanted:
                out[i] = f.to_ndarray(format="rgb24", interpolation=flags)
            if i >= max(wanted):
                break
    return out


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_clip_properties(media: Path, name: str) -> None:
    w, h, fps, n, codec = CLIPS[name]
    with VideoReader(media / name) as r:
        assert (r.width, r.height) == (w, h)
        assert r.fps == Fraction(fps) and isinstance(r.fps, Fraction)
        assert r.n_frames == len(r) == n
        assert r.codec == codec
        assert r.has_audio
        assert r.duration_s == pytest.approx(n / fps)
        assert r.time_of(n - 1) == Fraction(n - 1, fps)
        assert r.index_at(r.time_of(n // 2)) == n // 2 and r.index_at(1e9) == n - 1
        assert r.rotation == 0  # talk_d is stored upright (1080x1920, no display matrix)
        rgb = r.frame(0)
        assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize(
    "name, indices",
    [
        ("talk_a.mp4", [124, 0, 62, 63, 64, 7, 123, 3, 1]),  # h264, a single keyframe
        ("talk_b.mp4", [199, 100, 101, 13, 0, 198]),  # MPEG-4 Part 2
        pytest.param(  # HEVC 1080x1920: ~4 s, the reference decodes all 502 frames
            "talk_d.mp4", [501, 0, 251, 252, 7, 500, 1], marks=pytest.mark.slow, id="talk_d.mp4"
        ),
    ],
)
def test_random_access_matches_sequential_decode(media: Path, name: str, indices: list[int]) -> None:
    ref = reference_frames(media / name, set(indices))
    with VideoReader(media / name, cache_size=0) as r:
        for i in indices:
            np.testing.assert_array_equal(r.frame(i), ref[i], err_msg=f"{name} frame {i}")


def test_sequential_access_does_not_seek(media: Path) -> None:
    with VideoReader(media / "talk_c.mp4", cache_size=0) as r:
        r.frame(200)
        seeks = r.seek_count
        for i in range(201, 260):
            r.frame(i)
        assert r.seek_count == seeks
        r.frame(10)  # going back must seek
        assert r.seek_count == seeks + 1


def test_iter_frames_streams_full_long_clip(media: Path) -> None:
    t0 = time.perf_counter()
    with VideoReader(media / "talk_long.mp4") as r:
        count, last = 0, -1
        for i, rgb in r.iter_frames():
            assert i == last + 1 and rgb.shape == (256, 256, 3)
            last, count = i, count + 1
        assert count == 1499
        assert r.seek_count <= 1
        assert len(r._lru) <= 8  # frames are not accumulated
    print(f"talk_long sequential decode: {time.perf_counter() - t0:.2f} s")


def test_iter_frames_range_matches_frame(media: Path) -> None:
    with VideoReader(media / "talk_e.mp4") as r:
        got = dict(r.iter_frames(150, 155))
        assert sorted(got) == list(range(150, 155))
        for i in (150, 154):
            np.testing.assert_array_equal(got[i], r.frame(i))
        assert list(r.iter_frames(5, 5)) == []


def test_full_range_levels(media: Path) -> None:
    """talk_long is yuvj420p (full range): RGB must use full-range BT.601, not studio levels."""
    with av.open(str(media / "talk_long.mp4")) as c:
        f = next(c.decode(video=0))
        assert f.format.name == "yuvj420p"
        planes = f.to_ndarray()  # (H*3/2, W): Y, then U and V quarter planes
    with VideoReader(media / "talk_long.mp4") as r:
        rgb = r.frame(0).astype(np.float64)
    h, w = 256, 256
    y = planes[:h].astype(np.float64)
    up = lambda p: np.repeat(np.repeat(p.reshape(h // 2, w // 2), 2, 0), 2, 1).astype(np.float64) - 128
    u, v = up(planes[h : h + h // 4]), up(planes[h + h // 4 :])

    def bt601(yn, un, vn):
        r_, b_ = yn + 1.402 * vn, yn + 1.772 * un
        g_ = (yn - 0.299 * r_ - 0.114 * b_) / 0.587
        return np.clip(np.stack([r_, g_, b_], -1) * 255, 0, 255)

    full = bt601(y / 255, u / 255, v / 255)
    studio = bt601((y - 16) / 219, u / 224, v / 224)
    assert np.abs(rgb - full).mean() < 1.5
    assert np.abs(rgb - studio).mean() > 4


def test_lru_cache_returns_independent_copies(media: Path) -> None:
    with VideoReader(media / "talk_b.mp4", cache_size=2) as r:
        a = r.frame(3)
        a[:] = 0
        assert r.frame(3).any()
        for i in range(10):
            r.frame(i)
        assert len(r._lru) == 2


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_display_rotation_is_applied(make_clip, degrees: int) -> None:
    src = np.zeros((32, 64, 3), np.uint8)
    src[:8, :16] = (255, 0, 0)
    src[-8:, -16:] = (0, 0, 255)
    path = make_clip(f"rot{degrees}.mp4", [src] * 3, rotation=degrees)
    with VideoReader(path) as r:
        expected = np.rot90(src, degrees // 90)  # the display matrix angle is counter-clockwise
        assert (r.height, r.width) == expected.shape[:2]
        got = r.frame(1)
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected).mean() < 8


def test_still_image_is_a_one_frame_video(media: Path) -> None:
    with VideoReader(media / "portrait_c.png") as r:
        assert (r.n_frames, r.width, r.height) == (1, 512, 512)
        assert r.frame(0).shape == (512, 512, 3)


# --- errors --------------------------------------------------------------------------------------


def _remux(src: Path, dst: Path, faststart: bool = False, zero_payload: bool = False) -> Path:
    """Copy the video stream of ``src`` into ``dst`` (moov first, or packets zeroed)."""
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=opts) as out:
        vs = out.add_stream_from_template(inp.streams.video[0])
        for p in inp.demux(inp.streams.video[0]):
            if p.dts is None:
                continue
            if zero_payload:
                q = av.Packet(bytes(p.size))
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                p = q
            p.stream = vs
            out.mux(p)
    return dst


def _truncate(src: Path, dst: Path, fraction: float = 0.3) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _bad_file(kind: str, media: Path, tmp: Path) -> Path:
    """Build one kind of broken input in ``tmp`` (the real media is only read, never changed)."""
    if kind == "missing":
        return tmp / "missing.mp4"
    if kind == "truncated":  # moov at the end: the first 30% has no index at all
        return _truncate(media / "talk_a.mp4", tmp / "trunc.mp4")
    if kind == "truncated-faststart":  # moov first: the index promises frames that are not there
        fs = _remux(media / "talk_a.mp4", tmp / "fs.mp4", faststart=True)
        return _truncate(fs, tmp / "fs_trunc.mp4")
    if kind == "random-bytes":
        (tmp / "random.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
        return tmp / "random.mp4"
    if kind == "text":
        (tmp / "notes.txt").write_text("hello, not a video\n")
        return tmp / "notes.txt"
    if kind == "empty":
        (tmp / "empty.mp4").write_bytes(b"")
        return tmp / "empty.mp4"
    if kind == "wav":
        return media / "speech_de.wav"
    if kind == "undecodable":  # valid container, every video packet zeroed
        return _remux(media / "talk_b.mp4", tmp / "zeros.mp4", zero_payload=True)
    if kind == "folder":
        return tmp
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("missing", "not found"),
        ("truncated", "incomplete"),
        ("truncated-faststart", "incomplete"),
        ("random-bytes", "not a readable media file"),
        ("text", "not a readable media file"),
        ("empty", "empty"),
        ("wav", "no video stream"),
        ("undecodable", "no decodable video frames"),
        ("folder", "folder"),
    ],
)
def test_bad_inputs_raise_media_error(media: Path, tmp_path: Path, kind: str, needle: str) -> None:
    with pytest.raises(MediaError, match=needle) as exc:
        VideoReader(_bad_file(kind, media, tmp_path))
    msg = str(exc.value)
    assert ";" in msg and "\n" not in msg  # one sentence: what is wrong; what to do


def test_faststart_copy_reads_like_the_original(media: Path, tmp_path: Path) -> None:
    fs = _remux(media / "talk_a.mp4", tmp_path / "fs.mp4", faststart=True)
    with VideoReader(fs) as a, VideoReader(media / "talk_a.mp4") as b:
        assert a.n_frames == b.n_frames == 125
        np.testing.assert_array_equal(a.frame(100), b.frame(100))


def test_index_errors(media: Path) -> None:
    r = VideoReader(media / "talk_b.mp4")
    for bad in (-1, 200, 10**9):
        with pytest.raises(MediaError, match="out of range"):
            r.frame(bad)
    with pytest.raises(MediaError, match="outside"):
        list(r.iter_frames(0, 201))
    r.close()
    with pytest.raises(MediaError, match="closed"):
        r.frame(0)

