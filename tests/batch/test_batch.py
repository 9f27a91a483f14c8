"""`dubstudio batch LIST.csv`: a shot list is checked whole before any work, shots of one actor
share the first one's adaptation, and a shot that fails does not stop the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dubstudio.app.batch import read_shot_list
from dubstudio.core.errors import DubStudioError


def _files(folder: Path, *names: str) -> None:
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        (folder / n).write_bytes(b"x")


def test_a_good_list_reads_with_relative_paths_a_bom_and_blank_lines(tmp_path):
    _files(tmp_path, "reel/sh010.mov", "reel/sh020.mov", "dub/a.wav", "dub/b.wav", "dubbers/take2.mp4")
    lst = tmp_path / "shots.csv"
    lst.write_text("\ufeffShot,Audio,dubber,actor,offset,output,audio_policy\n"
                   "reel/sh010.mov,dub/a.wav,,anna,0.5,out/sh010.mov,\n"
                   "\n"
                   "reel/sh020.mov,,dubbers/take2.mp4,anna,,,trim\n", encoding="utf-8")
    a, b = read_shot_list(lst)
    assert (a.line, a.shot, a.audio, a.dubber, a.actor, a.offset_s, a.output, a.audio_policy) == (
        2, tmp_path / "reel/sh010.mov", tmp_path / "dub/a.wav", None, "anna", 0.5, tmp_path / "out/sh010.mov", None)
    assert (b.line, b.dubber, b.audio, b.offset_s, b.output, b.audio_policy) == (4, tmp_path / "dubbers/take2.mp4", None, 0.0, None, "trim")
    assert (a.text, a.language, b.text) == (None, "en", None)
    # the line's script and its language, quoted where it holds commas
    lst.write_text('shot,audio,text,language\nreel/sh010.mov,dub/a.wav,"Guten Morgen, Ben.",de\nreel/sh020.mov,dub/b.wav,Hello.,\n',
                   encoding="utf-8")
    a, b = read_shot_list(lst)
    assert (a.text, a.language, b.text, b.language) == ("Guten Morgen, Ben.", "de", "Hello.", "en")


def test_every_problem_of_a_bad_list_is_named_with_its_line_before_any_work(tmp_path):
    _files(tmp_path, "a.mov", "b.mov", "a.wav", "d.mp4")
    lst = tmp_path / "shots.csv"
    lst.write_text("shot,audio,dubber,offset,output,audio_policy\n"
                   "a.mov,missing.wav,,,,\n"          # 2: audio not found
                   "b.mov,a.wav,d.mp4,,,\n"           # 3: both audio and dubber
                   "a.mov,a.wav,,soon,x.avi,loud\n"   # 4: offset, output suffix, policy
                   "gone.mov,a.wav,,,o.mp4,\n"        # 5: shot not found
                   "b.mov,a.wav,,,o.mp4,\n", encoding="utf-8")  # 6: same output as line 5
    with pytest.raises(DubStudioError) as e:
        read_shot_list(lst)
    msg = str(e.value)
    for part in ("line 2: audio missing.wav not found", "line 3: give the new dialogue", "line 4: offset 'soon'",
                 "line 4: output x.avi must end in", "line 4: audio_policy 'loud'", "line 5: shot gone.mov not found",
                 "line 6: output o.mp4 is also line 5's"):
        assert part in msg, (part, msg)
    lst.write_text("shot,audio,dubber,text\na.mov,,d.mp4,Hello.\nb.mov,a.wav,,...\n", encoding="utf-8")
    with pytest.raises(DubStudioError) as e:
        read_shot_list(lst)
    assert "line 2: text 'Hello.' goes with audio" in str(e.value) and "line 3: text '...' has no words" in str(e.value)
    lst.write_text("shot,audio,speaker\na.mov,a.wav,bob\n", encoding="utf-8")
    with pytest.raises(DubStudioError, match="unknown column.*speaker"):
        read_shot_list(lst)
    lst.write_text("video,audio\na.mov,a.wav\n", encoding="utf-8")
    with pytest.raises(DubStudioError, match="must name the columns"):
        read_shot_list(lst)
    lst.write_text("shot,audio\n", encoding="utf-8")
    with pytest.raises(DubStudioError, match="lists no shots"):
        read_shot_list(lst)


def test_check_reports_every_output_that_would_destroy_or_replace_a_file(tmp_path, capsys):
    """A row exporting onto a file the list reads (its own shot, another row's dialogue), two rows
    exporting to one file by default, an unrelated existing output: all named by --check, and
    the batch refuses before any work; --overwrite allows replacing the unrelated file only."""
    from dubstudio.cli import main

    _files(tmp_path, "a/sh010.mov", "b/sh010.mov", "sh020.mov", "sh030.mov", "dub/x.wav", "dub/y.mp4", "out/sh030_dubbed.mp4")
    lst = tmp_path / "shots.csv"
    lst.write_text("shot,audio,output\n"
                   "sh020.mov,dub/x.wav,sh020.mov\n"      # 2: over its own shot
                   "sh030.mov,dub/x.wav,dub/y.mp4\n"      # 3: over line 4's dialogue
                   "sh020.mov,dub/y.mp4,out/z.mp4\n"      # 4
                   "a/sh010.mov,dub/x.wav,\n"             # 5: out/sh010_dubbed.mp4
                   "b/sh010.mov,dub/x.wav,\n"             # 6: the same default name
                   "sh030.mov,dub/x.wav,\n", encoding="utf-8")  # 7: out/sh030_dubbed.mp4 exists, not an export
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.m*")}
    assert main(["batch", str(lst), "--out-dir", str(tmp_path / "out"), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    for part in ("line 2: output sh020.mov is line 2's shot: exporting there would destroy it",
                 "line 3: output y.mp4 is line 4's audio", "lines 5 and 6 would both export to",
                 "line 7: ", "sh030_dubbed.mp4 already exists and is not an export of sh030.mov"):
        assert part in err, (part, err)
    assert main(["batch", str(lst), "--out-dir", str(tmp_path / "out"), "--steps", "1"]) == 2  # refused before any work
    assert "would destroy it" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.m*")} == before and not list(tmp_path.rglob("*.dubstudio"))
    assert main(["batch", str(lst), "--out-dir", str(tmp_path / "out"), "--check", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "line 7" not in err and "line 2" in err  # --overwrite replaces unrelated files, never an input


@pytest.mark.media
def test_a_batch_dubs_an_actors_shots_from_the_first_and_goes_on_past_a_failure(media: Path, tmp_path: Path) -> None:
    for name, start in (("sh010", 0), ("sh020", 2), ("sh030", 4)):
        subprocess.run(["ffmpeg", "-v", "error", "-ss", str(start), "-i", str(media / "talk_b.mp4"), "-t", "2", "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", str(tmp_path / f"{name}.mp4")], check=True, timeout=120)
    zh = media / "speech_zh.wav"  # 8 s of Mandarin on 2 s shots
    lst = tmp_path / "shots.csv"
    lst.write_text("shot,audio,actor,audio_policy\n"
                   f"sh010.mp4,{zh},katie,trim\n"
                   f"sh020.mp4,{zh},katie,trim\n"
                   f"sh030.mp4,{zh},katie,error\n", encoding="utf-8")  # too long for its shot: refused
    env = dict(os.environ, DUBSTUDIO_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "batch", str(lst), "--steps", "2", "--from-shot-steps", "1",
                        "--out-dir", str(tmp_path / "out"), "--guide-track", "--json", "-q"], capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 1, r.stderr[-2000:]  # one shot failed
    res = json.loads(r.stdout.strip().splitlines()[-1])
    first, second, third = res["rows"]
    assert first["ok"] and first["from_shot"] is None and first["adapt_steps"] == 2
    assert second["ok"] and second["adapt_steps"] == 1
    projects = tmp_path / "home" / "projects"  # each shot's project is in the projects folder, none beside the shots
    assert Path(second["from_shot"]).resolve().is_relative_to(projects.resolve()) and "sh010-" in second["from_shot"]
    assert not list(tmp_path.glob("*.dubstudio"))
    assert not third["ok"] and "past the end of the shot" in third["error"]
    assert (tmp_path / "out" / "sh010_dubbed.mp4").is_file() and (tmp_path / "out" / "sh020_dubbed.mp4").is_file()
    from dubstudio.export.verify import summarize

    assert len(summarize(tmp_path / "out" / "sh020_dubbed.mp4")["audio_tracks"]) == 2  # --guide-track reaches every shot
    assert res["failed"] == 1 and not (tmp_path / "out" / "sh030_dubbed.mp4").exists()
