"""`dubstudio export` and `dubstudio check-mark` end to end (subprocess), and their error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import pytest

from dubstudio.cli import main

pytestmark = pytest.mark.media

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def dubstudio(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dubstudio.cli", *map(str, args)], capture_output=True, text=True, timeout=300, env=ENV)


def last_json(stdout: str) -> dict:
    return json.loads([ln for ln in stdout.splitlines() if ln.strip()][-1])


def test_cli_export_copy_baseline_json_and_check_mark(derived_shot, media, tmp_path, capsys):
    shot = derived_shot(n=24, fps=Fraction(30000, 1001), scale=0.75, audio_s=0.5)
    out = tmp_path / "dub.mp4"
    r = dubstudio("export", "--project", shot.project.root, "-o", out, "--renderer", "copy", "--train-frames", "0:6",
                  "--audio", media / "speech_zh.wav", "--audio-offset", "-1", "--audio-policy", "trim",
                  "--threads", "1", "--verify", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    res = last_json(r.stdout)
    assert res["frames"] == 24 and res["fps"] == "30000/1001" and res["renderer"] == "copy-baseline"
    assert res["audio"]["kind"] == "file" and res["audio"]["skipped_start_s"] == 1.0 and res["audio"]["policy"] == "trim"
    assert res["verify"]["ok"], res["verify"]["problems"]
    assert res["verify"]["summary"]["video"]["frames"] == 24
    assert "Traceback" not in r.stderr
    r = dubstudio("check-mark", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    mark = last_json(r.stdout)
    assert mark["synthetic"] and mark["metadata_synthetic"] and mark["watermark"]["present"]
    assert mark["manifest"]["renderer"] == "copy-baseline" and mark["manifest"]["audio"]["source"] == "speech_zh.wav"
    capsys.readouterr()
    assert main(["check-mark", str(shot.clip), "--json"]) == 0  # in-process: the source carries no mark
    clean = last_json(capsys.readouterr().out)
    assert not clean["synthetic"] and not clean["watermark"]["present"]
    assert main(["check-mark", str(out), "--original-size", "384x384", "--json"]) == 0  # looked at as it is and at 384
    again = last_json(capsys.readouterr().out)["watermark"]
    assert again["present"] and again["size"] is None  # not scaled: found as it is
    assert main(["check-mark", str(out), "--original-size", "wide"]) == 2
    assert "give WxH" in capsys.readouterr().err


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _one_error_line(code: int, out: str, err: str, *words: str) -> str:
    assert code == 2, (code, out, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("dubstudio:")]
    assert len(lines) == 1 and lines[0].startswith("dubstudio: error: "), err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    assert "error" in last_json(out)
    return lines[0]


def test_cli_errors_say_what_to_do(derived_shot, media, tmp_path, capsys):
    shot = derived_shot(n=8, fps=Fraction(25), audio_s=0.3)
    p = shot.project.root
    # the neural renderer (default) needs an adaptation
    _one_error_line(*_run(capsys, "export", "--project", p, "-o", tmp_path / "a.mp4", "--json"), "dubstudio adapt", "--renderer copy")
    _one_error_line(*_run(capsys, "export", "--project", p, "-o", tmp_path / "a.mp4", "--renderer", "copy", "--json"), "--train-frames")
    _one_error_line(*_run(capsys, "export", "--project", p, "-o", tmp_path / "a.mp4", "--renderer", "copy", "--train-frames", "0:4",
                          "--audio", media / "speech_zh.wav", "--json"), "--audio-policy trim")
    _one_error_line(*_run(capsys, "export", "--project", tmp_path / "nope", "-o", tmp_path / "a.mp4", "--json"), "not found")
    assert not (tmp_path / "a.mp4").exists()


def test_an_export_never_writes_over_an_input_and_asks_before_replacing_a_file(derived_shot, media, tmp_path, capsys):
    """The shot's own video, and the audio it muxes, are never written over; an unrelated
    existing file only with --overwrite; an earlier export of this shot is re-exported in place."""
    shot = derived_shot(n=8, fps=Fraction(25), audio_s=0.3)
    p, clip = shot.project.root, shot.clip
    before = clip.read_bytes()
    copy = ["--renderer", "copy", "--train-frames", "0:4", "--threads", "1", "--json"]
    line = _one_error_line(*_run(capsys, "export", "--project", p, "-o", clip, *copy, "--overwrite"), "would destroy it")
    assert clip.name in line and "the shot's video" in line
    assert clip.read_bytes() == before  # not touched, even with --overwrite
    dialogue = tmp_path / "dialogue.mp4"  # the dubbed line, delivered as an mp4
    dialogue.write_bytes(before)
    line = _one_error_line(*_run(capsys, "export", "--project", p, "-o", dialogue, *copy, "--audio", dialogue, "--overwrite"),
                           "would destroy it")
    assert "the audio to mux" in line and dialogue.read_bytes() == before
    link = tmp_path / "linked.mp4"
    os.symlink(clip, link)  # another name for the same file
    _one_error_line(*_run(capsys, "export", "--project", p, "-o", link, *copy), "would destroy it")
    other = tmp_path / "someone_elses.mp4"
    other.write_bytes(b"not ours")
    _one_error_line(*_run(capsys, "export", "--project", p, "-o", other, *copy), "already exists", "--overwrite")
    assert other.read_bytes() == b"not ours"
    code, out, err = _run(capsys, "export", "--project", p, "-o", other, *copy, "--overwrite")
    assert code == 0, err[-2000:]
    assert other.read_bytes() != b"not ours"
    code, out, err = _run(capsys, "export", "--project", p, "-o", other, *copy)  # now an export of this shot: in place
    assert code == 0, err[-2000:]
    assert clip.read_bytes() == before
