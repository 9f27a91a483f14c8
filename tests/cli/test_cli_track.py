"""CLI smoke tests as subprocesses on real clips: help for every command, `track` with metrics,
overlay and caching, and one clear error line (exit 2, no traceback) for inputs a user can get wrong."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_helpers import write_clip

from dubstudio.cli import build_parser

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def dubstudio(*args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dubstudio.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=ENV,
    )


def _subcommands() -> list[str]:
    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(sub) == 1, "the parser should have exactly one set of subcommands"
    return sorted(sub[0].choices)


def _last_json(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, "no stdout"
    return json.loads(lines[-1])


def _assert_clean_error(r: subprocess.CompletedProcess, *must_mention: str, kind: str | None = None) -> str:
    """Exit 2, one `dubstudio: error:` line on stderr, no traceback; returns the message."""
    assert r.returncode == 2, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    assert "Traceback" not in r.stdout, r.stdout
    ours = [ln for ln in r.stderr.splitlines() if ln.startswith("dubstudio:")]
    assert len(ours) == 1, r.stderr
    msg = ours[0]
    assert msg.startswith("dubstudio: error: ") and len(msg) > len("dubstudio: error: ") + 20, msg
    for word in must_mention:
        assert word.lower() in msg.lower(), f"{word!r} not in {msg!r}"
    err = _last_json(r.stdout)  # every failing test here runs with --json
    assert set(err) >= {"error", "type"}
    assert err["error"] in msg
    if kind:
        assert err["type"] == kind, err
    return msg


# -- help ------------------------------------------------------------------------------------------


def test_subcommands_are_discovered():
    assert {"track", "info"} <= set(_subcommands())


def test_top_level_help_lists_every_subcommand():
    r = dubstudio("--help")
    assert r.returncode == 0, r.stderr
    assert "usage: dubstudio" in r.stdout
    for name in _subcommands():
        assert name in r.stdout, name
    assert r.stderr == ""


@pytest.mark.parametrize("command", _subcommands())
def test_subcommand_help(command: str):
    r = dubstudio(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: dubstudio {command}"), r.stdout[:200]
    assert "Traceback" not in r.stderr


def test_console_script_entry_point():
    exe = Path(sys.executable).with_name("dubstudio")
    if not exe.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not installed)")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, env=ENV)
    assert r.returncode == 0 and "usage: dubstudio" in r.stdout, r.stderr


def test_version():
    from dubstudio import __version__

    r = dubstudio("--version")
    assert r.returncode == 0
    assert __version__ in r.stdout


# -- track on a real clip ---------------------------------------------------------------------------


@pytest.mark.media
def test_track_json_overlay_and_cache(media: Path, tmp_path: Path):
    video = media / "talk_b.mp4"
    project = tmp_path / "proj"
    grid = tmp_path / "grid.png"

    r = dubstudio("track", video, "--project", project, "--json", "--overlay", grid)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    m = _last_json(r.stdout)
    assert m["cached"] is False
    assert m["frames"] == 200
    assert m["frames_with_face"] == 200
    assert m["landmark_rms_iod"] <= 0.03
    assert m["jaw_lip_corr"] >= 0.9
    assert m["crop_size_cv"] <= 0.02
    assert m["tracking_fps"] > 0
    assert Path(m["project"]) == project
    assert (project / "project.json").is_file()

    assert Path(m["overlay"]) == grid and grid.is_file()
    img = cv2.imread(str(grid))
    assert img is not None, "overlay PNG does not decode"
    assert img.ndim == 3 and min(img.shape[:2]) >= 200
    assert img.std() > 10, "overlay is (nearly) flat"

    tracking = project / "cache" / "track" / "tracking.npz"
    stamp = tracking.stat().st_mtime_ns, tracking.stat().st_ino
    r2 = dubstudio("track", video, "--project", project, "--json")
    assert r2.returncode == 0, r2.stderr
    m2 = _last_json(r2.stdout)
    assert m2["cached"] is True
    for k in ("frames", "frames_with_face", "landmark_rms_iod", "jaw_lip_corr", "crop_size_cv"):
        assert m2[k] == m[k], k
    # served from the cache: the tracking file was neither rewritten nor replaced (a timing ratio
    # here failed on a loaded CI machine: process start-up alone is half of a 200-frame track)
    assert (tracking.stat().st_mtime_ns, tracking.stat().st_ino) == stamp


@pytest.mark.media
def test_track_human_output(media: Path, tmp_path: Path):
    """Without --json: a readable summary on stdout, no JSON; -q keeps stderr free of bars."""
    clip = tmp_path / "short.mp4"
    from dubstudio.io.video import VideoReader

    with VideoReader(media / "talk_b.mp4") as rd:
        write_clip(clip, [rgb for _, rgb in rd.iter_frames(0, 20)], fps=25)
    r = dubstudio("track", clip, "--project", tmp_path / "p", "-q")
    assert r.returncode == 0, r.stderr
    assert "tracked 20/20 frames" in r.stdout
    assert "{" not in r.stdout
    assert "landmarks:" not in r.stderr  # no tqdm bar with -q


# -- inputs a user can get wrong -------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    r = dubstudio("track", tmp_path / "nope.mp4", "--project", tmp_path / "p", "--json", "-q")
    _assert_clean_error(r, "nope.mp4", "not found")


def test_text_file_renamed_mp4(tmp_path: Path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    r = dubstudio("track", bad, "--project", tmp_path / "p", "--json", "-q")
    _assert_clean_error(r, "notes.mp4", kind="MediaError")


@pytest.mark.media
def test_truncated_video(media: Path, tmp_path: Path):
    data = (media / "talk_b.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    r = dubstudio("track", cut, "--project", tmp_path / "p", "--json", "-q")
    msg = _assert_clean_error(r, "cut.mp4", kind="MediaError")
    assert any(w in msg.lower() for w in ("incomplete", "truncated", "damaged", "ends early")), msg


@pytest.mark.media
def test_audio_only_file(media: Path, tmp_path: Path):
    r = dubstudio("track", media / "speech_de.wav", "--project", tmp_path / "p", "--json", "-q")
    msg = _assert_clean_error(r, "speech_de.wav", kind="MediaError")
    assert "video" in msg.lower()


def test_clip_without_a_face(tmp_path: Path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    frames = []
    for k in range(30):
        noise = cv2.GaussianBlur(rng.random((128, 128, 3)).astype(np.float32), (0, 0), 8)
        base = np.stack([xx, yy, 0.5 + 0.5 * np.sin(xx * 6 + k / 5)], axis=2)
        frames.append(np.clip((0.7 * base + 0.3 * noise / noise.max()) * 255, 0, 255).astype(np.uint8))
    clip = write_clip(tmp_path / "noface.mp4", frames, fps=25)
    r = dubstudio("track", clip, "--project", tmp_path / "p", "--json", "-q")
    _assert_clean_error(r, "no face", kind="NoFaceError")
