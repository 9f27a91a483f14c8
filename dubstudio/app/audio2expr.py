"""The person-generic audio-to-expression model: train one on tracked clips (``a2e_train_job``),
registered in the models folder as the default that ``dub --audio`` uses, or describe one.

One generic model ships with DubStudio, trained on synthesised speech only (``a2e_synthetic``;
``--synthetic`` remakes it); a model trained or installed here takes its place. With neither (or
``--audio-model shot``), a dub from audio trains a small per-actor model on the shot's own audio."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from dubstudio.app.models import register_trained
from dubstudio.app.projects import open_projects
from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.driving.a2e_generic import TrainConfig, default_generic_path, find_generic, load_generic, train_generic


@dataclass(frozen=True)
class A2ETrainRequest:
    projects: tuple[Path, ...]  # tracked project folders, video files or folders of videos
    out: Path | None = None  # default: the models folder's default generic model
    steps: int | None = None  # default: TrainConfig's
    threads: int | None = 1  # 1: best on a shared 2-core machine
    val_fraction: float | None = None  # hold out the end of every clip and keep the best weights
    restart: bool = False
    work: Path | None = None  # where projects for video files go
    synthetic: int = 0  # > 0: train on this many synthesised lines instead of projects


@dataclass
class A2ETrainResult:
    train: object  # a2e_generic.TrainResult
    default_model: bool
    registered: bool

    def to_json(self) -> dict:
        r = self.train
        return {"path": str(r.path), "steps": r.steps, "seconds": round(r.seconds, 1), "loss_first": r.loss_first,
                "loss_last": r.loss_last, "parameters": r.n_params, "clips": r.clips, "default_model": self.default_model,
                "registered": self.registered}

    def describe(self) -> str:
        r = self.train
        where = ("registered as the default for `dub --audio`" if self.default_model
                 else "use it with `dub --audio-model FILE`, or train it into the models folder to make it the default")
        return (f"audio2expr: {r.steps} steps on {len(r.clips)} clips in {r.seconds:.0f} s, "
                f"loss {r.loss_first:.4f} -> {r.loss_last:.4f} -> {r.path} ({where})")


def a2e_train_job(req: A2ETrainRequest, progress: Progress | None = None) -> A2ETrainResult:
    overrides = {"threads": req.threads}
    if req.steps is not None:
        if req.steps < 1:
            raise DubStudioError("--steps must be at least 1.")
        overrides["steps"] = req.steps
    if req.val_fraction is not None:
        if not 0.0 <= req.val_fraction < 0.5:
            raise DubStudioError("--val-fraction must be in [0, 0.5).")
        overrides["val_fraction"] = req.val_fraction
    config = dataclasses.replace(TrainConfig(), **overrides)
    out = Path(req.out) if req.out else default_generic_path()
    if req.restart:
        out.unlink(missing_ok=True)
    if req.synthetic < 0 or (not req.synthetic and not req.projects):
        raise DubStudioError("give tracked projects to train on (--projects), or --synthetic with at least 1 line.")
    progress = progress or Progress()
    if req.synthetic:
        from dubstudio.driving.a2e_synthetic import SYNTH_TRAIN, train_synthetic

        if req.projects:
            raise DubStudioError("give --projects or --synthetic, not both.")
        if req.val_fraction:
            raise DubStudioError("--val-fraction applies to tracked clips, not to synthesised speech.")
        config = dataclasses.replace(SYNTH_TRAIN, **overrides)
        r = train_synthetic(out, req.synthetic, config, progress=progress, resume=not req.restart)
        registered = register_trained("audio2expr", out, r.steps, [])
    else:
        projects = open_projects(req.projects, req.work, progress)
        r = train_generic(projects, out, config, progress=progress)
        registered = register_trained("audio2expr", out, r.steps, projects)
    is_default = out.resolve() == default_generic_path().resolve()
    return A2ETrainResult(r, is_default, registered)


class A2EShowResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        clips = self["clips"]
        if len(clips) == 1 and "utterances" in clips[0]:  # the built-in kind: synthesised lines, no footage
            return f"{self['path']}: {self['steps']} steps, trained on {clips[0]['utterances']} lines of {clips[0]['name']}"
        return f"{self['path']}: {self['steps']} steps, trained on {len(clips)} clips"


def a2e_show_job(model: Path | None = None) -> A2EShowResult:
    path = Path(model) if model else (find_generic() or default_generic_path())
    if not path.is_file():
        raise DubStudioError(
            f"no generic model at {path}; train one with `dubstudio audio2expr train --projects ...` "
            "(without one, `dub --audio` trains a per-actor model on the shot's own audio)."
        )
    g = load_generic(path)
    cfg = g.config if isinstance(g.config, dict) else {}
    return A2EShowResult({"path": str(path), "steps": g.step, "fingerprint": g.fingerprint, "clips": cfg.get("clips", []),
                          "controls": cfg.get("controls")})
