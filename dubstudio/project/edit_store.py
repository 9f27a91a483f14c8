"""One way to keep the user's edits in a project: a JSON document, an autosave, npz payloads.

Curve edits (``project.curve_store``), painted masks (``masks.store``) and tracking corrections
(``tracking.correction_store``) are all stored the same way, by a subclass of ``EditFileStore``:

- one JSON document (``FILE``) with a ``kind``, a ``schema_version`` and when it was saved, written
  atomically; a newer schema is refused with a message, a damaged file named with what to do;
- an autosave (``AUTOSAVE_FILE``) in the same format, offered for recovery when it is newer than
  the save (``recovery_available``), dropped by a save;
- large arrays go to npz payloads named by their content hash and written *before* the JSON that
  names them, so a crash between the two leaves the previous save intact; payloads that neither
  the save nor the autosave names are deleted afterwards (never while either is unreadable).

A subclass says what the document holds (``_body``) and how to read it back; the rest is here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import atomic_save_npz, atomic_write_json
from dubstudio.project.store import Project


def array_sha256(*arrays: np.ndarray, names: Sequence[str] | None = None) -> str:
    """sha256 of arrays' dtypes, shapes and bytes (each prefixed by its name when ``names`` is
    given): how the stores name payloads and check what they load."""
    h = hashlib.sha256()
    for i, a in enumerate(arrays):
        a = np.ascontiguousarray(a)
        h.update(f"{names[i] if names is not None else ''}{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class EditFileStore:
    """Saves, autosaves and recovers one kind of edits of one project."""

    KIND = ""  # e.g. "dubstudio.curves"
    SCHEMA_VERSION = 1
    FILE = ""  # project-relative path of the saved document
    AUTOSAVE_FILE = ""
    PAYLOAD_PREFIX: str | None = None  # payloads are PREFIX-<hash>.npz beside the document
    NOUN = "edits"  # "not a DubStudio <NOUN> file"
    SCHEMA_NOUN = "edits"  # "(<SCHEMA_NOUN> schema 3, ...)"
    THESE = "these edits"  # "update DubStudio to open <THESE>"
    FIX = "delete it, or restore it from a backup"  # what to do with a damaged document

    def __init__(self, project: Project) -> None:
        self.project = project

    @property
    def path(self) -> Path:
        return self.project.path(self.FILE)

    @property
    def autosave_path(self) -> Path:
        return self.project.path(self.AUTOSAVE_FILE)

    def exists(self) -> bool:
        return self.path.is_file()

    def damaged(self, path: Path) -> str:
        """How a damaged document is named in messages."""
        return f"{path} is damaged"

    # -- writing --

    def save(self, obj: Any) -> Path | None:
        """Write the document (atomic) and drop the autosave it supersedes; the document's path,
        or None when the subclass writes nothing for ``obj`` (no edits)."""
        self._write(self.path, obj, autosave=False)
        self.autosave_path.unlink(missing_ok=True)
        self._collect_garbage()
        return self.path if self.path.is_file() else None

    def autosave(self, obj: Any) -> Path:
        """Crash-safe snapshot of unsaved edits."""
        self._write(self.autosave_path, obj, autosave=True)
        self._collect_garbage()
        return self.autosave_path

    def discard_autosave(self) -> None:
        self.autosave_path.unlink(missing_ok=True)
        self._collect_garbage()

    def _write(self, path: Path, obj: Any, autosave: bool) -> None:
        body = self._body(obj, path.parent)
        if body is None:  # nothing to keep: no document (a reset shot stays clean)
            path.unlink(missing_ok=True)
            return
        self._mkdir(path.parent)
        atomic_write_json(path, {
            "schema_version": self.SCHEMA_VERSION,
            "kind": self.KIND,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "saved_ns": time.time_ns(),
            **body,
        })

    def _body(self, obj: Any, folder: Path) -> dict[str, Any] | None:
        """The document's content for ``obj`` (payloads written with ``_write_payload`` into
        ``folder`` first), or None to write no document."""
        raise NotImplementedError

    @staticmethod
    def _mkdir(folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"cannot create {folder}: {e.strerror}; check free space and permissions.") from e

    def _write_payload(self, folder: Path, sha: str, arrays: dict[str, np.ndarray]) -> str:
        """``PREFIX-<sha16>.npz`` in ``folder`` (kept when present: its name is its content)."""
        self._mkdir(folder)
        name = f"{self.PAYLOAD_PREFIX}-{sha[:16]}.npz"
        if not (folder / name).is_file():
            atomic_save_npz(folder / name, **arrays)
        return name

    def _payload_name(self, doc: dict[str, Any]) -> str | None:
        """The payload file a document names (for garbage collection)."""
        return None

    def _collect_garbage(self) -> None:
        if self.PAYLOAD_PREFIX is None:
            return
        used = set()
        for p in (self.path, self.autosave_path):
            if p.is_file():
                try:
                    used.add(self._payload_name(json.loads(p.read_text(encoding="utf-8"))))
                except (OSError, ValueError, AttributeError):
                    return  # a damaged document: never delete data it might reference
        for f in self.path.parent.glob(f"{self.PAYLOAD_PREFIX}-*.npz"):
            if f.name not in used:
                f.unlink(missing_ok=True)

    # -- reading --

    def recovery_available(self) -> bool:
        """An autosave newer than the last save (or with no save at all) exists."""
        auto = self._saved_ns(self.autosave_path)
        if auto is None:
            return False
        saved = self._saved_ns(self.path) if self.exists() else None
        return saved is None or auto > saved

    @staticmethod
    def _saved_ns(path: Path) -> int | None:
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["saved_ns"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _read_document(self, path: Path) -> dict[str, Any]:
        """The document at ``path``, checked for its kind and schema; a ProjectError that says
        what to do when it is damaged, unreadable or from a newer DubStudio."""
        what = self.damaged(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProjectError(f"{what} ({e}); {self.FIX}.") from e
        except OSError as e:
            raise ProjectError(f"cannot read {path}: {e.strerror}; check file permissions.") from e
        if not isinstance(d, dict) or d.get("kind") != self.KIND or not isinstance(d.get("schema_version"), int):
            raise ProjectError(f"{what} (not a DubStudio {self.NOUN} file); {self.FIX}.")
        if d["schema_version"] > self.SCHEMA_VERSION:
            raise ProjectError(
                f"{path} was saved by a newer DubStudio ({self.SCHEMA_NOUN} schema {d['schema_version']}, this "
                f"version reads up to {self.SCHEMA_VERSION}); update DubStudio to open {self.THESE}."
            )
        return d

    @staticmethod
    def _load_payload(f: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The arrays ``keys`` of payload ``f``; OSError/KeyError/ValueError when it is missing or
        damaged (the caller says what to do)."""
        try:
            with np.load(f, allow_pickle=False) as z:
                return {k: np.array(z[k]) for k in keys}
        except (EOFError, zipfile.BadZipFile) as e:
            raise ValueError(str(e) or type(e).__name__) from e
