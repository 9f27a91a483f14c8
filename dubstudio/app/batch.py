"""Many shots headless, one shot list (``dubstudio batch LIST.csv``).

A film's dub is dozens of shots, a few actors each. The shot list is a CSV (what a spreadsheet or
an EDL tool exports), one row per shot::

    shot,audio,dubber,actor,offset,output,audio_policy,text,language
    reel1/sh010.mov,dub/sh010_de.wav,,anna,0.0,out/sh010_de.mov,,"Guten Morgen, Ben.",de
    reel1/sh020.mov,dub/sh020_de.wav,,anna,,,,,
    reel1/sh030.mov,,dubbers/sh030_take2.mp4,ben,,,trim,,

``shot`` and one of ``audio`` / ``dubber`` are required; the rest may be empty. ``text`` is the
line's script (with ``audio``; quoted when it holds commas) in ``language`` (default en). Paths are relative
to the list's folder. ``offset`` is seconds, or ``tc``: the line is placed by timecode (a reel's
dialogue stem as a Broadcast WAV, against each shot's source timecode; ``driving.placement``). Each row is ``app.run.run_job`` (track, adapt, dub, export, ffprobe), so
every stage is cached: running the list again after a crash, a kill or a fix redoes only what is
missing or changed. Rows with the same ``actor`` share the adaptation: the first of them that
succeeds adapts from the prior (``steps``) and the others start from it (``from_shot_steps``;
BENCHMARKS.md, "another shot of the same actor"). A row without an actor is adapted on its own.

The whole list is checked before any work (missing files, unknown columns, bad numbers: every
problem, with its line), and a row that fails later is reported and the others go on.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from dubstudio.app.adapt import FROM_SHOT_STEPS, RUN_STEPS
from dubstudio.app.run import RunRequest, run_job
from dubstudio.core.errors import Cancelled, DubStudioError
from dubstudio.core.jobs import Progress
from dubstudio.core.paths import default_project_dir
from dubstudio.driving.placement import TIMECODE_OFFSET, parse_offset, place_by_timecode

COLUMNS = ("shot", "audio", "dubber", "actor", "offset", "output", "audio_policy", "text", "language")
POLICIES = ("pad", "trim", "fit", "error")
EXPORT_SUFFIXES = (".mp4", ".mov", ".mxf")


@dataclass(frozen=True)
class ShotRow:
    line: int  # line in the CSV file (the header is line 1)
    shot: Path
    audio: Path | None
    dubber: Path | None
    actor: str
    offset_s: float
    output: Path | None
    audio_policy: str | None
    placement: str = ""  # how ``offset_s`` was found, when placed by timecode
    text: str | None = None  # the line's script
    language: str = "en"


@dataclass
class RowResult:
    line: int
    shot: str
    actor: str
    ok: bool = False
    output: str | None = None
    project: str | None = None
    from_shot: str | None = None
    adapt_steps: int | None = None
    wall_s: float = 0.0
    error: str | None = None
    warning: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def describe(self) -> str:
        if not self.ok:
            return f"line {self.line}: {Path(self.shot).name} FAILED: {self.error}"
        how = f"from {Path(self.from_shot).parents[2].name}" if self.from_shot else "adapted"
        return (f"line {self.line}: {Path(self.shot).name} -> {self.output}  [{how}, {self.adapt_steps} steps; {self.wall_s:.0f} s]"
                + (f"\n  warning: {self.warning}" if self.warning else ""))


@dataclass
class BatchResult:
    rows: list[RowResult] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_json(self) -> dict:
        return {"ok": self.ok, "shots": len(self.rows), "failed": sum(not r.ok for r in self.rows),
                "wall_s": round(self.wall_s, 1), "rows": [r.to_json() for r in self.rows]}

    def describe(self) -> str:
        failed = [r for r in self.rows if not r.ok]
        return (f"{len(self.rows) - len(failed)} of {_n(len(self.rows), 'shot')} dubbed in {self.wall_s:.0f} s"
                + ("; failed: " + ", ".join(f"line {r.line} ({Path(r.shot).name})" for r in failed) +
                   ". Fix them and run the list again: finished work is kept" if failed else ""))


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def read_shot_list(path: str | Path) -> list[ShotRow]:
    """The rows of a shot list, or one DubStudioError that names every problem with its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's UTF-8 export starts with a BOM
    except OSError as e:
        raise DubStudioError(f"cannot read the shot list {path}: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise DubStudioError(f"{path} is not a UTF-8 text file; export the shot list as CSV (UTF-8).") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "shot" not in header:
        raise DubStudioError(f"{path}: the first line must name the columns, with at least 'shot' and 'audio' or "
                             f"'dubber' (columns: {', '.join(COLUMNS)}).")
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise DubStudioError(f"{path}: unknown column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}.")
    base = path.resolve().parent
    rows, problems = [], []
    for raw in reader:
        n = reader.line_num  # the file's line (blank lines count; DictReader skips them)
        cell = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(cell.values()):
            continue  # a blank line
        where = f"line {n}"

        def file_of(key: str, must_exist: bool = True) -> Path | None:
            if not cell.get(key):
                return None
            p = Path(cell[key]).expanduser()
            p = p if p.is_absolute() else base / p
            if must_exist and not p.is_file():
                problems.append(f"{where}: {key} {cell[key]} not found")
            return p

        shot = file_of("shot")
        if shot is None:
            problems.append(f"{where}: no shot")
        audio, dubber = file_of("audio"), file_of("dubber")
        if (audio is None) == (dubber is None):
            problems.append(f"{where}: give the new dialogue as audio or a dubbing actor's video as dubber (one of them)")
        offset, placed = 0.0, ""
        try:
            offset = parse_offset(cell.get("offset") or 0.0)
        except ValueError:
            problems.append(f"{where}: offset {cell['offset']!r} is neither a number of seconds nor 'tc' (by timecode)")
            offset = 0.0
        if offset == TIMECODE_OFFSET:
            offset, line = 0.0, audio or dubber
            if shot is not None and shot.is_file() and line is not None and line.is_file():
                try:
                    p = place_by_timecode(shot, line)
                    offset, placed = p.offset_s, p.describe()
                except DubStudioError as e:
                    problems.append(f"{where}: offset tc: {e}")
        policy = cell.get("audio_policy") or None
        if policy is not None and policy not in POLICIES:
            problems.append(f"{where}: audio_policy {policy!r} is not one of {', '.join(POLICIES)}")
        text = cell.get("text") or None
        if text is not None and (audio is None or not any(ch.isalnum() for ch in text)):
            problems.append(f"{where}: text {text!r} " + ("goes with audio, not a dubber" if audio is None else "has no words"))
        output = file_of("output", must_exist=False)
        if output is not None and output.suffix.lower() not in EXPORT_SUFFIXES:
            problems.append(f"{where}: output {cell['output']} must end in {', '.join(EXPORT_SUFFIXES)}")
        if shot is not None:
            rows.append(ShotRow(n, shot, audio, dubber, cell.get("actor", ""), offset, output, policy, placed, text,
                                cell.get("language") or "en"))
    outputs: dict[Path, int] = {}
    for r in rows:
        if r.output is not None:
            first = outputs.setdefault(r.output.resolve(), r.line)
            if first != r.line:
                problems.append(f"line {r.line}: output {r.output.name} is also line {first}'s")
    if problems:
        raise DubStudioError(f"{path}: " + "; ".join(problems))
    if not rows:
        raise DubStudioError(f"{path} lists no shots.")
    return rows


@dataclass(frozen=True)
class BatchRequest:
    rows: list[ShotRow]
    out_dir: Path | None = None  # where rows without an output go (default: beside each shot)
    steps: int = RUN_STEPS  # adaptation steps of an actor's first shot
    from_shot_steps: int = FROM_SHOT_STEPS  # ... of their further shots, started from the first
    mode: str = "full"
    prior: Path | None = None  # for each actor's first shot
    audio_policy: str | None = None  # for rows that do not set one
    guide_track: bool = False
    device: str = "auto"
    overwrite: bool = False  # replace existing outputs that are not earlier exports of their shots
    key_visemes: bool = False  # rows with a script: its lip contacts also as viseme keys

    def check(self) -> None:
        if self.steps < 1 or self.from_shot_steps < 1:
            raise DubStudioError("--steps and --from-shot-steps must be at least 1.")
        if self.prior and not Path(self.prior).is_file():
            raise DubStudioError(f"{self.prior} not found; check the path.")

    def outputs(self) -> list[Path]:
        return [row.output or (self.out_dir or row.shot.parent) / f"{row.shot.stem}_dubbed.mp4" for row in self.rows]

    def inputs(self) -> dict[Path, str]:
        """Every file the list reads (resolved) and which line reads it as what."""
        out: dict[Path, str] = {}
        for r in self.rows:
            for what, p in (("shot", r.shot), ("audio", r.audio), ("dubber", r.dubber)):
                if p is not None:
                    out.setdefault(Path(p).resolve(), f"line {r.line}'s {what}")
        return out

    def collisions(self) -> list[str]:
        """Every output that would write over a file the list reads, another row's output, or an
        existing file that is not an earlier export of that row's shot (without ``overwrite``)."""
        from dubstudio.export.guard import is_export_of
        from dubstudio.export.resume import work_folder

        inputs, taken, problems = self.inputs(), {}, []
        for row, out in zip(self.rows, self.outputs(), strict=True):
            key = Path(out).resolve()
            if key in inputs:
                problems.append(f"line {row.line}: output {out.name} is {inputs[key]}: exporting there would destroy it")
            first = taken.setdefault(key, row.line)
            if first != row.line:
                problems.append(f"lines {first} and {row.line} would both export to {out}; give one of them an output")
            elif (out.exists() and key not in inputs and not self.overwrite and not work_folder(out).is_dir()
                  and not is_export_of(out, default_project_dir(row.shot).name, row.shot.name)):
                problems.append(f"line {row.line}: {out} already exists and is not an export of {row.shot.name} "
                                f"(give another output, or pass --overwrite)")
        return problems


class CheckResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        return self["text"]


def check_job(req: BatchRequest) -> CheckResult:
    """What the list would run (it was checked when read), or every collision of its outputs."""
    req.check()
    problems = req.collisions()
    if problems:
        raise DubStudioError("; ".join(problems))
    rows = req.rows
    actors = {r.actor for r in rows if r.actor}
    lines = [f"line {r.line}: {r.shot.name} <- {(r.audio or r.dubber).name}" + (f" (actor {r.actor})" if r.actor else "")
             + (f"\n  {r.placement}" if r.placement else "") for r in rows]
    return CheckResult({"shots": len(rows), "actors": sorted(actors),
                        "rows": [{"line": r.line, "shot": str(r.shot), "offset_s": r.offset_s, "placement": r.placement or None} for r in rows],
                        "text": "\n".join(lines + [f"{_n(len(rows), 'shot')}, {_n(len(actors), 'actor')}: the list is fine"])})


def batch_job(req: BatchRequest, progress: Progress | None = None, on_row=None) -> BatchResult:
    """Dub every row. ``on_row(RowResult)`` is called after each row. A cancel stops after the
    current stage (what is done stays cached)."""
    req.check()
    rows, outputs = req.rows, req.outputs()
    problems = req.collisions()  # before any work: no shot is dubbed into another's file
    if problems:
        raise DubStudioError("; ".join(problems))
    protect = tuple(req.inputs())
    progress = progress or Progress()
    result = BatchResult()
    t_all = time.perf_counter()
    seeds: dict[str, Path] = {}  # actor -> project folder of their adapted shot
    for row, out in zip(rows, outputs, strict=True):
        res = RowResult(row.line, str(row.shot), row.actor)
        project = default_project_dir(row.shot)
        seed = seeds.get(row.actor) if row.actor else None
        run = RunRequest(row.shot, audio=row.audio, dubber=row.dubber, project=project, output=out, offset_s=row.offset_s,
                         placement=row.placement or None, steps=req.steps, mode=req.mode, prior=req.prior,
                         audio_policy=row.audio_policy or req.audio_policy, guide_track=req.guide_track, device=req.device,
                         overwrite=req.overwrite, protect=protect, text=row.text, language=row.language,
                         key_visemes=req.key_visemes and row.text is not None)
        if seed is not None and seed.resolve() != project.resolve():
            run = replace(run, from_shot=seed, prior=None, steps=req.from_shot_steps, mode="full" if req.mode == "mixed" else req.mode)
        t0 = time.perf_counter()
        try:
            progress.stage(f"shot {row.shot.name}")
            got = run_job(run, progress)
        except Cancelled:
            raise
        except DubStudioError as e:
            res.error = str(e)
        except Exception as e:  # noqa: BLE001 - one shot's failure must not lose the others' work
            res.error = f"unexpected error: {type(e).__name__}: {e}"
        else:
            ad = got.adapt
            verify = got.export.get("verify") or {}
            res.ok = bool(verify.get("ok", True))
            if not res.ok:
                res.error = "ffprobe check failed: " + "; ".join(verify.get("problems", []))
            res.output, res.project = str(out), str(got.project)
            res.from_shot, res.adapt_steps, res.warning = ad.get("from_shot"), ad["steps"], ad.get("warning")
            if row.actor and row.actor not in seeds:
                seeds[row.actor] = Path(got.project)
        res.wall_s = round(time.perf_counter() - t0, 1)
        result.rows.append(res)
        if on_row is not None:
            on_row(res)
    result.wall_s = time.perf_counter() - t_all
    return result
