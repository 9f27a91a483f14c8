"""A shot list as an Open Job Description job (the open job format AWS Deadline Cloud runs natively;
``openjd run`` and ``openjd-sessions`` run it anywhere), written as a job bundle.

Steps per stage, tasks per shot (the shot list's line number is the task parameter), and each
task runs ``dubstudio farm task`` for its line and stage. The order ``batch`` keeps, as step
dependencies:

    Track --> Adapt (each actor's first shot, and shots without an actor)
          |     '--> AdaptFromShot (the actor's other shots, started from the first's adaptation)
          '--> Dub (the new dialogue's mouth: needs the tracking, not the renderer)
    Export <-- Dub, Adapt, AdaptFromShot

Every path is a job parameter (the shot list, the projects folder), so the same bundle runs on a
farm whose workers see shared storage under other names (OpenJD path mapping), and a rerun of the
job does only what is missing: every stage is cached in the shot's project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC = "jobtemplate-2023-09"
TEMPLATE = "template.yaml"
PARAMETERS = "parameter_values.yaml"


@dataclass(frozen=True)
class FarmShot:
    line: int  # the shot list's line: the task's parameter
    name: str
    actor: str
    first_of_actor: bool  # adapts from the prior (or scratch); the actor's other shots start from it


@dataclass(frozen=True)
class FarmSettings:
    python: str  # the interpreter with DubStudio installed on the workers
    steps: int
    from_shot_steps: int
    mode: str
    device: str = "auto"
    prior: str = ""  # a prior checkpoint, or '' for none
    threads: int = 0  # torch threads per task (0: torch's choice)


def _line_space(lines: list[int]) -> dict:
    return {"taskParameterDefinitions": [{"name": "Line", "type": "INT", "range": [int(x) for x in lines]}]}


def _task_script(stage: str) -> dict:
    args = ["-m", "dubstudio.cli", "farm", "task", "{{Param.ShotList}}", "--line", "{{Task.Param.Line}}", "--stage", stage,
            "--projects", "{{Param.ProjectsDir}}", "--steps", "{{Param.Steps}}", "--from-shot-steps", "{{Param.FromShotSteps}}",
            "--mode", "{{Param.Mode}}", "--device", "{{Param.Device}}", "--prior={{Param.Prior}}", "--threads", "{{Param.Threads}}"]
    return {"actions": {"onRun": {"command": "{{Param.Python}}", "args": args, "cancelation": {"mode": "NOTIFY_THEN_TERMINATE"}}}}


def job_template(name: str, shots: list[FarmShot], settings: FarmSettings) -> dict:
    """The job template (a dict in the 2023-09 schema) for ``shots``. The paths have no defaults
    (OpenJD defaults must be relative to the template): the bundle's parameter values give them."""
    all_lines = [s.line for s in shots]
    first = [s.line for s in shots if s.first_of_actor or not s.actor]
    rest = [s.line for s in shots if s.actor and not s.first_of_actor]
    params: list[dict[str, Any]] = [
        {"name": "ShotList", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
         "description": "The shot list (CSV): the shots, their dialogue and outputs, relative to its folder."},
        {"name": "ProjectsDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "INOUT",
         "description": "Where each shot's project (tracking, adaptation, dub) lives: shared by every worker."},
        {"name": "Python", "type": "STRING", "default": settings.python,
         "description": "The Python interpreter with DubStudio installed, as the workers see it."},
        {"name": "Steps", "type": "INT", "default": settings.steps, "minValue": 1},
        {"name": "FromShotSteps", "type": "INT", "default": settings.from_shot_steps, "minValue": 1},
        {"name": "Mode", "type": "STRING", "default": settings.mode, "allowedValues": ["full", "texture", "mixed"]},
        {"name": "Device", "type": "STRING", "default": settings.device, "minLength": 1},
        {"name": "Prior", "type": "STRING", "default": settings.prior, "minLength": 0},
        {"name": "Threads", "type": "INT", "default": settings.threads, "minValue": 0},
    ]
    steps: list[dict[str, Any]] = [
        {"name": "Track", "parameterSpace": _line_space(all_lines), "script": _task_script("track")},
        {"name": "Adapt", "parameterSpace": _line_space(first), "script": _task_script("adapt"),
         "dependencies": [{"dependsOn": "Track"}]},
    ]
    if rest:
        steps.append({"name": "AdaptFromShot", "parameterSpace": _line_space(rest), "script": _task_script("adapt"),
                      "dependencies": [{"dependsOn": "Adapt"}]})
    steps.append({"name": "Dub", "parameterSpace": _line_space(all_lines), "script": _task_script("dub"),
                  "dependencies": [{"dependsOn": "Track"}]})
    steps.append({"name": "Export", "parameterSpace": _line_space(all_lines), "script": _task_script("export"),
                  "dependencies": [{"dependsOn": s} for s in ("Dub", "Adapt", *(["AdaptFromShot"] if rest else []))]})
    return {"specificationVersion": SPEC, "name": name[:128] or "DubStudio", "parameterDefinitions": params, "steps": steps}


def validate(template: dict, values: dict[str, str]) -> None:
    """Raise ValueError when ``template`` is not a valid job template (``openjd-model``'s own check)
    or does not instantiate as a job with ``values``."""
    from openjd.model import DecodeValidationError, create_job, decode_job_template, preprocess_job_parameters

    try:
        tpl = decode_job_template(template=template)
        here = Path.cwd()
        given = preprocess_job_parameters(job_template=tpl, job_parameter_values=dict(values), job_template_dir=here,
                                          current_working_dir=here, environment_templates=[])
        create_job(job_template=tpl, job_parameter_values=given)
    except DecodeValidationError as e:
        raise ValueError(str(e)) from None


def steps_in_order(template: dict) -> list[list[str]]:
    """The template's steps in waves: each wave's steps depend only on earlier waves."""
    deps = {s["name"]: {d["dependsOn"] for d in s.get("dependencies", [])} for s in template["steps"]}
    done: set[str] = set()
    waves = []
    while len(done) < len(deps):
        wave = [n for n, d in deps.items() if n not in done and d <= done]
        if not wave:
            raise ValueError("the job's step dependencies form a cycle")
        waves.append(wave)
        done |= set(wave)
    return waves


def step_lines(template: dict, step: str) -> list[int]:
    s = next(x for x in template["steps"] if x["name"] == step)
    return list(s["parameterSpace"]["taskParameterDefinitions"][0]["range"])


def parameter_values(template: dict, shot_list: Path, projects: Path) -> dict[str, str]:
    """Every job parameter's value: the paths given, the rest as the template's defaults."""
    values = {p["name"]: str(p["default"]) for p in template["parameterDefinitions"] if "default" in p}
    return values | {"ShotList": str(shot_list), "ProjectsDir": str(projects)}


def write_bundle(folder: Path, template: dict, values: dict[str, str]) -> Path:
    """A job bundle (what ``deadline bundle submit`` and ``openjd run`` take): the template and the
    parameter values it was made with."""
    import yaml

    from dubstudio.io.atomic import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / TEMPLATE, yaml.safe_dump(template, sort_keys=False, width=120))
    doc = {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}
    atomic_write_text(folder / PARAMETERS, yaml.safe_dump(doc, sort_keys=False, width=120))
    return folder / TEMPLATE


def read_bundle(folder: Path) -> tuple[dict, dict[str, str]]:
    import yaml

    folder = Path(folder)
    template = yaml.safe_load((folder / TEMPLATE).read_text(encoding="utf-8"))
    values = {p["name"]: str(p["default"]) for p in template["parameterDefinitions"] if "default" in p}
    p = folder / PARAMETERS
    if p.is_file():
        for item in (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("parameterValues", []):
            values[item["name"]] = str(item["value"])
    return template, values
