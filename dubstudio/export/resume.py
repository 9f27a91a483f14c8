"""A stopped export continues where it stopped; a re-export renders only what changed.

An export writes its frames in segments of a few seconds (whole render batches) into a work
folder beside the output (``.<name>.dubstudio-export``). A segment counts once it is closed and
listed in the folder's ``state.json`` (written atomically). The finished file is the segments
joined by stream copy, and its manifest lists each segment with its *key* and a digest of its
bytes.

A segment's key is a hash of everything that shapes its pixels: the renderer's weights (and
device), the source video, the painted mask, the export settings (the shot-wide part, ``base``),
and the segment's own frames (and a margin of neighbours) of the tracking, the final curves and
the audio windows the renderer hears. The next export to the same name reuses every segment whose
key is unchanged, from a stopped run's work folder or from the previous finished export itself
(checked against its digest), and renders only the others: a cancel, a full disk or a killed
process loses at most the segment being written, and re-exporting after a fix to a few frames
renders only the segments holding them. Segments start on multiples of the render batch, so a
reused segment is bit for bit what rendering it again would give. A renderer that cannot say what
it is (``fingerprint()``) gets no key, and its export renders everything every time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.core.errors import MediaError
from dubstudio.io.atomic import atomic_write_json, file_fingerprint, settings_hash

__all__ = ["ExportWork", "stopped_export", "stopped_in", "stopped_beside", "delete_stopped", "previous_export", "base_key", "segment_keys", "segment_length", "work_folder", "array_digest",
           "renderer_fingerprint"]

STATE = "state.json"
LOCK = "lock"
SEGMENT_S = 4.0  # seconds of frames per segment: what a cancel can lose, what a small fix re-renders
MARGIN = 8  # neighbouring frames whose curves a frame's render may read (the renderer's window)
_STATE_VERSION = 2
_TRACK_ROWS = ("has_face", "landmarks", "scale", "rotation", "translation", "controls", "residual", "crop")


def work_folder(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f".{out.name}.dubstudio-export")


def segment_length(fps: Fraction, batch_size: int) -> int:
    """Frames per segment: about ``SEGMENT_S`` seconds, a whole number of render batches (a
    segment rendered on its own must batch its frames exactly as a whole-shot render does)."""
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


def base_key(*, renderer_fp: str | None, tracking, mask_file: Path | None, video: Path, fmt_name: str, settings: dict,
             fps: Fraction) -> str | None:
    """The shot-wide part of every segment's key (None: nothing is ever reused)."""
    if renderer_fp is None:
        return None
    return settings_hash({
        "v": _STATE_VERSION,
        "renderer": renderer_fp,
        "model": [array_digest(tracking.identity), array_digest(tracking.residual_basis)],
        "frames": int(tracking.n_frames),
        "mask": file_fingerprint(mask_file) if mask_file is not None and Path(mask_file).is_file() else None,
        "video": file_fingerprint(video),
        "format": fmt_name,
        "settings": settings,
        "fps": Fraction(fps),
    })


def segment_keys(base: str | None, tracking, controls, mel, seg_len: int, window: int = 0) -> list[str | None]:
    """One key per segment of the shot: ``base`` and the segment's frames, with ``MARGIN`` (or the
    renderer's temporal ``window``, if wider) neighbours each side, of the tracking, the final
    curves and the audio windows."""
    n = tracking.n_frames
    margin = max(MARGIN, int(window))
    starts = range(0, n, seg_len)
    if base is None:
        return [None] * len(starts)
    keys = []
    for a in starts:
        lo, hi = max(0, a - margin), min(n, a + seg_len + margin)
        rows = {k: array_digest(np.asarray(getattr(tracking, k))[lo:hi]) for k in _TRACK_ROWS}
        keys.append(settings_hash({
            "base": base, "start": a, "stop": min(n, a + seg_len), "rows": rows,
            "controls": array_digest(None if controls is None else np.asarray(controls)[lo:hi]),
            "mel": array_digest(None if mel is None else np.asarray(mel)[lo:hi]),
        }))
    return keys


def stopped_export(out: Path) -> tuple[int, int] | None:
    """(frames finished, frames of the shot) of a stopped export to ``out``, or None: what the
    editor tells the user before exporting to that name again."""
    try:
        state = json.loads((work_folder(out) / STATE).read_text())
        segs = state.get("segments") or []
        done = sum(int(s["stop"]) - int(s["start"]) for s in segs if s.get("key"))
        return (done, int(state["frames"])) if done else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def stopped_in(folder: Path, exclude: str | None = None) -> list[dict]:
    """The stopped exports in ``folder`` (their work folders hold disk space until that name is
    exported again or they are deleted): name, frames finished, frames, bytes, work folder, and
    whether an export to that name is running right now (its lock is held by a live process)."""
    found = []
    try:
        candidates = sorted(Path(folder).glob(".*.dubstudio-export"))
    except OSError:
        return found
    for w in candidates:
        name = w.name.removeprefix(".").removesuffix(".dubstudio-export")
        if name == exclude or not w.is_dir():
            continue
        got = stopped_export(w.parent / name)
        if got is None:
            continue
        try:
            size = sum(f.stat().st_size for f in w.rglob("*") if f.is_file())
        except OSError:
            size = 0
        found.append({"output": name, "frames_finished": got[0], "frames": got[1], "bytes": size, "work_folder": w.name,
                      "running": _lock_held(w)})
    return found


def stopped_beside(out: Path) -> list[dict]:
    """Other stopped exports in ``out``'s folder (see ``stopped_in``)."""
    out = Path(out)
    return [st for st in stopped_in(out.parent, exclude=out.name) if not st["running"]]


def delete_stopped(folder: Path, names: list[str] | None = None) -> list[dict]:
    """Delete the work folders of the stopped exports in ``folder`` (all, or those whose output
    name is in ``names``); an export running now is left alone. Returns each with ``deleted``."""
    out = []
    for st in stopped_in(folder):
        if names is not None and st["output"] not in names:
            continue
        if st["running"]:
            out.append({**st, "deleted": False, "reason": "an export to this name is running"})
            continue
        shutil.rmtree(Path(folder) / st["work_folder"], ignore_errors=True)
        gone = not (Path(folder) / st["work_folder"]).exists()
        out.append({**st, "deleted": gone, **({} if gone else {"reason": "could not be removed (permissions?)"})})
    return out


def _lock_held(work: Path) -> bool:
    try:
        pid = int((work / LOCK).read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    return bool(pid) and _alive(pid)  # (this process too: the editor exports in a worker thread)


def previous_export(out: Path) -> bool:
    """Whether ``out`` holds a finished export this version can take unchanged segments from."""
    from dubstudio.export.mark import read_mark

    out = Path(out)
    if not out.exists():
        return False
    try:
        man = read_mark(out).get("manifest")
    except Exception:  # noqa: BLE001 - unreadable: nothing to take
        return False
    return isinstance(man, dict) and bool(man.get("render_segments"))


class ExportWork:
    """The work folder of one export: its planned segments, those finished (``segments``, by
    start frame) and the lock that keeps a second export to the same name out while this one runs.

    ``open`` takes the finished segments a stopped run left whose keys still match, and clears
    the rest; ``reuse_previous`` then takes matching segments from the previous finished export."""

    def __init__(self, out: Path, keys: list[str | None], n_frames: int, seg_len: int) -> None:
        self.out = Path(out)
        self.path = work_folder(self.out)
        self.keys = list(keys)
        self.n_frames = int(n_frames)
        self.seg_len = int(seg_len)
        self.segments: dict[int, dict] = {}
        self.from_stopped = 0  # frames taken over from a stopped run
        self.from_previous = 0  # frames taken from the previous finished export
        self.restarted = False  # a stopped run's segments were dropped (all changed, or --restart)
        self.asked_restart = False
        self._locked = False

    @classmethod
    def open(cls, out: Path, keys: list[str | None], n_frames: int, seg_len: int, resume: bool = True) -> ExportWork:
        w = cls(out, keys, n_frames, seg_len)
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

    # -- the plan --

    @property
    def reusable(self) -> bool:
        return bool(self.keys) and self.keys[0] is not None

    def plan(self) -> list[tuple[int, int]]:
        """(start, stop) of every segment of the shot."""
        return [(a, min(a + self.seg_len, self.n_frames)) for a in range(0, self.n_frames, self.seg_len)]

    def key_of(self, start: int) -> str | None:
        return self.keys[start // self.seg_len]

    def missing_runs(self) -> list[range]:
        """The frames still to render, as runs of consecutive missing segments."""
        runs: list[range] = []
        for a, b in self.plan():
            if a in self.segments:
                continue
            if runs and runs[-1].stop == a:
                runs[-1] = range(runs[-1].start, b)
            else:
                runs.append(range(a, b))
        return runs

    @property
    def done(self) -> int:
        return sum(s["stop"] - s["start"] for s in self.segments.values())

    @property
    def complete(self) -> bool:
        return all(a in self.segments for a, _ in self.plan())

    def ordered(self) -> list[dict]:
        return [self.segments[a] for a in sorted(self.segments)]

    def totals(self, key: str) -> int:
        return int(sum(s.get(key, 0) for s in self.segments.values()))

    def segment_of(self, index: int) -> tuple[int, int]:
        start = index - index % self.seg_len
        return start, min(start + self.seg_len, self.n_frames)

    def note(self) -> str | None:
        """What this export took from earlier work, for the user."""
        parts = []
        if self.from_stopped:
            parts.append(f"continued a stopped export ({self.from_stopped} frames were finished)")
        if self.from_previous:
            parts.append(f"{self.from_previous} frames unchanged since the previous export were kept")
        if parts:
            return "; ".join(parts) + f"; {self.n_frames - self.from_stopped - self.from_previous} rendered"
        if self.restarted:
            return "started over, as asked" if self.asked_restart else "started over: nothing the stopped export finished could be kept"
        return None

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
        state_file = self.path / STATE
        old = None
        if state_file.is_file():
            try:
                old = json.loads(state_file.read_text())
            except (OSError, ValueError):
                old = None
        old_segs = old.get("segments", []) if isinstance(old, dict) and old.get("version") == _STATE_VERSION else []
        if resume and self.reusable and isinstance(old, dict) and old.get("frames") == self.n_frames and old.get("segment") == self.seg_len:
            for s in old_segs:
                a = s.get("start")
                if isinstance(a, int) and 0 <= a < self.n_frames and a % self.seg_len == 0 and s.get("key") == self.key_of(a) and self._complete(s):
                    self.segments[a] = s
                    self.from_stopped += s["stop"] - s["start"]
        self.restarted = bool(old_segs) and not self.segments
        self.asked_restart = not resume
        keep = {f for s in self.segments.values() for f in s["files"]}
        for p in self.path.iterdir():  # everything else goes (a torn segment, changed ones)
            if p.name in (LOCK, STATE) or p.name in keep:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        self._save()

    def _complete(self, seg: dict) -> bool:
        files = seg.get("files") or []
        return bool(files) and all((self.path / f).is_file() for f in files)

    def _save(self) -> None:
        try:
            atomic_write_json(self.path / STATE, {
                "version": _STATE_VERSION, "frames": self.n_frames, "segment": self.seg_len,
                "output": self.out.name, "segments": self.ordered(),
            })
        except Exception as e:  # noqa: BLE001 - ProjectError or OSError: say it as an export error
            raise MediaError(f"cannot write the export's progress beside {self.out}: {e}") from e

    def record(self, start: int, stop: int, files: list[str], digest: str, **counts: int) -> None:
        """A finished segment (its files closed)."""
        if (start, stop) != self.segment_of(start) or start % self.seg_len:
            raise MediaError(f"export segment {start}-{stop} is not one of the shot's; export again.")
        self.segments[start] = {"start": int(start), "stop": int(stop), "files": list(files), "key": self.key_of(start),
                                "digest": digest, **{k: int(v) for k, v in counts.items()}}
        if self.reusable:
            self._save()

    def manifest_segments(self) -> list[dict]:
        """What the finished export's manifest lists, for the next export to reuse."""
        return [{k: s[k] for k in ("start", "stop", "key", "digest", "with_face", "marked", "width", "height")} for s in self.ordered()]

    def discard(self) -> None:
        """The export is finished (or will never resume): remove the folder."""
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def keep_or_discard(self) -> None:
        """After a stop: keep what can be reused, remove what cannot."""
        if not self.reusable or not self.segments:
            self.discard()
        else:
            self.release()


def previous_segments(manifest: dict | None, work: ExportWork) -> list[dict]:
    """The previous export's segments (from its manifest) whose keys match this export's plan
    and that the work folder does not hold yet."""
    if not work.reusable or not isinstance(manifest, dict):
        return []
    segs = manifest.get("render_segments")
    if manifest.get("frames") != work.n_frames or manifest.get("segment_frames") != work.seg_len or not isinstance(segs, list):
        return []
    out = []
    for s in segs:
        try:
            a = int(s["start"])
            if a % work.seg_len == 0 and 0 <= a < work.n_frames and a not in work.segments and s["key"] == work.key_of(a):
                out.append(s)
        except (KeyError, TypeError, ValueError):
            continue
    return out


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
