"""Bad and unusual inputs from the audit (issue 23), as a new user gives them to the CLI: each
ends in one clear line on stderr (exit status 2) and loses nothing, or simply works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dubstudio.cli import main
from dubstudio.project.store import Project

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def dubstudio(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dubstudio.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env or ENV, errors="backslashreplace")


def one_error_line(r: subprocess.CompletedProcess, *words: str) -> str:
    """The run failed with exactly one line on stderr, naming ``words``."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("dubstudio"), r.stderr[-3000:]
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def short_clip(media, tmp_path_factory) -> Path:
    """The first second of talk_a (a face, its own sound)."""
    out = tmp_path_factory.mktemp("clips") / "short.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media / "talk_a.mp4"), "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:a", "aac", str(out)], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def tracked(short_clip, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tracked") / "p"
    r = dubstudio("track", short_clip, "--project", root, "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    return root


# -- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset, words", [("nan", ("not a number of seconds",)), ("-1e9", ("more than a day",)),
                                           ("inf", ("not a number",)), ("soon", ("neither seconds nor 'tc'",))])
def test_a_bad_offset_is_one_line(offset, words, tmp_path):
    one_error_line(dubstudio("dub", "--project", tmp_path, "--audio", tmp_path / "x.wav", "--offset", offset), "--offset", *words)


def test_a_negative_offset_in_scientific_notation_is_read_as_a_number(capsys, tmp_path):
    assert main(["dub", "--project", str(tmp_path / "none"), "--audio", str(tmp_path / "x.wav"), "--offset", "-2.5e1"]) == 2
    err = capsys.readouterr().err
    assert "expected one argument" not in err and "dubbed audio not found" in err  # parsed; the missing file is the problem


def test_a_missing_argument_is_one_line():
    one_error_line(dubstudio("export", "--project", "x"), "required", "-o/--output", "--help")


# -- project.json ---------------------------------------------------------------------------------


@pytest.mark.parametrize("damage, where", [
    (lambda d: d.update(stages="oops"), "$.stages"),
    (lambda d: d["stages"].update(track="a string"), "$.stages.track"),
    (lambda d: d["video"].update(path=5), "$.video.path"),
    (lambda d: d.update(stages=None), "$.stages"),
    (lambda d: d["stages"].update(track={"key": 1}), "$.stages.track.key"),
    (lambda d: d.update(dub_audio=[1]), "$.dub_audio"),
])
def test_a_project_file_with_wrong_types_says_what_is_wrong_where(damage, where, tmp_path, make_clip):
    import numpy as np

    clip = make_clip("c.mp4", [np.zeros((32, 32, 3), np.uint8)] * 2)
    p = Project.create(tmp_path / "p", clip)
    d = json.loads((p.root / "project.json").read_text())
    damage(d)
    (p.root / "project.json").write_text(json.dumps(d))
    line = one_error_line(dubstudio("export", "--project", p.root, "-o", tmp_path / "o.mp4"), "is damaged", where)
    assert "Traceback" not in line


# -- file names, folders, moved media --------------------------------------------------------------


@pytest.mark.media
def test_a_file_name_that_is_not_utf8_works(short_clip, tmp_path):
    name = os.fsdecode(b"caf\xe9.mp4")
    clip = tmp_path / name
    shutil.copy(short_clip, clip)
    env = {**ENV, "DUBSTUDIO_HOME": str(tmp_path / "home")}
    r = dubstudio("track", clip, "-q", "--json", env=env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    project = Project.open(json.loads(r.stdout.strip().splitlines()[-1])["project"])
    assert project.video_path == clip and project.check_video() == clip
    assert dubstudio("info", clip, env=env).returncode == 0


@pytest.mark.media
def test_a_moved_video_is_relinked_by_a_command_the_message_names(tracked, short_clip, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(tracked, root)
    moved = tmp_path / "media" / "renamed.mp4"
    moved.parent.mkdir()
    gone = tmp_path / "was.mp4"
    shutil.copy(short_clip, gone)
    Project.open(root).relink(gone)
    gone.rename(moved)
    line = one_error_line(dubstudio("export", "--project", root, "-o", tmp_path / "o.mp4", "--renderer", "copy",
                                    "--train-frames", "0:5"), "is missing", "dubstudio relink --project")
    assert str(root) in line
    other = tmp_path / "other.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(short_clip), "-t", "0.5", "-c", "copy", str(other)], check=True)
    one_error_line(dubstudio("relink", "--project", root, other), "is not this project's video")
    r = dubstudio("relink", "--project", root, moved)
    assert r.returncode == 0 and "now reads" in r.stdout, r.stderr
    assert Project.open(root).check_video() == moved


# -- media ----------------------------------------------------------------------------------------


@pytest.mark.media
def test_a_cut_off_dialogue_is_refused_like_a_cut_off_video(tracked, media, tmp_path):
    wav = tmp_path / "line.wav"
    wav.write_bytes((media / "speech_de.wav").read_bytes()[:300_000])  # an interrupted copy
    one_error_line(dubstudio("dub", "--project", tracked, "--audio", wav), "line.wav is incomplete", "copy or export it again")
    mp4 = tmp_path / "line.mp4"
    mp4.write_bytes((media / "talk_a.mp4").read_bytes()[:200_000])
    one_error_line(dubstudio("dub", "--project", tracked, "--audio", mp4), "line.mp4 is incomplete")
    assert not (tracked / "edits" / "curves.json").exists()  # nothing driven


@pytest.mark.media
def test_a_variable_frame_rate_clip_is_never_retimed(short_clip, media, tmp_path):
    vfr = tmp_path / "phone.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media / "talk_a.mp4"), "-vf", "select='not(between(n,20,35))'",
                    "-fps_mode", "vfr", "-c:a", "copy", str(vfr)], check=True, timeout=120)
    r = dubstudio("info", vfr, "--json")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["variable_frame_rate"] and info["timing"]["missing_frames"] == 16 and info["timing"]["nominal_fps"] == "25/1"
    line = one_error_line(dubstudio("track", vfr, "--project", tmp_path / "p"), "variable frame rate", "16 frame(s) missing",
                          "-fps_mode cfr -r 25")
    # the copy the message suggests keeps every frame at its time: frame 36 plays at 1.44 s, in sync
    cmd = line[line.index("`") + 1:line.rindex("`")].split()
    subprocess.run([cmd[0], "-v", "error", *cmd[1:]], check=True, timeout=120, cwd=tmp_path)
    from dubstudio.io.video import VideoReader

    with VideoReader(tmp_path / "phone_cfr.mp4") as cfr:
        assert cfr.irregular is None and cfr.n_frames == 125 and float(cfr.time_of(36)) == pytest.approx(1.44)
    assert not json.loads(dubstudio("info", media / "talk_a.mp4", "--json").stdout.strip().splitlines()[-1])["variable_frame_rate"]


@pytest.mark.media
def test_an_error_after_tracking_is_still_one_line(short_clip, media, tmp_path):
    """mediapipe's native start-up lines are dropped: the error is the only line."""
    r = dubstudio("run", short_clip, "--project", tmp_path / "p", "--audio", media / "speech_de.wav", "--audio-policy", "error", "-q")
    one_error_line(r, "past the end of the shot")


# -- checkpoints ----------------------------------------------------------------------------------


def test_a_file_with_python_objects_is_not_a_model(tmp_path, capsys):
    import torch

    from dubstudio.nn import checkpoint

    evil = tmp_path / "prior.pt"
    torch.save({"format": 1, "payload": Path("/etc/passwd")}, evil)  # a class: needs full unpickling
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load(evil)
    msg = str(e.value)
    assert "is not a DubStudio model" in msg and "nothing in it ran" in msg and "weights_only" not in msg
