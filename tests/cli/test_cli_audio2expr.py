"""`dubstudio audio2expr train|show` in-process on talk_b (tiny step count)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dubstudio.cli import main
from dubstudio.project.store import Project
from dubstudio.tracking.track import track

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def talk_b(media: Path, tmp_path_factory) -> Path:
    """talk_b tracked once per session (same shared folder as tests/driving reuses)."""
    torch.set_num_threads(1)
    clip = media / "talk_b.mp4"
    project = Project.create(tmp_path_factory.getbasetemp() / "shared_talk_b", clip)
    track(clip, project)
    return project.root


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_train_then_show(talk_b: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "generic.pt"
    rc = main(["audio2expr", "train", "--projects", str(talk_b), "--out", str(out), "--steps", "12", "--json"])
    assert rc == 0
    res = _last_json(capsys.readouterr().out)
    assert out.is_file() and res["steps"] == 12 and res["default_model"] is False
    assert res["clips"] and res["clips"][0]["frames"] == 200
    assert res["loss_first"] > 0
    rc = main(["audio2expr", "show", str(out), "--json"])
    assert rc == 0
    info = _last_json(capsys.readouterr().out)
    assert info["steps"] == 12 and len(info["clips"]) == 1 and info["controls"][0] == "jaw_open"


def test_show_missing_model_is_a_clear_error(tmp_path: Path, capsys) -> None:
    rc = main(["audio2expr", "show", str(tmp_path / "nope.pt")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "audio2expr train" in err and err.count("\n") == 1


def test_bad_steps_is_a_clear_error(talk_b: Path, tmp_path: Path, capsys) -> None:
    rc = main(["audio2expr", "train", "--projects", str(talk_b), "--out", str(tmp_path / "g.pt"), "--steps", "0"])
    assert rc == 2
    assert "--steps" in capsys.readouterr().err


def test_training_into_the_models_folder_registers_the_default(talk_b: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Without --out the model goes to the models folder, with a manifest entry that says what
    it was trained on; `dub --audio` then finds it (find_generic)."""
    from dubstudio.driving.a2e_generic import find_generic
    from dubstudio.nn import registry

    monkeypatch.setenv("DUBSTUDIO_MODELS", str(tmp_path / "models"))
    assert main(["audio2expr", "train", "--projects", str(talk_b), "--steps", "3", "--json"]) == 0
    res = _last_json(capsys.readouterr().out)
    assert res["default_model"] and res["registered"]
    (entry,) = registry.list_models()
    assert entry.kind == "audio2expr" and entry.default and entry.steps == 3 and entry.state == "ok"
    assert entry.trained_on == [{"name": "talk_b.mp4", "fingerprint": Project.open(talk_b).video_fingerprint}]
    assert find_generic() == entry.path() == Path(res["path"])
