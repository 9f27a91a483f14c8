"""Crash-safe writes and content hashes for the project store (ARCHITECTURE rules 8 and 12).

Every write goes to a temp file in the target's folder, is flushed and fsynced, then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows) and the folder is fsynced so the
rename itself survives a power cut. A crash, a cancel or a full disk leaves either the old file or
the new one, never a torn mix, and never a stray temp file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path, PurePath
from typing import IO, Any

import numpy as np

from dubstudio.core.errors import ProjectError

_FULL_HASH_LIMIT = 64 * 2**20  # files up to this size are hashed whole
_SAMPLE = 8 * 2**20  # larger files: first, middle and last 8 MiB (+ size)
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # mkstemp makes 0600 files; give them the normal mode instead


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[IO[bytes]]:
    """Binary file handle whose content replaces ``path`` only if the ``with`` body succeeds."""
    path = Path(path)
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise _friendly(e, path) from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = path.stat().st_mode & 0o7777  # keep the permissions of the file we replace
        except FileNotFoundError:
            mode = _FILE_MODE
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _friendly(e, path) from e
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Pretty, diff-friendly JSON (indent 2, sorted keys, trailing newline)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8 (its bytes kept as surrogates): escaped, still JSON
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True, default=_json_default)
    atomic_write_text(path, text + "\n")


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` made atomic (and without numpy's habit of appending '.npz')."""
    with atomic_open(path) as f:
        np.savez_compressed(f, **arrays)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename; not possible (and not needed) on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _friendly(e: OSError, path: Path) -> ProjectError:
    if e.errno in _DISK_FULL:
        return ProjectError(
            f"disk full: could not write {path}; free some space and retry (nothing was overwritten)."
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ProjectError(
            f"cannot write {path}: {e.strerror}; choose a writable folder (nothing was overwritten)."
        )
    return ProjectError(f"could not write {path}: {e.strerror or e}; nothing was overwritten.")


# --- hashing -------------------------------------------------------------------------------------


def file_fingerprint(path: str | Path) -> str:
    """Content fingerprint: size + sha256 of the file (or of 3 x 8 MiB samples if > 64 MiB).

    Content-based on purpose: a copied or moved file (new mtime) keeps its fingerprint.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(f"dubstudio-fp1:{size}:".encode())
    with path.open("rb") as f:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(2**20), b""):
                h.update(block)
        else:
            for offset in (0, (size - _SAMPLE) // 2, size - _SAMPLE):
                f.seek(offset)
                h.update(f.read(_SAMPLE))
    return h.hexdigest()


def settings_hash(obj: Any) -> str:
    """Stable sha256 of ``obj`` as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _json_default(o: Any) -> Any:
    """JSON for the types settings and metrics actually contain."""
    if isinstance(o, PurePath):
        return o.as_posix()
    if isinstance(o, Fraction):
        return f"{o.numerator}/{o.denominator}"
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    raise TypeError(f"cannot store {type(o).__name__} in JSON: {o!r}")
