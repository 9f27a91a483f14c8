"""`dubstudio run SHOT --audio FILE`: the whole dub headless (track -> adapt -> drive -> export) on a
2 s cut of a real clip, with a tiny adaptation; the export is checked with ffprobe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.media


def test_run_with_new_audio_exports_a_verified_dub(media: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media / "talk_b.mp4"), "-t", "2", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(shot)], check=True, timeout=120)
    out = tmp_path / "dubbed.mp4"
    env = dict(os.environ, DUBSTUDIO_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "run", str(shot), "--audio", str(media / "speech_zh.wav"),
                        "--audio-policy", "trim", "--steps", "3", "--project", str(tmp_path / "proj"), "-o", str(out),
                        "--json", "-q"], capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["adapt"]["steps"] == 3 and res["dub"]["driven_frames"] == 50
    ex = res["export"]
    assert ex["frames"] == 50 and ex["verify"]["ok"], ex["verify"]
    assert ex["audio"]["kind"] == "dubbed" and ex["audio"]["trimmed_end_s"] > 5  # 8 s of Mandarin on a 2 s shot
    assert out.is_file()
    # nothing given twice and nothing missing: one of --audio / --dubber, and it must exist
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "run", str(shot), "--audio", str(tmp_path / "nope.wav"),
                        "--project", str(tmp_path / "proj")], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and "nope.wav not found" in r.stderr
    # dialogue longer than the shot under the default policy (pad): refused before any adaptation
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "run", str(shot), "--audio", str(media / "speech_zh.wav"),
                        "--steps", "3", "--project", str(tmp_path / "proj2"), "-o", str(tmp_path / "b.mp4"), "-q"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 2 and "past the end of the shot" in r.stderr and "--audio-policy trim" in r.stderr
    assert not list((tmp_path / "proj2").rglob("actor_*.pt")) and not (tmp_path / "b.mp4").exists()
    # a further shot of the same actor starts from this one's adaptation
    shot_b = tmp_path / "shot_b.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "2", "-i", str(media / "talk_b.mp4"), "-t", "2", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(shot_b)], check=True, timeout=120)
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "run", str(shot_b), "--audio", str(media / "speech_zh.wav"),
                        "--audio-policy", "trim", "--steps", "2", "--from-shot", str(tmp_path / "proj"),
                        "--project", str(tmp_path / "proj_b"), "-o", str(tmp_path / "b_dubbed.mp4"), "--json", "-q"],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    res_b = json.loads(r.stdout.strip().splitlines()[-1])
    assert res_b["adapt"]["from_shot"] == res["adapt"]["path"] and res_b["export"]["verify"]["ok"]
    # a shot that was never adapted cannot be started from: refused before tracking
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "run", str(shot_b), "--audio", str(media / "speech_zh.wav"),
                        "--from-shot", str(tmp_path / "proj2"), "--project", str(tmp_path / "proj_c")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and "has no adaptation yet" in r.stderr, r.stderr[-1000:]
    assert not (tmp_path / "proj_c").exists()
    # an audio model that is not there: refused before tracking
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "run", str(shot_b), "--audio", str(media / "speech_zh.wav"),
                        "--audio-model", str(tmp_path / "nope.pt"), "--project", str(tmp_path / "proj_d")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and "audio model" in r.stderr and "nope.pt not found" in r.stderr, r.stderr[-1000:]
    assert not (tmp_path / "proj_d").exists()
