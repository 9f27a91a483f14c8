"""The models folder (``nn.registry``): list, remove, and record what a training wrote there."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dubstudio.core.paths import models_dir
from dubstudio.nn import registry
from dubstudio.project.store import Project


class ModelsResult(list):
    def to_json(self) -> dict:
        from dataclasses import asdict

        return {"models_dir": str(models_dir()), "models": [asdict(e) for e in self]}

    def describe(self) -> str:
        if not self:
            return (f"no models in {models_dir()}: train a generic audio model (`dubstudio audio2expr train`) or a prior "
                    f"(`dubstudio prior train`); none ship with DubStudio")
        return "\n".join([f"models in {models_dir()}:"] + ["  " + e.describe() for e in self])


def list_job() -> ModelsResult:
    return ModelsResult(registry.list_models(check=True))


def remove_job(ref: str) -> registry.ModelEntry:
    kind, _, name = ref.partition("/") if "/" in ref else (None, "", ref)
    return registry.remove(name, kind)


def register_trained(kind: str, out: Path, steps: int, projects: Sequence[Project]) -> bool:
    """Record a model trained into the models folder in its manifest (a file written elsewhere is
    the user's own and is left alone). What it was trained on: each clip's name and fingerprint.
    A model written under its kind's default name becomes the default."""
    try:
        Path(out).resolve().relative_to(models_dir().resolve())
    except ValueError:
        return False
    clips = [{"name": p.video_path.name, "fingerprint": p.video_fingerprint} for p in projects]
    registry.register(kind, Path(out), steps=steps, trained_on=clips, make_default=Path(out).stem == registry.DEFAULT_NAMES[kind])
    return True
