"""Shared test fixtures: the real test media, and tiny synthetic clips written with PyAV."""

from __future__ import annotations

import os

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from dubstudio.paths import media_dir


@pytest.fixture(scope="session")
def media() -> Path:
    """The test media folder (never copied into the repo).

    Skips when it is absent on a developer machine; in CI (CI=true) a missing folder fails,
    so a misplaced checkout can never pass by skipping every real-footage test."""
    d = media_dir()
    if not d.is_dir():
        msg = f"test media folder not found: {d} (set DUBSTUDIO_MEDIA)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


def write_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    fps: int = 25,
    rotation: int | None = None,
    audio_sr: int | None = None,
    pix_fmt: str = "yuv444p",
) -> Path:
    """Write RGB ``frames`` as an H.264 mp4 (optionally with a display rotation and a sine AAC track)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.options = {"crf": "12", "preset": "ultrafast"}
        if rotation is not None:
            vs.set_display_rotation(rotation)
        aus = out.add_stream("aac", rate=audio_sr, layout="mono") if audio_sr else None
        for rgb in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is not None:
            n = int(audio_sr * len(frames) / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / audio_sr)).astype(np.float32)
            for i in range(0, n, 1024):
                f = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="fltp", layout="mono")
                f.sample_rate, f.pts = audio_sr, i
                for p in aus.encode(f):
                    out.mux(p)
            for p in aus.encode():
                out.mux(p)
    return path


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    """``make_clip(name, frames, **kw)`` writes a synthetic clip into tmp_path (see write_clip)."""

    def make(name: str, frames: Sequence[np.ndarray], **kw) -> Path:
        return write_clip(tmp_path / name, frames, **kw)

    return make
