"""The built-in sample clip: streams, frame count, real speech, a real (rigid) camera move, determinism."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dubstudio.core.errors import DubStudioError
from dubstudio.app.sample import SAMPLE_NAME, build_sample, camera_matrix, default_sample_path

SECONDS, FPS = 2, 25
N_FRAMES = SECONDS * FPS


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return build_sample(tmp_path_factory.mktemp("sample"), seconds=SECONDS, fps=FPS)


@pytest.fixture(scope="module")
def decoded(clip):
    with av.open(str(clip)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        vs, as_ = c.streams.video[0], c.streams.audio[0]
        info = {
            "video_codec": vs.codec_context.name,
            "pix_fmt": vs.codec_context.pix_fmt,
            "size": (vs.codec_context.width, vs.codec_context.height),
            "rate": vs.average_rate,
            "audio_codec": as_.codec_context.name,
            "sample_rate": as_.codec_context.sample_rate,
        }
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(clip)) as c:
        audio = np.concatenate([f.to_ndarray().astype(np.float32).reshape(-1) for f in c.decode(audio=0)])
    return info, frames, audio


def test_name_and_default_location(clip, monkeypatch, tmp_path):
    assert clip.name == SAMPLE_NAME == "sample_astronaut.mp4"
    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path))
    assert default_sample_path() == tmp_path / "sample" / SAMPLE_NAME


def test_streams_and_frames(decoded):
    info, frames, _ = decoded
    assert info["video_codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["size"] == (512, 512)
    assert info["rate"] == FPS
    assert info["audio_codec"] == "aac" and info["sample_rate"] == 48_000
    assert len(frames) == N_FRAMES


def test_ffprobe_agrees(clip):
    """An independent reader (ffprobe, when installed) sees the same clip."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed (installer/install.sh --dev installs ffmpeg)")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(clip)],
        capture_output=True, text=True, check=True,
    ).stdout
    streams = json.loads(out)["streams"]
    kinds = sorted(s["codec_type"] for s in streams)
    assert kinds == ["audio", "video"]
    v = next(s for s in streams if s["codec_type"] == "video")
    a = next(s for s in streams if s["codec_type"] == "audio")
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert int(v["nb_read_frames"]) == N_FRAMES and v["r_frame_rate"] == f"{FPS}/1"
    assert a["codec_name"] == "aac" and int(a["sample_rate"]) == 48_000
    assert abs(float(a["duration"]) - SECONDS) < 0.05


def test_audio_is_speech_not_silence(decoded):
    _, _, audio = decoded
    assert abs(len(audio) / 48_000 - SECONDS) < 0.05
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 0.02, f"audio is (nearly) silent: RMS {rms:.4f}"
    assert np.abs(audio).max() <= 1.0


def test_first_frame_is_the_astronaut(decoded):
    from skimage import data

    _, frames, _ = decoded
    ref = data.astronaut().astype(np.float64).ravel()
    first = frames[0].astype(np.float64).ravel()
    corr = np.corrcoef(ref, first)[0, 1]
    assert corr > 0.98, f"first frame does not match the astronaut image (r={corr:.3f})"


def test_camera_really_moves(decoded):
    _, frames, _ = decoded
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    diffs = [float(np.abs(b - a).mean()) for a, b in zip(gray, gray[1:])]
    assert min(diffs) > 0.5, f"some consecutive frames are (nearly) identical: min diff {min(diffs):.2f}"


def test_motion_is_the_rigid_camera_move(decoded):
    """Frame 0 -> frame k is the similarity transform the sample applied (roll and zoom), as a tracker sees it."""
    _, frames, _ = decoded
    k = 12  # u = 12/49 ~ 0.245: roll ~ +2 degrees, zoom ~ 1.01
    g0, gk = (cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in (0, k))
    orb = cv2.ORB_create(2000)
    k0, d0 = orb.detectAndCompute(g0, None)
    kk, dk = orb.detectAndCompute(gk, None)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d0, dk)
    src = np.float32([k0[m.queryIdx].pt for m in matches])
    dst = np.float32([kk[m.trainIdx].pt for m in matches])
    est, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.5)
    assert est is not None and int(inliers.sum()) > 100
    truth = camera_matrix(k / (N_FRAMES - 1), 512)

    def angle_scale(m):
        return math.degrees(math.atan2(m[0, 1], m[0, 0])), math.hypot(m[0, 0], m[1, 0])

    (a_est, s_est), (a_true, s_true) = angle_scale(est), angle_scale(truth)
    assert abs(a_true) > 1.5
    assert abs(a_est - a_true) < 0.3, (a_est, a_true)
    assert abs(s_est - s_true) < 0.01, (s_est, s_true)
    # and it maps the face centre to where the sample put it (sub-pixel-ish)
    c = np.array([225.0, 125.0, 1.0])
    assert np.linalg.norm(est @ c - truth @ c) < 1.5


def test_reused_unless_forced(clip):
    before = clip.stat().st_mtime_ns
    assert build_sample(clip.parent, seconds=SECONDS, fps=FPS) == clip
    assert clip.stat().st_mtime_ns == before


def test_deterministic(clip, tmp_path):
    again = build_sample(tmp_path, seconds=SECONDS, fps=FPS)
    assert again.read_bytes() == clip.read_bytes()


def test_missing_espeak_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr("dubstudio.app.sample.shutil.which", lambda *_a, **_k: None)
    with pytest.raises(DubStudioError, match=r"espeak-ng.*install"):
        build_sample(tmp_path, seconds=1)
    assert not list(tmp_path.glob("*.mp4"))
