"""An export never destroys an input: the output may not be the shot's video, the dialogue or the
dubber clip (or, in a batch, any file the shot list reads), and an existing file is replaced only
when it is an earlier export of this shot or the user said so (``--overwrite``; the editor asks).

A stopped export to the same name, or an earlier finished one, is what resuming continues from
(``export.resume``): those are this shot's own, and are never refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dubstudio.core.errors import DubStudioError


class OutputExistsError(DubStudioError):
    """The output exists and is not an earlier export of this shot (the editor asks to replace it)."""


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (links and relative paths included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def inside(path: Path, folder: Path) -> bool:
    try:
        return Path(path).expanduser().resolve().is_relative_to(Path(folder).expanduser().resolve())
    except OSError:
        return False


def is_export_of(out: Path, project_name: str, video_name: str) -> bool:
    """Whether ``out`` is a DubStudio export of this shot (its manifest names the project and video)."""
    from dubstudio.export.mark import read_mark

    try:
        man = read_mark(out).get("manifest")
    except Exception:  # noqa: BLE001 - unreadable: not ours
        return False
    return isinstance(man, dict) and man.get("project") == project_name and man.get("source_video") == video_name


def guard_output(out: Path, fmt_name: str, inputs: Iterable[tuple[str, Path | None]], project_name: str, video_name: str,
                 overwrite: bool = False) -> None:
    """A clear error, before any work, when exporting to ``out`` would write over an input
    (``inputs``: (what it is, path)) or over a file that is not an earlier export of this shot."""
    from dubstudio.export.resume import work_folder

    out = Path(out)
    for what, p in inputs:
        if p is None or not Path(p).exists():
            continue
        if (fmt_name == "png" and inside(p, out)) or (fmt_name != "png" and same_file(p, out)):
            where = f"inside the folder {out}" if fmt_name == "png" else str(out)
            raise DubStudioError(f"{Path(p).name} ({what}) is at {where}: exporting there would destroy it; choose another name.")
    if fmt_name == "png" or not out.exists() or overwrite:
        return
    if work_folder(out).is_dir() or is_export_of(out, project_name, video_name):
        return  # a stopped or earlier export of this shot: resuming continues from it
    raise OutputExistsError(
        f"{out} already exists and is not an export of this shot; choose another name, or pass --overwrite to replace it."
    )
