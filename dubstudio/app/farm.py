"""A shot list on a render farm (``dubstudio farm submit | task | run``).

``submit`` writes an Open Job Description job bundle (``farm.openjd``) for a shot list; a farm that
runs OpenJD (AWS Deadline Cloud natively) takes it as it is. Each task runs ``farm task``: one stage
of one line of the list, the same stage ``run``/``batch`` run (``app.run.run_stage``), in a project
under the job's projects folder. ``run`` runs a bundle here with the OpenJD command line runner
(``openjd run``, from PyPI), step wave by step wave, each step's tasks spread over worker processes
the way farm workers would take them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from dubstudio.app.adapt import FROM_SHOT_STEPS, RUN_STEPS
from dubstudio.app.batch import BatchRequest, ShotRow, read_shot_list
from dubstudio.app.run import STAGES, RunRequest, run_stage
from dubstudio.core.errors import Cancelled, DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.farm.openjd import (FarmSettings, FarmShot, job_template, parameter_values, read_bundle, step_lines,
                                   steps_in_order, validate, write_bundle)


def _first_of_actor(rows: list[ShotRow]) -> dict[str, ShotRow]:
    first: dict[str, ShotRow] = {}
    for r in rows:
        if r.actor:
            first.setdefault(r.actor, r)
    return first


@dataclass(frozen=True)
class SubmitRequest:
    shot_list: Path
    bundle: Path
    projects: Path | None = None  # default: a "projects" folder beside the shot list
    steps: int = RUN_STEPS
    from_shot_steps: int = FROM_SHOT_STEPS
    mode: str = "full"
    device: str = "auto"
    prior: Path | None = None
    python: str | None = None  # the workers' interpreter (default: this one)


class SubmitResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        return (f"job bundle for {self['shots']} shot(s), {self['actors']} actor(s) -> {self['bundle']}\n"
                f"steps: {' -> '.join('+'.join(w) for w in self['waves'])} ({self['tasks']} tasks)\n"
                f"run it here: dubstudio farm run {self['bundle']}   (or submit the folder to an OpenJD farm)")


def submit_job(req: SubmitRequest, progress: Progress | None = None) -> SubmitResult:
    """The shot list (checked as ``batch`` checks it) as a validated job bundle."""
    rows = read_shot_list(req.shot_list)
    BatchRequest(rows, steps=req.steps, from_shot_steps=req.from_shot_steps, mode=req.mode, prior=req.prior).check()
    first = _first_of_actor(rows)
    shots = [FarmShot(r.line, r.shot.name, r.actor, bool(r.actor) and first[r.actor] is r) for r in rows]
    settings = FarmSettings(python=req.python or sys.executable, steps=req.steps, from_shot_steps=req.from_shot_steps,
                            mode=req.mode, device=req.device, prior=str(Path(req.prior).resolve()) if req.prior else "")
    shot_list = Path(req.shot_list).resolve()
    projects = Path(req.projects).resolve() if req.projects else shot_list.parent / "projects"
    template = job_template(f"DubStudio {shot_list.stem}", shots, settings)
    values = parameter_values(template, shot_list, projects)
    try:
        validate(template, values)
    except ValueError as e:
        raise DubStudioError(f"the job template did not validate (a DubStudio bug, please report it): {e}") from None
    write_bundle(req.bundle, template, values)
    return SubmitResult({"bundle": str(Path(req.bundle).resolve()), "shots": len(rows), "actors": len(first),
                         "waves": steps_in_order(template), "tasks": sum(len(s["parameterSpace"]["taskParameterDefinitions"][0]["range"])
                                                                         for s in template["steps"])})


@dataclass(frozen=True)
class TaskRequest:
    shot_list: Path
    line: int
    stage: str
    projects: Path
    steps: int = RUN_STEPS
    from_shot_steps: int = FROM_SHOT_STEPS
    mode: str = "full"
    device: str = "auto"
    prior: Path | None = None
    threads: int | None = None


def project_for(projects: Path, shot: Path) -> Path:
    """A shot's project in the job's projects folder (named as in the user's projects folder)."""
    from dubstudio.core.paths import default_project_dir

    return Path(projects) / default_project_dir(shot).name


def task_request(req: TaskRequest) -> RunRequest:
    """The ``RunRequest`` of the line, as ``batch`` would make it (an actor's later shot starts
    from the first one's project)."""
    if req.stage not in STAGES:
        raise DubStudioError(f"--stage must be one of {', '.join(STAGES)}, got {req.stage!r}.")
    rows = read_shot_list(req.shot_list)
    row = next((r for r in rows if r.line == req.line), None)
    if row is None:
        raise DubStudioError(f"{Path(req.shot_list).name} has no shot on line {req.line} (lines: {', '.join(str(r.line) for r in rows)}).")
    batch = BatchRequest(rows)
    out = batch.outputs()[rows.index(row)]
    run = RunRequest(row.shot, audio=row.audio, dubber=row.dubber, project=project_for(req.projects, row.shot), output=out,
                     offset_s=row.offset_s, placement=row.placement or None, steps=req.steps, mode=req.mode, prior=req.prior,
                     audio_policy=row.audio_policy, device=req.device, protect=tuple(batch.inputs()), threads=req.threads,
                     overwrite=False)
    first = _first_of_actor(rows).get(row.actor) if row.actor else None
    if first is not None and first is not row:
        run = replace(run, from_shot=project_for(req.projects, first.shot), prior=None, steps=req.from_shot_steps,
                      mode="full" if req.mode == "mixed" else req.mode)
    return run


def task_job(req: TaskRequest, progress: Progress | None = None) -> dict:
    t0 = time.perf_counter()
    got = run_stage(task_request(req), req.stage, progress)
    return {"line": req.line, "stage": req.stage, "wall_s": round(time.perf_counter() - t0, 1), "result": got}


@dataclass(frozen=True)
class LocalRunRequest:
    bundle: Path
    workers: int = 1
    threads: int | None = None  # torch threads per task (default: the machine's cores shared by the workers)
    log_dir: Path | None = None  # each openjd session's output (default: BUNDLE/logs)


@dataclass
class LocalRunResult:
    wall_s: float = 0.0
    workers: int = 1
    steps: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s["ok"] for s in self.steps)

    def to_json(self) -> dict:
        return {"ok": self.ok, "wall_s": round(self.wall_s, 1), "workers": self.workers, "steps": self.steps}

    def describe(self) -> str:
        lines = [f"{s['step']}: {len(s['lines'])} task(s) in {s['wall_s']:.0f} s" + ("" if s["ok"] else f"  FAILED (see {s['log']})")
                 for s in self.steps]
        return "\n".join(lines + [f"{'done' if self.ok else 'FAILED'} in {self.wall_s:.0f} s with {self.workers} worker(s)"])


def _openjd() -> list[str]:
    exe = Path(sys.executable).with_name("openjd")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-m", "openjd"]


def run_bundle_job(req: LocalRunRequest, progress: Progress | None = None) -> LocalRunResult:
    """Run a bundle here: the steps in dependency waves, the tasks of a wave shared out to
    ``workers`` ``openjd run`` sessions at a time. A failed step stops the steps after it (their
    inputs are missing); what finished stays cached, so running again does the rest."""
    progress = progress or Progress()
    if req.workers < 1:
        raise DubStudioError("--workers must be at least 1.")
    bundle = Path(req.bundle)
    if not (bundle / "template.yaml").is_file():
        raise DubStudioError(f"{bundle} is not a job bundle (no template.yaml); make one with `dubstudio farm submit`.")
    template, values = read_bundle(bundle)
    threads = req.threads if req.threads is not None else max(1, (os.cpu_count() or 1) // req.workers)
    values = values | {"Threads": str(threads)}
    logs = Path(req.log_dir or bundle / "logs")
    logs.mkdir(parents=True, exist_ok=True)
    # each OpenJD session's working folder goes under TMPDIR/OpenJD, which the first user of a
    # machine owns: the sessions of this run get a folder of their own, beside its logs
    sessions = logs.parent / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TMPDIR=str(sessions))
    params = []
    for k, v in values.items():
        params += ["-p", f"{k}={v}"]
    result = LocalRunResult(workers=req.workers)
    t_all = time.perf_counter()
    failed = False
    for wave in steps_in_order(template):
        if failed:
            break
        jobs = [(step, line) for step in wave for line in step_lines(template, step)]
        progress.stage(f"{' + '.join(wave)}: {len(jobs)} task(s)")
        t0 = time.perf_counter()

        def one(job: tuple[str, int]) -> tuple[str, int, bool, str]:
            step, line = job
            progress.check()
            log = logs / f"{step}_line{line}.log"
            cmd = [*_openjd(), "run", str(bundle / "template.yaml"), "--step", step, "--no-run-dependencies",
                   "--tasks", json.dumps([{"Line": str(line)}]), *params]
            with log.open("w") as f:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
            return step, line, rc == 0, str(log)

        with ThreadPoolExecutor(max_workers=req.workers) as pool:
            done = list(pool.map(one, jobs))
        for step in wave:
            mine = [d for d in done if d[0] == step]
            ok = all(d[2] for d in mine)
            result.steps.append({"step": step, "lines": [d[1] for d in mine], "ok": ok,
                                 "wall_s": round(time.perf_counter() - t0, 1),
                                 "log": next((d[3] for d in mine if not d[2]), str(logs))})
            failed |= not ok
    result.wall_s = time.perf_counter() - t_all
    if progress.token.cancelled:
        raise Cancelled("the local farm run was cancelled; what finished is kept.")
    return result
