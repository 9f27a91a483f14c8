"""A long export continues where it stopped.

An export writes its frames in segments of a few seconds into a work folder beside the output
(``.<name>.dubstudio-export``). A segment counts once it is closed and listed in the folder's
``state.json`` (written atomically). A cancel, an error, a full disk or a killed process loses at
most the segment being written: the next export to the same name with the same *export key*
renders only the frames that are missing, and the finished file is assembled from the segments.

The key is a hash of everything that shapes the pixels: the renderer's weights (and device), the
tracking, the final curves, the painted mask, the dubbed audio the renderer hears, the source
video and the export settings. Segments start on multiples of the render batch, so a resumed
export is bit for bit the export that was not interrupted. A renderer that cannot say what it
is (``fingerprint()``) gets no key, and its export starts over every time.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.errors import MediaError
from dubstudio.io.atomic import atomic_write_json, file_fingerprint, settings_hash

__all__ = ["ExportWork", "stopped_export", "export_key", "segment_length", "work_folder", "array_digest", "renderer_fingerprint"]

STATE = "state.json"
LOCK = "lock"
SEGMENT_S = 4.0  # seconds of frames per segment: what a cancel can lose
_STATE_VERSION = 1


def work_folder(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f".{out.name}.dubstudio-export")


def segment_length(fps: Fraction, batch_size: int) -> int:
    """Frames per segment: about ``SEGMENT_S`` seconds, a whole number of render batches (a
    resumed render must batch its frames exactly as the first run did)."""
    b = max(1, int(batch_size))
    return b * max(1, math.ceil(float(fps) * SEGMENT_S / b))


def array_digest(a) -> str | None:
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}:{a.shape}:".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def renderer_fingerprint(renderer) -> str | None:
    fp = getattr(renderer, "fingerprint", None)
    return fp() if callable(fp) else None


def export_key(*, renderer_fp: str | None, tracking, controls, mel, mask_file: Path | None, video: Path,
               fmt_name: str, settings: dict, n_frames: int, fps: Fraction) -> str | None:
    """The hash that must match for finished segments to be reused (None: never reuse)."""
    if renderer_fp is None:
        return None
    track = {k: array_digest(getattr(tracking, k)) for k in ("has_face", "identity", "residual_basis", "scale", "rotation",
                                                             "translation", "controls", "residual", "crop")}
    return settings_hash({
        "v": _STATE_VERSION,
        "renderer": renderer_fp,
        "tracking": track,
        "controls": array_digest(controls),
        "mel": array_digest(mel),
        "mask": file_fingerprint(mask_file) if mask_file is not None and Path(mask_file).is_file() else None,
        "video": file_fingerprint(video),
        "format": fmt_name,
        "settings": settings,
        "frames": int(n_frames),
        "fps": Fraction(fps),
    })


def stopped_export(out: Path) -> tuple[int, int] | None:
    """(frames finished, frames of the shot) of a stopped export to ``out``, or None: what the
    editor tells the user before exporting to that name again."""
    import json

    try:
        state = json.loads((work_folder(out) / STATE).read_text())
        segs = state.get("segments") or []
        return (int(segs[-1]["stop"]), int(state["frames"])) if segs and state.get("key") else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class ExportWork:
    """The work folder of one export: its finished segments and the lock that keeps a second
    export to the same name out while this one runs.

    ``open`` reuses the segments a previous run left when its key matches (and ``resume``), and
    clears them otherwise; ``note`` says which happened, for the user."""

    def __init__(self, out: Path, key: str | None, n_frames: int, seg_len: int) -> None:
        self.out = Path(out)
        self.path = work_folder(self.out)
        self.key = key
        self.n_frames = int(n_frames)
        self.seg_len = int(seg_len)
        self.segments: list[dict] = []
        self.resumed_from = 0
        self.note: str | None = None
        self._locked = False

    @classmethod
    def open(cls, out: Path, key: str | None, n_frames: int, seg_len: int, resume: bool = True) -> ExportWork:
        w = cls(out, key, n_frames, seg_len)
        try:
            w.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MediaError(f"cannot write beside {w.out}: {e.strerror or e}; choose a writable folder.") from e
        w._lock()
        try:
            w._load(resume)
        except BaseException:
            w.release()
            raise
        return w

    # -- the lock --

    def _lock(self) -> None:
        lock = self.path / LOCK
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            busy = MediaError(f"another export to {self.out.name} is running (process {pid}); wait for it or choose another name.")
            if pid and _alive(pid):
                raise busy from None
            try:
                lock.unlink(missing_ok=True)  # left by a killed export
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except OSError:
                raise busy from None
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd  # held open while the export runs
        self._locked = True

    def release(self) -> None:
        """Unlock; the finished segments stay for the next run."""
        if self._locked:
            os.close(self._lock_fd)
            (self.path / LOCK).unlink(missing_ok=True)
            self._locked = False

    # -- state --

    def _load(self, resume: bool) -> None:
        import json

        state_file = self.path / STATE
        old = None
        if state_file.is_file():
            try:
                old = json.loads(state_file.read_text())
            except (OSError, ValueError):
                old = None
        reusable = (
            resume and self.key is not None and isinstance(old, dict) and old.get("key") == self.key
            and old.get("frames") == self.n_frames and old.get("segment") == self.seg_len
        )
        if reusable:
            segs = []
            for s in old.get("segments", []):  # a prefix of whole segments whose files are all there
                if s.get("start") != (segs[-1]["stop"] if segs else 0) or not self._complete(s):
                    break
                segs.append(s)
            self.segments = segs
            self.resumed_from = self.done
            if self.done:
                self.note = f"continued a stopped export: frames 0-{self.done - 1} were kept, {self.n_frames - self.done} rendered"
        elif old is not None and old.get("segments"):
            self.note = ("started over: the earlier stopped export was made from other settings, curves or weights"
                         if resume else "started over, as asked")
        if not self.segments:
            self._clear()
        self._save()

    def _complete(self, seg: dict) -> bool:
        files = seg.get("files") or []
        return bool(files) and all((self.path / f).is_file() for f in files)

    def _clear(self) -> None:
        for p in self.path.iterdir():
            if p.name == LOCK:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    def _save(self) -> None:
        try:
            atomic_write_json(self.path / STATE, {
                "version": _STATE_VERSION, "key": self.key, "frames": self.n_frames, "segment": self.seg_len,
                "output": self.out.name, "segments": self.segments,
            })
        except Exception as e:  # noqa: BLE001 - ProjectError or OSError: say it as an export error
            raise MediaError(f"cannot write the export's progress beside {self.out}: {e}") from e

    @property
    def done(self) -> int:
        return self.segments[-1]["stop"] if self.segments else 0

    def totals(self, key: str) -> int:
        return int(sum(s.get(key, 0) for s in self.segments))

    def segment_of(self, index: int) -> tuple[int, int]:
        start = index - index % self.seg_len
        return start, min(start + self.seg_len, self.n_frames)

    def record(self, start: int, stop: int, files: list[str], **counts: int) -> None:
        """A finished segment (its files closed): listed only when the key allows resuming."""
        if start != self.done:
            raise MediaError(f"export segment {start}-{stop} does not follow frame {self.done}; export again.")
        self.segments.append({"start": int(start), "stop": int(stop), "files": list(files), **{k: int(v) for k, v in counts.items()}})
        if self.key is not None:
            self._save()

    def discard(self) -> None:
        """The export is finished (or will never resume): remove the folder."""
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def keep_or_discard(self) -> None:
        """After a stop: keep what can be resumed, remove what cannot."""
        if self.key is None or not self.segments:
            self.discard()
        else:
            self.release()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it there; a running export holds the lock open
        return False  # (the unlink that follows then fails: see _lock)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
