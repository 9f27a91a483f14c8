"""The mouth detail's settings for one shot: checked after the adaptation on frames it held out
(``eval.detail_check``), recorded in the project, and used by every render of that actor (export,
eval, the editor). Another actor file, or none checked, renders with the default settings."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from dubstudio.core.jobs import Progress
from dubstudio.eval.detail_check import CANDIDATES, TRUST, CheckSettings, DetailCheck, check_detail, check_runs, held_out
from dubstudio.io.atomic import atomic_write_json
from dubstudio.project.store import Project, cached_fingerprint
from dubstudio.rendering.mouth_detail import DetailSettings
from dubstudio.shot.tracking import tracking_of

STAGE = "detail_check"
VERSION = 1

__all__ = ["STAGE", "plan_check", "check_job", "chosen_settings"]


def plan_check(has_face: Sequence[bool], frames: Sequence[int] | None,
               settings: CheckSettings = CheckSettings()) -> tuple[list[list[int]], list[int] | None]:
    """(check runs, training frames): with no frames given the adaptation trains on the shot less
    the check runs; with given frames the runs keep only frames outside them (a run left with
    under half its frames is dropped, and a single run left is no check: too few frames to decide)."""
    runs = check_runs(has_face, settings)
    if frames is None:
        return runs, (held_out(len(has_face), runs) if runs else None)
    train = {int(i) for i in frames}
    kept = [r for r in ([i for i in r if i not in train] for r in runs) if len(r) >= settings.length // 2]
    return (kept if len(kept) >= 2 else []), list(frames)


def _file(project: Project) -> Path:
    return project.cache_dir("detail") / "check.json"


def check_job(project: Project, actor: Path, runs: Sequence[Sequence[int]], device: str = "cpu",
              progress: Progress | None = None) -> DetailCheck:
    """Check the candidates for ``actor`` (an adaptation of ``project`` that did not train on
    ``runs``) and record the choice; cached: the same actor file, tracking and runs check once."""
    from dubstudio.eval.metrics import LpipsScorer
    from dubstudio.io.video import VideoReader
    from dubstudio.rendering.renderer import ActorRenderer

    tracking, track_key = tracking_of(project)
    runs = [[int(i) for i in r] for r in runs]
    key = project.stage_key(STAGE, {"actor": Path(actor), "tracking": track_key},
                            {"version": VERSION, "runs": runs, "candidates": list(CANDIDATES), "trust": list(TRUST), "check": asdict(CheckSettings()),
                             "detail": asdict(DetailSettings())})  # a new default (the bank) checks again
    if project.stage_is_current(STAGE, key):
        done = _load(project)
        if done is not None:
            return done[1]
    if not runs:
        result = DetailCheck({}, [], reason="no frame was held out of the adaptation to check on")
    else:
        base = ActorRenderer.load(project, device, actor=actor)
        try:
            with VideoReader(project.check_video()) as reader:
                refs = [i for i in range(tracking.n_frames) if tracking.has_face[i]]
                result = check_detail(base, reader, refs, runs, LpipsScorer(device=str(device)), progress=progress)
        finally:
            base.close()
    path = _file(project)
    atomic_write_json(path, {"actor": cached_fingerprint(Path(actor)), **result.to_json()})
    project.record_stage(STAGE, key, {"check": path.relative_to(project.root).as_posix()},
                         {"chosen": json.dumps(result.chosen, sort_keys=True)})
    return result


def _load(project: Project) -> tuple[str, DetailCheck] | None:
    rec = project.stage_record(STAGE)
    if rec is None:
        return None
    try:
        data = json.loads(project.path(rec["outputs"]["check"]).read_text())
        actor = data.pop("actor")
        check = DetailCheck(**data)
        check.settings()  # unknown fields (an older version's) fail here
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return actor, check


def chosen_settings(project: Project, actor: Path) -> DetailSettings | None:
    """The settings checked for this actor file, None when it was not checked."""
    done = _load(project)
    if done is None or not Path(actor).is_file() or done[0] != cached_fingerprint(Path(actor)):
        return None
    return done[1].settings()
