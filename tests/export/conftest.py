"""Fixtures for the export tests: small tracked shots derived from talk_b, and a test-double renderer.

talk_b is tracked once per session (in the same folder the rendering tests use, so a full run
tracks it once). ``derived_shot`` then writes a *new* clip from chosen talk_b frames at any frame
rate and scale (e.g. 24 frames at 30000/1001, 256 px) with an optional audio track, and gives
it a project whose tracking is talk_b's tracking sliced and scaled the same way: a tracked shot
in milliseconds, with real faces, at the frame rates editors use.
"""

from __future__ import annotations

import dataclasses
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dubstudio.project.store import Project
from dubstudio.io.video import VideoReader
from dubstudio.rendering.crop_io import extract_crop


@pytest.fixture(scope="session")
def talk_b(media: Path, tmp_path_factory):
    from dubstudio.tracking.track import track

    clip = media / "talk_b.mp4"
    project = Project.create(tmp_path_factory.getbasetemp() / "shared_talk_b", clip)
    tracking, _ = track(clip, project)
    with VideoReader(clip) as r:
        frames = np.stack([rgb for _, rgb in r.iter_frames(0, 96)])  # enough for every test shot
    return tracking, frames


def scale_tracking(t, idx: np.ndarray, k: float, fps: Fraction, no_face=()):
    """``t`` restricted to frames ``idx`` (in that order) of an image scaled by ``k``."""
    per_frame = {"landmarks", "has_face", "scale", "rotation", "translation", "controls", "residual", "crop"}
    kw = {}
    for f in dataclasses.fields(t):
        v = getattr(t, f.name)
        if f.name in per_frame:
            v = np.array(v[idx], copy=True)
        kw[f.name] = v
    kw["landmarks"] = kw["landmarks"] * k
    kw["scale"] = kw["scale"] * k
    kw["translation"] = kw["translation"] * k
    kw["crop"] = kw["crop"] * k
    kw["has_face"] = kw["has_face"].copy()
    kw["has_face"][list(no_face)] = False
    kw.update(fps=Fraction(fps), width=int(round(t.width * k)), height=int(round(t.height * k)))
    return type(t)(**kw)


def write_shot_clip(path: Path, frames: np.ndarray, fps: Fraction, audio: np.ndarray | None = None, sr: int = 44100,
                    timecode: str | None = None, bt709: bool = False, sar: Fraction | None = None) -> Path:
    """H.264 (+ AAC of ``audio`` (channels, n) float32) test clip, independent of our writer;
    ``timecode``: the start timecode an edit's export would stamp on it; ``bt709``: encoded and
    tagged BT.709 (limited range), as HD camera and edit exports are."""
    with av.open(str(path), "w") as out:
        if timecode:
            out.metadata["timecode"] = timecode
        vs = out.add_stream("libx264", rate=Fraction(fps))
        if timecode:
            vs.metadata["reel_name"] = "A001C003"  # the camera card, as a camera original names it
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.options = {"crf": "14", "preset": "ultrafast"}
        if sar is not None:  # anamorphic: pixels displayed sar times wider than tall
            vs.codec_context.sample_aspect_ratio = Fraction(sar)
        if bt709:
            cc = vs.codec_context
            cc.color_primaries = cc.color_trc = cc.colorspace = 1
            cc.color_range = 1
        aus = None
        if audio is not None:
            aus = out.add_stream("aac", rate=sr, layout="mono" if audio.shape[0] == 1 else "stereo")
        for rgb in frames:
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if bt709:
                f = f.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range=1)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is not None:
            for i in range(0, audio.shape[1], 1024):
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i : i + 1024]), format="fltp", layout=aus.layout.name)
                f.sample_rate, f.pts = sr, i
                for p in aus.encode(f):
                    out.mux(p)
            for p in aus.encode():
                out.mux(p)
    return path


def write_prores10_clip(path: Path, frames: np.ndarray, fps: Fraction) -> Path:
    """ProRes 422 HQ (10-bit) test clip with gradation finer than 8 bits: the top fifth of each
    frame (above the face) is a smooth sky, a gradient of 6 8-bit levels over the width that
    8 bits can only show as bands; the rest is the 8-bit picture."""
    h, w = frames.shape[1:3]
    sky_rows = h // 5
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    y = np.linspace(0.0, 1.0, sky_rows)[:, None, None]
    sky = (np.array([120.0, 150.0, 200.0]) + 6.0 * x + 2.0 * y) * 257.0
    with av.open(str(path), "w") as out:
        vs = out.add_stream("prores_ks", rate=Fraction(fps))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv422p10le"
        vs.options = {"profile": "3"}
        for rgb in frames:
            deep = rgb.astype(np.float64) * 257
            deep[:sky_rows] = sky
            deep = np.clip(np.round(deep), 0, 65535).astype(np.uint16)
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(deep), format="rgb48le")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def tone(seconds: float, sr: int, channels: int = 1, hz: float = 440.0) -> np.ndarray:
    n = int(round(seconds * sr))
    x = (0.3 * np.sin(2 * np.pi * hz * np.arange(n) / sr)).astype(np.float32)
    return np.repeat(x[None], channels, axis=0)


@dataclasses.dataclass
class Shot:
    project: Project
    tracking: object
    clip: Path


@pytest.fixture
def derived_shot(talk_b, tmp_path):
    """``derived_shot(n=24, fps=30000/1001, scale=0.5, audio_s=None, channels=1, loop=None, no_face=(), timecode=None)``."""
    tracking, source = talk_b
    counter = iter(range(1000))

    def make(n: int = 24, fps=Fraction(30000, 1001), scale: float = 0.5, audio_s: float | None = None,
             channels: int = 1, start: int = 40, no_face=(), sr: int = 44100, timecode: str | None = None,
             bt709: bool = False, prores10: bool = False, sar: Fraction | None = None, interlaced: str | None = None) -> Shot:
        k = next(counter)
        idx = (start + np.arange(n)) % len(source)
        w, h = int(round(tracking.width * scale)), int(round(tracking.height * scale))
        frames = np.stack([cv2.resize(source[i], (w, h), interpolation=cv2.INTER_AREA) for i in idx])
        audio = None if audio_s is None else tone(audio_s, sr, channels)
        if prores10:  # a 10-bit camera original (no audio)
            clip = write_prores10_clip(tmp_path / f"shot{k}.mov", frames, Fraction(fps))
        else:
            # stamped shots come as QuickTime (its timecode track also keeps the reel name; mp4's does not)
            clip = write_shot_clip(tmp_path / f"shot{k}.{'mov' if timecode else 'mp4'}", frames, Fraction(fps), audio, sr, timecode, bt709, sar)
        if interlaced:  # "tff" / "bff": the same pictures coded as interlaced H.264
            src, clip = clip, clip.with_name(f"shot{k}_{interlaced}.mp4")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:v", "libx264", "-flags", "+ildct+ilme",
                            "-x264-params", f"{interlaced}=1", "-c:a", "copy", str(clip)], check=True)
        project = Project.create(tmp_path / f"proj{k}", clip)
        t = scale_tracking(tracking, idx, scale, Fraction(fps), no_face)
        rel = "cache/track/tracking.npz"
        project.cache_dir("track")
        t.save(project.path(rel))
        project.record_stage("track", f"derived-{k}", {"tracking": rel})
        return Shot(project, t, clip)

    return make


class ShiftedCrops:
    """Test-double renderer: frame i's face is the real crop of frame i + ``offset`` (a different
    mouth), so the composite visibly changes the lower face. Records what it was asked."""

    def __init__(self, tracking, clip: Path, resolution: int = 128, offset: int = 7, preload: int | None = None) -> None:
        self.tracking, self.resolution, self.offset = tracking, resolution, offset
        with VideoReader(clip) as r:
            stop = r.n_frames if preload is None else min(preload, r.n_frames)
            self.crops = np.stack([extract_crop(rgb, tracking.crop[i], resolution) for i, rgb in r.iter_frames(0, stop)])
        self.calls: list[list[int]] = []
        self.controls: list[np.ndarray | None] = []

    def render_crops(self, indices, controls=None):
        idx = [int(i) for i in indices]
        self.calls.append(idx)
        self.controls.append(None if controls is None else np.array(controls))
        return self.crops[[(i + self.offset) % len(self.crops) for i in idx]]


class HearingCrops(ShiftedCrops):
    """Like ShiftedCrops, but audio-conditioned: takes ``mel`` windows like the neural renderer."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.mels: list[np.ndarray | None] = []

    def render_crops(self, indices, controls=None, mel=None):
        self.mels.append(mel)
        return super().render_crops(indices, controls)


@pytest.fixture
def shifted():
    return ShiftedCrops


@pytest.fixture
def hearing():
    return HearingCrops
