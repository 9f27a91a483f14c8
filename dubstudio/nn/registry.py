"""The models a user trains or installs: priors and generic audio-to-expression models.

They live in the installation's ``models/`` folder (``core.paths.models_dir``; ``DUBSTUDIO_MODELS``
moves it, e.g. to a shared studio drive), one sub-folder per kind, with ``manifest.json`` beside
them: for each model its file, its sha256, its size, how many steps it trained, what it was trained
on (each clip's name and content fingerprint) and when. Git ignores them (``models/.gitignore``):
a model trained on a studio's footage stays on its machines. (The one model that ships, the
built-in audio model trained on synthesised speech, lives in ``resources/models``.)

A kind's *default* model is what a job uses when none is named (``dub --audio`` picks up the
default generic audio model; ``adapt --prior default`` the default prior). Training into the
registry makes the new model the default of its kind; ``dubstudio models list|remove`` show and
delete them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dubstudio import __version__
from dubstudio.core.errors import DubStudioError
from dubstudio.core.paths import models_dir
from dubstudio.io.atomic import atomic_write_json, file_fingerprint

MANIFEST = "manifest.json"
KINDS = {
    "audio2expr": "generic audio-to-expression model (dub --audio)",
    "prior": "person-generic renderer prior (adapt --prior)",
}
DEFAULT_NAMES = {"audio2expr": "generic", "prior": "prior"}


@dataclass
class ModelEntry:
    kind: str
    name: str
    file: str  # relative to the models folder
    sha256: str
    bytes: int
    steps: int | None = None
    trained_on: list[dict] = field(default_factory=list)  # [{"name": clip, "fingerprint": sha256}, ...]
    created_at: str = ""
    dubstudio: str = __version__
    default: bool = False
    state: str = "ok"  # ok | missing | changed (checked when listed)

    def path(self, root: Path | None = None) -> Path:
        return (root or models_dir()) / self.file

    def describe(self) -> str:
        clips = ", ".join(c.get("name", "?") for c in self.trained_on[:6]) + (" ..." if len(self.trained_on) > 6 else "")
        flags = (" (default)" if self.default else "") + ("" if self.state == "ok" else f" [{self.state.upper()}]")
        return (f"{self.kind:10s} {self.name:16s}{flags}  {self.bytes / 1e6:.1f} MB, {self.steps or '?'} steps, "
                f"sha256 {self.sha256[:12]}  trained on {len(self.trained_on)} clip(s){': ' + clips if clips else ''}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DubStudioError(f"unknown model kind {kind!r}; the kinds are {', '.join(KINDS)}.")


def _read(root: Path) -> list[dict[str, Any]]:
    f = root / MANIFEST
    if not f.is_file():
        return []
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
        return [m for m in d.get("models", []) if isinstance(m, dict)]
    except (OSError, ValueError, AttributeError) as e:
        raise DubStudioError(f"the model manifest {f} is damaged ({e}); delete it and register the models again.") from e


def _write(root: Path, models: list[dict[str, Any]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / MANIFEST, {"format": 1, "models": models})


def model_path(kind: str, name: str | None = None) -> Path:
    """Where a model of ``kind`` called ``name`` (default: the kind's default name) is written."""
    _check_kind(kind)
    name = name or DEFAULT_NAMES[kind]
    if not name.replace("-", "").replace("_", "").isalnum():
        raise DubStudioError(f"a model name is letters, digits, '-' and '_': {name!r}")
    return models_dir() / kind / f"{name}.pt"


def register(kind: str, path: Path, steps: int | None = None, trained_on: list[dict] | None = None,
             make_default: bool = True) -> ModelEntry:
    """Add (or update) the model file ``path`` (inside the models folder) to the manifest."""
    _check_kind(kind)
    root = models_dir()
    path = Path(path).resolve()
    try:
        rel = path.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise DubStudioError(f"{path} is not in the models folder {root}; train into it or copy the file there.") from None
    entry = ModelEntry(kind, path.stem, rel, file_fingerprint(path), path.stat().st_size, steps, list(trained_on or []), _now())
    models = [m for m in _read(root) if m.get("file") != rel]
    if make_default:
        for m in models:
            if m.get("kind") == kind:
                m["default"] = False
    entry.default = make_default or not any(m.get("kind") == kind and m.get("default") for m in models)
    d = asdict(entry)
    d.pop("state")
    models.append(d)
    _write(root, models)
    return entry


def list_models(check: bool = True) -> list[ModelEntry]:
    """The registered models; with ``check`` each file's presence and fingerprint is verified."""
    root = models_dir()
    out = []
    for m in _read(root):
        e = ModelEntry(**{k: v for k, v in m.items() if k in ModelEntry.__dataclass_fields__ and k != "state"})
        if check:
            p = e.path(root)
            e.state = "missing" if not p.is_file() else ("changed" if file_fingerprint(p) != e.sha256 else "ok")
        out.append(e)
    return out


def default_model(kind: str) -> Path | None:
    """The default model file of ``kind`` when one is registered and present, else None."""
    _check_kind(kind)
    for e in list_models(check=False):
        if e.kind == kind and e.default and e.path().is_file():
            return e.path()
    return None


def resolve(kind: str, ref: str | Path) -> Path:
    """A model given as a file path, as a registered name of ``kind``, or as "default"."""
    p = Path(ref).expanduser()
    if p.is_file():
        return p
    name = str(ref)
    if name == "default":
        d = default_model(kind)
        if d is None:
            raise DubStudioError(f"no default {KINDS[kind]} is registered; train one or give its file (`dubstudio models list`).")
        return d
    for e in list_models(check=False):
        if e.kind == kind and e.name == name and e.path().is_file():
            return e.path()
    raise DubStudioError(f"{ref} is neither a file nor a registered {kind} model; `dubstudio models list` shows them.")


def remove(ref: str, kind: str | None = None) -> ModelEntry:
    """Delete a registered model (by name, or by kind/name) and its file; another model of its
    kind becomes the default when it was."""
    root = models_dir()
    models = _read(root)
    hits = [m for m in models if m.get("name") == ref or f"{m.get('kind')}/{m.get('name')}" == ref or m.get("file") == ref]
    if kind is not None:
        hits = [m for m in hits if m.get("kind") == kind]
    if not hits:
        raise DubStudioError(f"no registered model {ref!r}; `dubstudio models list` shows them.")
    if len(hits) > 1:
        raise DubStudioError(f"{ref!r} names {len(hits)} models; say which, as KIND/NAME ({', '.join(m['kind'] + '/' + m['name'] for m in hits)}).")
    hit = hits[0]
    (root / hit["file"]).unlink(missing_ok=True)
    rest = [m for m in models if m is not hit]
    if hit.get("default"):
        same = [m for m in rest if m.get("kind") == hit.get("kind")]
        if same:
            max(same, key=lambda m: m.get("created_at", ""))["default"] = True
    _write(root, rest)
    return ModelEntry(**{k: v for k, v in hit.items() if k in ModelEntry.__dataclass_fields__ and k != "state"})
