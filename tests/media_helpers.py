"""Helpers shared by tests (importable as ``media_helpers``: tests/conftest.py puts this folder
on sys.path; a plain ``from conftest import`` is ambiguous once sub-folders have their own conftest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


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


def trim_clip(src: Path, dst: Path, n: int, audio_sr: int = 16000) -> Path:
    """The first ``n`` frames of ``src`` with the same span of its audio, re-encoded into ``dst``
    (H.264 + AAC mono; for short real clips in a temporary folder, never in the repo)."""
    import av

    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import VideoReader

    with VideoReader(src) as r:
        frames = [rgb for _, rgb in r.iter_frames(0, n)]
        fps = r.fps
    audio = load_audio(src, sr=audio_sr, duration_s=float(n / fps))
    h, w = frames[0].shape[:2]
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "14", "preset": "ultrafast"}
        aus = out.add_stream("aac", rate=audio_sr, layout="mono")
        for rgb in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        for i in range(0, len(audio), 1024):
            f = av.AudioFrame.from_ndarray(audio[None, i : i + 1024].astype(np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = audio_sr, i
            for p in aus.encode(f):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)
    return dst


def two_face_clip(media: Path, path: Path, n: int = 40, swap: int = 20, side: int = 320) -> Path:
    """talk_a on the left and talk_b on the right, ``side`` px each; at frame ``swap`` they trade
    places (a cut inside the shot): a shot with two people for the face-choice tests."""
    import cv2

    from dubstudio.io.video import VideoReader

    def frames(video: Path) -> list[np.ndarray]:
        with VideoReader(video) as r:
            return [cv2.resize(r.frame(i), (side, side), interpolation=cv2.INTER_AREA) for i in range(n)]

    a, b = frames(media / "talk_a.mp4"), frames(media / "talk_b.mp4")
    return write_clip(path, [np.hstack([a[i], b[i]] if i < swap else [b[i], a[i]]) for i in range(n)], pix_fmt="yuv420p")


def edl(path: Path, events: list[tuple], title: str = "DUB TEST") -> Path:
    """events: (reel, src_in, src_out, rec_in, rec_out, clip name, media path, extra comment lines)."""
    lines = [f"TITLE: {title}", "FCM: NON-DROP FRAME", ""]
    for i, (reel, si, so, ri, ro, name, media, *extra) in enumerate(events, 1):
        lines.append(f"{i:03d}  {reel:<8} V     C        {si} {so} {ri} {ro}")
        lines.append(f"* FROM CLIP NAME: {name}")
        lines += [f"* {x}" for x in (extra[0] if extra else [])]
        if media:
            lines.append(f"* SOURCE FILE: {media}")
    path.write_text("\n".join(lines) + "\n")
    return path


def stem(path: Path, seconds: float, start_s: float = 3600.0, sr: int = 48000) -> Path:
    """A dialogue stem: a Broadcast WAV whose first sample sits at ``start_s`` on the timeline."""
    import soundfile as sf

    from dubstudio.io.bwf import add_bext

    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), sr, subtype="PCM_24")
    add_bext(path, int(start_s * sr))
    return path
