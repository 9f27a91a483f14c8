"""The display proxy (io/proxy.py) and VideoReader's display frames, on real long-GOP footage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dubstudio.core.errors import DubStudioError
from dubstudio.io.proxy import FrameProxy, proxy_size
from dubstudio.io.video import VideoReader


def test_proxy_size_never_enlarges_and_keeps_the_aspect():
    assert proxy_size(1080, 1920) == (720, 1280)
    assert proxy_size(1920, 1080) == (1280, 720)
    assert proxy_size(512, 512) == (512, 512)
    w, h = proxy_size(853, 480)
    assert w % 2 == h % 2 == 0 and abs(w / h - 853 / 480) < 0.01


def test_display_frame_is_the_frame_at_full_size_and_a_scaled_copy_below(make_clip):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 96, 3), np.uint8) for _ in range(4)]
    frames = [cv2.GaussianBlur(f, (0, 0), 2) for f in frames]
    with VideoReader(make_clip("d.mp4", frames)) as r:
        full = r.frame(2)
        bgra = r.display_frame(2, (r.width, r.height))
        assert bgra.shape == (64, 96, 4) and np.array_equal(bgra[:, :, 2::-1], full)  # the same pixels at 1:1
        small = r.display_frame(2, (48, 32))
        assert small.shape == (32, 48, 4)
        ref = cv2.resize(full, (48, 32), interpolation=cv2.INTER_AREA)
        assert np.abs(small[:, :, 2::-1].astype(int) - ref).mean() < 3
        assert [i for i, _ in r.iter_display((48, 32), 1, 3)] == [1, 2]


@pytest.mark.media
def test_proxy_of_a_long_gop_shot_serves_any_frame_and_is_cached(media: Path, tmp_path: Path):
    video = media / "dubber_a.mp4"  # 1920x1080 H.264, a single keyframe in 118 frames
    with VideoReader(video) as r:
        n, size = r.n_frames, (r.width, r.height)
        truth = {i: r.frame(i) for i in (0, 117)}
    p = FrameProxy.open_or_new(video, n, size, tmp_path)
    assert not p.complete and p.count() == 0 and p.frame(5) is None
    with VideoReader(video) as r:
        assert p.build(r)
    assert p.complete and p.path is not None and p.path.is_file()
    for i in (0, 117):
        got = p.frame(i, (480, 270))
        assert got.shape == (270, 480, 4)
        ref = cv2.resize(truth[i], (480, 270), interpolation=cv2.INTER_AREA)
        assert np.abs(got[:, :, 2::-1].astype(int) - ref).mean() < 3  # a JPEG at q88: close, not exact
    # the next opening reads it back instead of decoding the shot again
    again = FrameProxy.open_or_new(video, n, size, tmp_path)
    assert again.complete and np.array_equal(again.frame(60), p.frame(60))
    # a damaged proxy is rebuilt, never shown
    data = p.path.read_bytes()
    p.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DubStudioError, match="damaged"):
        FrameProxy.load(p.path)
    fresh = FrameProxy.open_or_new(video, n, size, tmp_path)
    assert not fresh.complete and fresh.count() == 0


def test_a_cancelled_proxy_is_not_saved(make_clip, tmp_path):
    frames = [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(6)]
    clip = make_clip("c.mp4", frames)
    with VideoReader(clip) as r:
        p = FrameProxy.open_or_new(clip, r.n_frames, (r.width, r.height), tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    seen = []
    with VideoReader(clip) as r:
        assert not p.build(r, cancelled=lambda: len(seen) >= 3, progress=lambda i, n: seen.append(i))
    assert not p.complete and not list((tmp_path / "cache").iterdir())
