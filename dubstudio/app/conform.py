"""An editor's cut in, the dubbed cut out (``dubstudio conform import | export``).

``import`` reads the cut (``conform.cut``), places one language's dialogue stem on its timeline,
checks everything (every problem named with its shot, before anything is written), and with
``--out`` cuts out each shot's frames and line and writes the shot list that ``batch`` and
``farm submit`` take (``conform.shots``). Without ``--out`` it only shows what it found, for
checking. ``export`` writes the cut back pointing at the dubs (``conform.relink``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from dubstudio.conform.cut import Cut, parse_tc_arg, read_cut, tc_of
from dubstudio.conform.relink import Relinked, relink_cut
from dubstudio.conform.shots import Stem, check_stem, open_stem, write_shots
from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress

EXPORT_SUFFIXES = (".mov", ".mp4", ".mxf")


@dataclass(frozen=True)
class ImportRequest:
    cut: Path
    stem: Path | None = None  # the language's dialogue stem (Broadcast WAV placed by its time reference)
    stem_start: str | None = None  # ... or its first sample's record timecode
    media: tuple[Path, ...] = ()  # folders to look for the cut's media in
    rate: Fraction | None = None  # an EDL's frame rate (it does not say); default 25 for an EDL
    out: Path | None = None  # where to write shots, lines, the shot list (None: check and show only)
    handles: int = 0
    language: str = "dub"
    export_suffix: str = ".mov"
    check_faces: bool = True
    strict: bool = True  # raise on any problem; False (the editor's review): report them per shot, write nothing


class ImportResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        lines = [f"{self['cut']}: {len(self['shots'])} shot(s) at {self['rate']} fps, {len(self['actors'])} actor(s); "
                 f"dialogue {self['stem']}"]
        lines += ["  " + s["text"] + (f"; line: {s['dialogue']}" if s.get("dialogue") else "") + "".join(f"\n    problem: {p}" for p in s["problems"]) for s in self["shots"]]
        lines += [f"  problem: {p}" for p in self.get("cut_problems", [])]
        if self.get("shot_list"):
            lines.append(f"shot list -> {self['shot_list']}  (dub it: dubstudio batch {self['shot_list']}, or "
                         f"dubstudio farm submit {self['shot_list']} -o BUNDLE)")
        else:
            lines.append("checked; nothing written (give --out FOLDER to cut the shots out and write the shot list)")
        return "\n".join(lines)


def import_cut_job(req: ImportRequest, progress: Progress | None = None) -> ImportResult:
    if req.handles < 0:
        raise DubStudioError("--handles must be 0 or more.")
    if req.export_suffix not in EXPORT_SUFFIXES:
        raise DubStudioError(f"--export-format must be one of {', '.join(s[1:] for s in EXPORT_SUFFIXES)}.")
    if (req.stem is None) and req.stem_start:
        raise DubStudioError("--stem-start places a stem: give the stem too (--stem FILE).")
    if req.stem is None and req.strict:
        raise DubStudioError("give the language's dialogue stem (--stem FILE.wav): each shot's line is cut from it by timecode.")
    progress = progress or Progress()
    progress.stage("reading the cut")
    cut = read_cut(req.cut, list(req.media), req.rate, check_faces=req.check_faces)
    stem = None
    if req.stem is not None:
        start = parse_tc_arg(req.stem_start, cut.rate, "--stem-start") if req.stem_start else None
        stem = open_stem(req.stem, cut.rate, start)
        check_stem(cut, stem)
    if not req.strict:
        return _result(cut, stem, None)
    cut.check()  # every problem at once, each with its shot, before anything is written
    shot_list = None
    if req.out is not None:
        shot_list = write_shots(cut, stem, req.out, req.handles, req.export_suffix, req.language, progress)
    return _result(cut, stem, shot_list)


def _result(cut: Cut, stem: Stem | None, shot_list: Path | None) -> ImportResult:
    return ImportResult({"cut": str(cut.path), "rate": f"{float(cut.rate):g}", "stem": stem.describe(cut.rate) if stem else None,
                         "actors": sorted({s.actor for s in cut.shots if s.actor}),
                         "shots": [s.to_json(cut.rate) | {"text": s.describe(cut.rate), "dialogue": _line_of(s, stem, cut.rate)}
                                   for s in cut.shots],
                         "cut_problems": list(cut.problems), "ok": not cut.all_problems,
                         "shot_list": str(shot_list) if shot_list else None})


def _line_of(s, stem: Stem | None, rate: Fraction) -> str | None:
    """Where the shot's line comes from: the stem under its record range (None: no stem, or the
    stem does not cover it)."""
    if stem is None or not (stem.start <= s.record_in and s.record_in + s.record_frames <= stem.start + stem.frames(rate)):
        return None
    return f"{stem.path.name} {tc_of(s.record_in, rate)}-{tc_of(s.record_in + s.record_frames, rate)}"


@dataclass(frozen=True)
class ConformRequest:
    folder: Path  # an import's --out folder (its conform.json)
    out: Path  # the conformed cut, .otio (an .edl beside it)
    edl: bool = True


def conform_export_job(req: ConformRequest, progress: Progress | None = None) -> Relinked:
    (progress or Progress()).stage("relinking the cut")
    return relink_cut(req.folder, req.out, req.edl)


__all__ = ["ImportRequest", "ImportResult", "import_cut_job", "ConformRequest", "conform_export_job", "tc_of"]
