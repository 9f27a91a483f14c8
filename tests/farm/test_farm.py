"""A shot list as an Open Job Description job bundle: the steps chain as batch does, openjd-model
validates it, the OpenJD command line accepts it, and farm tasks refuse a wrong line or stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dubstudio.app.farm import SubmitRequest, TaskRequest, submit_job, task_request
from dubstudio.core.errors import DubStudioError
from dubstudio.farm.openjd import FarmSettings, FarmShot, job_template, parameter_values, read_bundle, steps_in_order, validate


def _shot_list(tmp_path: Path) -> Path:
    for n in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        (tmp_path / n).write_bytes(b"not read by submit")
    sf.write(tmp_path / "line.wav", np.zeros(4800, np.float32), 48000)
    p = tmp_path / "shots.csv"
    p.write_text("shot,audio,actor,output\n"
                 "a.mp4,line.wav,anna,out/a.mov\n"
                 "b.mp4,line.wav,ben,out/b.mov\n"
                 "c.mp4,line.wav,anna,out/c.mov\n"
                 "d.mp4,line.wav,,out/d.mov\n")
    return p


def test_the_template_chains_each_actors_shots_from_the_first():
    shots = [FarmShot(2, "a", "anna", True), FarmShot(3, "b", "ben", True), FarmShot(4, "c", "anna", False), FarmShot(5, "d", "", False)]
    t = job_template("job", shots, FarmSettings("python", 100, 50, "full"))
    values = parameter_values(t, Path("/shared/shots.csv"), Path("/shared/projects"))
    validate(t, values)
    assert steps_in_order(t) == [["Track"], ["Adapt", "Dub"], ["AdaptFromShot"], ["Export"]]
    lines = {s["name"]: s["parameterSpace"]["taskParameterDefinitions"][0]["range"] for s in t["steps"]}
    assert lines == {"Track": [2, 3, 4, 5], "Adapt": [2, 3, 5], "AdaptFromShot": [4], "Dub": [2, 3, 4, 5], "Export": [2, 3, 4, 5]}
    # one actor per shot: no AdaptFromShot step at all
    solo = job_template("job", shots[:2], FarmSettings("python", 100, 50, "full"))
    assert [s["name"] for s in solo["steps"]] == ["Track", "Adapt", "Dub", "Export"]
    # openjd-model's own check refuses a broken template
    broken = dict(t, steps=t["steps"] + [{"name": "Broken", "script": {}}])
    with pytest.raises(ValueError, match="actions"):
        validate(broken, values)
    with pytest.raises(ValueError, match="ShotList"):
        validate(t, {k: v for k, v in values.items() if k != "ShotList"})


def test_submit_writes_a_bundle_the_openjd_cli_accepts(tmp_path: Path):
    shot_list = _shot_list(tmp_path)
    res = submit_job(SubmitRequest(shot_list, tmp_path / "bundle", steps=30, from_shot_steps=10))
    assert res["shots"] == 4 and res["actors"] == 2 and res["tasks"] == 4 + 3 + 1 + 4 + 4
    template, values = read_bundle(tmp_path / "bundle")
    assert values["ShotList"] == str(shot_list.resolve()) and values["ProjectsDir"] == str(tmp_path.resolve() / "projects")
    assert values["Steps"] == "30" and values["FromShotSteps"] == "10" and values["Python"] == sys.executable
    openjd = Path(sys.executable).with_name("openjd")
    got = subprocess.run([str(openjd), "check", str(tmp_path / "bundle" / "template.yaml")], capture_output=True, text=True)
    assert got.returncode == 0 and "passes validation" in got.stdout, got.stdout + got.stderr


def test_a_task_is_the_line_batch_would_run(tmp_path: Path):
    shot_list = _shot_list(tmp_path)
    base = dict(shot_list=shot_list, projects=tmp_path / "projects", steps=40, from_shot_steps=12)
    first = task_request(TaskRequest(line=2, stage="adapt", **base))
    later = task_request(TaskRequest(line=4, stage="adapt", **base))
    alone = task_request(TaskRequest(line=5, stage="adapt", **base))
    assert first.from_shot is None and first.steps == 40 and first.project.parent == tmp_path / "projects"
    assert later.from_shot == first.project and later.steps == 12 and later.prior is None
    assert alone.from_shot is None and alone.output == (tmp_path / "out" / "d.mov").resolve()
    with pytest.raises(DubStudioError, match="has no shot on line 9"):
        task_request(TaskRequest(line=9, stage="dub", **base))
    with pytest.raises(DubStudioError, match="--stage must be one of"):
        task_request(TaskRequest(line=2, stage="render", **base))
