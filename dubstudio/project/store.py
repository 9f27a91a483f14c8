"""The project store: one folder per project, ``project.json`` plus a ``cache/`` folder.

Pipeline stages are cached by content (ARCHITECTURE rule 8): a stage's key is a hash of its inputs
(file contents, upstream keys) and settings; the stage is current only if the recorded key matches
and its recorded outputs still exist. Long stages write ``ChunkStore`` chunks so a killed job
resumes at the first missing chunk. All writes are atomic (rule 12).

project.json (schema 1)::

    {"schema_version": 1, "created_at": "...", "video": {"path": "/abs/clip.mp4",
     "fingerprint": "<sha256>", "size": 123},
     "stages": {"track": {"key": "...", "outputs": {"tracks": "cache/track/tracks.npz"},
                          "metrics": {...}, "finished_at": "..."}}}
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from filelock import FileLock, Timeout

from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import (
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    file_fingerprint,
    settings_hash,
)

SCHEMA_VERSION = 1
PROJECT_FILE = "project.json"
CACHE_DIR = "cache"
LOCK_FILE = ".project.lock"  # held while project.json is read, changed and written (filelock)
HOLDER_FILE = ".project.lock.holder"  # who holds it: said when another writer gives up waiting
LOCK_WAIT_S = 30.0

class _Video(msgspec.Struct):
    path: str
    fingerprint: str = ""
    size: int = 0


class _Stage(msgspec.Struct):
    key: str
    outputs: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    finished_at: str = ""


class _Script(msgspec.Struct):
    language: str = ""
    words: list[tuple[float, str]] = []  # (shot seconds, word)
    visemes: list[tuple[float, str]] = []  # (shot seconds, viseme name): the script's lip contacts


class _DubAudio(msgspec.Struct):
    kind: str
    source: str
    path: str | None = None
    fingerprint: str | None = None
    offset_s: float = 0.0
    start_in_shot_s: float = 0.0
    script: _Script | None = None


class _ProjectFile(msgspec.Struct):
    """What project.json must look like (fields it does not name are kept as they are)."""

    schema_version: int
    video: _Video
    stages: dict[str, _Stage] = {}
    dub_audio: _DubAudio | None = None


def check_schema(data: Any, pj: Path) -> None:
    """A ProjectError that says what is wrong where (msgspec's path, e.g. ``$.stages.track.key``)
    when ``data`` is not a project file of this schema."""
    try:
        msgspec.convert(data, _ProjectFile)
    except msgspec.ValidationError as e:
        msg = str(e)
        if "$.stages[...]" in msg and isinstance(data, dict) and isinstance(data.get("stages"), dict):
            for name, rec in data["stages"].items():  # msgspec does not name the key: find it
                try:
                    msgspec.convert(rec, _Stage)
                except msgspec.ValidationError:
                    msg = msg.replace("$.stages[...]", f"$.stages.{name}")
                    break
        raise ProjectError(f"{pj} is damaged ({msg}); restore it from a backup or create the project again.") from None


# MIGRATIONS[v] turns a schema-v project dict into a schema v+1 dict. Add one per schema bump.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_fingerprints: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> fp


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cached_fingerprint(path: Path) -> str:
    """file_fingerprint, memoised while the file's size/mtime/inode are unchanged."""
    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    fp = _fingerprints.get(k)
    if fp is None:
        fp = _fingerprints[k] = file_fingerprint(path)
    return fp


class Project:
    """A project folder. Use ``Project.create`` or ``Project.open``, not the constructor."""

    def __init__(self, root: Path, data: dict[str, Any]) -> None:
        self.root = root
        self.data = data
        self._seen = self._file_state()
        # one lock object per Project: re-entrant in a thread, exclusive between threads and processes
        self._lock = FileLock(root / LOCK_FILE, timeout=LOCK_WAIT_S)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the project's lock: every writer (a CLI job, another process, the editor) changes
        ``project.json`` under it, reading the current file first. A writer that waited
        ``LOCK_WAIT_S`` for it says which process holds it."""
        try:
            self._lock.acquire()
        except Timeout:
            raise ProjectError(
                f"{self.root} is being saved by another process ({_holder(self.root)}), which has held it for more than "
                f"{LOCK_WAIT_S:.0f} s; wait for it to finish or stop it."
            ) from None
        except OSError as e:
            raise ProjectError(f"cannot write in the project folder {self.root} ({e.strerror or e}); "
                               f"check its permissions or choose another project folder.") from e
        try:
            if self._lock.lock_counter == 1:
                _write_holder(self.root)
            yield
        finally:
            self._lock.release()

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Read-modify-write of ``project.json`` under the lock: ``change(data)`` edits the current
        file's data (never a stale copy), which is then saved."""
        with self.locked():
            self.refresh()
            change(self.data)
            self.save()

    def _file_state(self) -> tuple[int, int, int] | None:
        try:
            st = (self.root / PROJECT_FILE).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def refresh(self) -> None:
        """Re-read ``project.json`` when another job or process saved it since this object last
        read or wrote it (every save replaces the file, so its inode changes): stages read and
        update the current file, never a stale copy."""
        state = self._file_state()
        if state is None or state == self._seen:
            return
        try:
            data = json.loads((self.root / PROJECT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # unreadable now: keep what we have (open() reports a damaged file)
        try:
            check_schema(data, self.root / PROJECT_FILE)
        except ProjectError:
            return  # damaged now: keep what we have (open() says what is wrong)
        if data.get("schema_version") == SCHEMA_VERSION:
            data.setdefault("stages", {})
            self.data = data
        self._seen = state

    # -- lifecycle --

    @classmethod
    def create(cls, root: str | Path, video_path: str | Path) -> Project:
        """New project for ``video_path`` in ``root``; an existing project for the same video
        (same content, even if moved) is opened instead, one for another video is refused."""
        root = Path(root)
        video = Path(video_path).expanduser().resolve()
        if not video.is_file():
            raise ProjectError(f"video not found: {video}; check the path before creating a project.")
        fp = cached_fingerprint(video)
        if (root / PROJECT_FILE).exists():
            proj = cls.open(root)
            if proj.video_fingerprint != fp:
                raise ProjectError(
                    f"{root} already holds a project for another video ({proj.video_path.name}); "
                    f"choose an empty folder or open that project."
                )
            if proj.video_path != video:  # same content at a new place: follow it
                proj.update(lambda data: data["video"].__setitem__("path", str(video)))
            return proj
        try:
            (root / CACHE_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"cannot create project folder {root}: {e.strerror}; choose another.") from e
        data = {
            "schema_version": SCHEMA_VERSION,
            "created_at": _now(),
            "video": {"path": str(video), "fingerprint": fp, "size": video.stat().st_size},
            "stages": {},
        }
        proj = cls(root, data)
        proj.save()
        return proj

    @classmethod
    def open(cls, root: str | Path) -> Project:
        """Open an existing project, migrating an older schema (the old file is kept as .bak)."""
        root = Path(root)
        pj = root / PROJECT_FILE
        if not root.is_dir():
            raise ProjectError(f"project folder not found: {root}; check the path or create a project.")
        if not pj.is_file():
            raise ProjectError(
                f"{root} is not a DubStudio project (no {PROJECT_FILE}); pick the project folder "
                f"or create a new project there."
            )
        try:
            text = pj.read_text(encoding="utf-8")
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProjectError(
                f"{pj} is damaged ({e}); restore it from a backup or create the project again."
            ) from e
        except OSError as e:
            raise ProjectError(f"cannot read {pj}: {e.strerror}; check file permissions.") from e
        version = data.get("schema_version") if isinstance(data, dict) else None
        if not isinstance(version, int) or version < 1:
            raise ProjectError(
                f"{pj} is damaged (no valid schema_version); restore it from a backup or create "
                f"the project again."
            )
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"{root} was saved by a newer DubStudio (project schema {version}, this version "
                f"reads up to {SCHEMA_VERSION}); update DubStudio to open it."
            )
        if version < SCHEMA_VERSION:
            data = _migrate(data, version, pj)
            atomic_write_text(pj.with_name(f"{PROJECT_FILE}.v{version}.bak"), text)
        if not isinstance(data.get("video"), dict) or "path" not in data["video"]:
            raise ProjectError(f"{pj} is damaged (no source video recorded); create the project again.")
        check_schema(data, pj)
        data.setdefault("stages", {})
        proj = cls(root, data)
        if version < SCHEMA_VERSION:
            proj.save()
        return proj

    def save(self) -> None:
        with self.locked():
            atomic_write_json(self.root / PROJECT_FILE, self.data)
            self._seen = self._file_state()

    # -- source video --

    @property
    def video_path(self) -> Path:
        return Path(self.data["video"]["path"])

    @property
    def video_fingerprint(self) -> str:
        return str(self.data["video"].get("fingerprint", ""))

    def check_video(self) -> Path:
        """The source video's path; ProjectError if it is gone or its content changed."""
        p = self.video_path
        if not p.is_file():
            raise ProjectError(
                f"the project's video {p} is missing; put it back, or point the project at where it is now with "
                f"`dubstudio relink --project {self.root} NEW_PATH`."
            )
        if cached_fingerprint(p) != self.video_fingerprint:
            raise ProjectError(
                f"the project's video {p} has changed since the project was created; restore the "
                f"original or create a new project for the new video."
            )
        return p

    def relink(self, video: str | Path) -> Path:
        """Point the project at ``video``, the same content at a new place (a moved or renamed
        media folder); a different video is refused."""
        video = Path(video).expanduser().resolve()
        if not video.is_file():
            raise ProjectError(f"{video} not found; give the video's new path.")
        if cached_fingerprint(video) != self.video_fingerprint:
            raise ProjectError(f"{video} is not this project's video (its content differs from {self.video_path.name}'s); "
                               f"give the same file at its new place.")
        self.update(lambda data: data["video"].__setitem__("path", str(video)))
        return video

    # -- stage cache --

    def stage_key(self, name: str, inputs: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
        """Content key of a stage run. ``Path`` values in ``inputs`` are hashed by file content;
        other values (upstream keys, numbers, strings) are hashed as given. Put a ``version`` in
        ``settings`` and bump it when the stage's algorithm changes."""
        resolved = {}
        for k, v in inputs.items():
            if isinstance(v, PathLike):
                p = Path(v)
                if not p.is_file():
                    raise ProjectError(f"input '{k}' of stage '{name}' is missing: {p}; rerun the stage before it.")
                v = {"file_fingerprint": cached_fingerprint(p)}
            resolved[k] = v
        return settings_hash({"stage": name, "inputs": resolved, "settings": dict(settings)})

    def stage_record(self, name: str) -> dict[str, Any] | None:
        self.refresh()
        rec = self.data["stages"].get(name)
        return dict(rec) if rec is not None else None

    def stage_is_current(self, name: str, key: str) -> bool:
        """True only if the stage finished with this key and all its outputs still exist."""
        self.refresh()
        rec = self.data["stages"].get(name)
        if not rec or rec.get("key") != key:
            return False
        return all(self.path(rel).exists() for rel in rec.get("outputs", {}).values())

    def record_stage(
        self,
        name: str,
        key: str,
        outputs: Mapping[str, str],
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        """Mark a stage finished (call after its outputs are written) and save the project."""
        _check_name(name)
        outs = {}
        for label, rel in outputs.items():
            p = self.path(rel)
            if not p.exists():
                raise ProjectError(f"stage '{name}' output '{label}' was not written: {p}.")
            outs[label] = p.relative_to(self.root).as_posix()
        record = {"key": key, "outputs": outs, "metrics": dict(metrics or {}), "finished_at": _now()}
        self.update(lambda data: data["stages"].__setitem__(name, record))  # what other stages recorded meanwhile is kept

    def invalidate_stage(self, name: str) -> None:
        self.refresh()
        if name in self.data["stages"]:
            self.update(lambda data: data["stages"].pop(name, None))

    # -- paths --

    def path(self, rel: str | Path) -> Path:
        """``root / rel``, refusing absolute paths and '..' escapes (project files stay inside)."""
        rel = Path(rel)
        if rel.is_absolute() or ".." in rel.parts:
            raise ProjectError(f"project path must be relative and inside the project: {rel}")
        return self.root / rel

    def cache_dir(self, name: str) -> Path:
        """``cache/<name>/``, created if needed."""
        _check_name(name)
        d = self.root / CACHE_DIR / name
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"cannot create {d}: {e.strerror}; check free space and permissions.") from e
        return d

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, video={self.video_path.name!r})"


def _write_holder(root: Path) -> None:
    try:
        atomic_write_json(root / HOLDER_FILE, {"pid": os.getpid(), "host": socket.gethostname(), "since": _now(),
                                               "command": " ".join(sys.argv[:4])})
    except (OSError, ProjectError):
        pass  # only for the message; never a reason to fail a save


def _holder(root: Path) -> str:
    try:
        h = json.loads((root / HOLDER_FILE).read_text(encoding="utf-8"))
        return f"pid {h.get('pid')} on {h.get('host')}, `{h.get('command')}`, since {h.get('since')}"
    except (OSError, ValueError, AttributeError):
        return "a process whose name it did not leave"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"stage/cache name must be a simple name (letters, digits, _.-): {name!r}")


def _migrate(data: dict[str, Any], version: int, pj: Path) -> dict[str, Any]:
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(
                f"{pj} uses project schema {version}, which this DubStudio cannot upgrade; "
                f"open it with an older version or create the project again."
            )
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


class ChunkStore:
    """Resumable chunked results: ``chunk_00000.npz`` ... in ``directory``, valid for one ``key``.

    Opening the store with a different key (settings or inputs changed) deletes the old chunks, so
    a resumed job never mixes results of two configurations. Each chunk is written atomically, so
    a killed job leaves only whole chunks; resume by computing ``missing(n)``.
    """

    META = "meta.json"

    def __init__(self, directory: str | Path, key: str) -> None:
        self.dir = Path(directory)
        self.key = key
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.dir.glob(".*.tmp"):  # leftovers of a killed writer
            tmp.unlink(missing_ok=True)
        if self._stored_key() != key:
            self.clear()  # first clear, then record the key: a crash in between stays safe
            atomic_write_json(self.dir / self.META, {"format": 1, "key": key})

    def _stored_key(self) -> str | None:
        try:
            meta = json.loads((self.dir / self.META).read_text(encoding="utf-8"))
            return meta.get("key") if isinstance(meta, dict) else None
        except (OSError, ValueError):
            return None

    def _file(self, i: int) -> Path:
        if i < 0:
            raise ValueError(f"chunk index must be >= 0, got {i}")
        return self.dir / f"chunk_{i:05d}.npz"

    def has(self, i: int) -> bool:
        return self._file(i).is_file()

    def save(self, i: int, **arrays: np.ndarray) -> None:
        atomic_save_npz(self._file(i), **arrays)

    def load(self, i: int) -> dict[str, np.ndarray]:
        f = self._file(i)
        if not f.is_file():
            raise KeyError(f"chunk {i} is not in {self.dir}")
        try:
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            f.unlink(missing_ok=True)
            raise ProjectError(
                f"chunk {i} in {self.dir} was damaged and has been removed; run the job again to "
                f"recompute it."
            ) from e

    def indices(self) -> list[int]:
        """Indices of the chunks present, sorted."""
        return sorted(int(p.stem[6:]) for p in self.dir.glob("chunk_*.npz") if p.stem[6:].isdigit())

    def missing(self, n: int) -> list[int]:
        """Which of chunks ``0..n-1`` still have to be computed."""
        done = set(self.indices())
        return [i for i in range(n) if i not in done]

    def clear(self) -> None:
        for p in self.dir.glob("chunk_*.npz"):
            p.unlink(missing_ok=True)
