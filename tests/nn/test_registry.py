"""The models folder: what is registered, its fingerprints, defaults, removal, and the CLI."""

from __future__ import annotations

import json

import pytest

from dubstudio.core.errors import DubStudioError
from dubstudio.nn import registry


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("DUBSTUDIO_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


def _weights(path, content: bytes = b"weights"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_register_list_default_resolve_and_remove(models):
    clips = [{"name": "talk_a.mp4", "fingerprint": "ab" * 32}]
    a = registry.register("prior", _weights(registry.model_path("prior", "studio_a"), b"a"), steps=9000, trained_on=clips,
                          make_default=False)
    assert a.default  # the first of its kind is the default
    b = registry.register("prior", _weights(registry.model_path("prior"), b"bb"), steps=100)
    entries = {e.name: e for e in registry.list_models()}
    assert set(entries) == {"studio_a", "prior"} and entries["prior"].default and not entries["studio_a"].default
    assert entries["studio_a"].trained_on == clips and entries["studio_a"].steps == 9000 and entries["studio_a"].bytes == 1
    assert all(e.state == "ok" and len(e.sha256) == 64 for e in entries.values())
    manifest = json.loads((models / "manifest.json").read_text())
    assert {m["file"] for m in manifest["models"]} == {"prior/studio_a.pt", "prior/prior.pt"}
    assert registry.default_model("prior") == b.path() and registry.default_model("audio2expr") is None
    assert registry.resolve("prior", "default") == b.path() and registry.resolve("prior", "studio_a") == a.path()
    with pytest.raises(DubStudioError, match="neither a file nor a registered prior"):
        registry.resolve("prior", "nope")
    # a file changed or gone behind the registry's back is flagged, not trusted
    a.path().write_bytes(b"tampered")
    b.path().unlink()
    states = {e.name: e.state for e in registry.list_models()}
    assert states == {"studio_a": "changed", "prior": "missing"}
    assert registry.default_model("prior") is None
    # removing the default hands it on to the other model of its kind
    b.path().write_bytes(b"bb")
    gone = registry.remove("prior/prior")
    assert gone.name == "prior" and not b.path().exists()
    assert [e.name for e in registry.list_models() if e.default] == ["studio_a"]
    with pytest.raises(DubStudioError, match="no registered model"):
        registry.remove("prior/prior")


def test_only_files_in_the_models_folder_are_registered(models, tmp_path):
    with pytest.raises(DubStudioError, match="not in the models folder"):
        registry.register("prior", _weights(tmp_path / "elsewhere.pt"))
    with pytest.raises(DubStudioError, match="unknown model kind"):
        registry.model_path("vocoder")
    with pytest.raises(DubStudioError, match="letters, digits"):
        registry.model_path("prior", "../escape")


def test_the_dub_finds_the_registered_generic_audio_model(models, tmp_path, monkeypatch):
    from dubstudio.driving.a2e_generic import default_generic_path, find_generic, legacy_generic_path

    monkeypatch.setenv("DUBSTUDIO_HOME", str(tmp_path / "home"))
    assert find_generic() is None
    old = _weights(legacy_generic_path())  # trained by an earlier version: still found
    assert find_generic() == old
    new = _weights(default_generic_path())  # copied into the models folder by hand: found first
    assert default_generic_path().parent == models / "audio2expr" and find_generic() == new
    other = registry.register("audio2expr", _weights(registry.model_path("audio2expr", "studio")), make_default=True)
    assert find_generic() == other.path()  # the registered default wins


def test_models_cli_lists_and_removes(models, capsys):
    from dubstudio.cli import main

    assert main(["models", "list"]) == 0
    assert "no models in" in capsys.readouterr().out
    registry.register("audio2expr", _weights(registry.model_path("audio2expr")), steps=3,
                      trained_on=[{"name": "talk_b.mp4", "fingerprint": "f" * 64}])
    assert main(["models", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (m,) = out["models"]
    assert m["kind"] == "audio2expr" and m["default"] and m["trained_on"][0]["name"] == "talk_b.mp4" and m["state"] == "ok"
    assert main(["models", "remove", "audio2expr/generic"]) == 0
    assert "removed audio2expr/generic" in capsys.readouterr().out
    assert main(["models", "remove", "generic", "--json"]) == 2
    assert "no registered model" in capsys.readouterr().err
