"""Two tools around exports: is a file marked as synthetic media (``check_mark_job``), and which
stopped exports hold disk space in a folder (``stopped_exports_job``, optionally deleting them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dubstudio.core.errors import DubStudioError
from dubstudio.export.mark import detect, read_mark
from dubstudio.export.resume import delete_stopped, stopped_in


class CheckMarkResult(dict):
    def to_json(self) -> dict:
        return dict(self)

    def describe(self) -> str:
        wm, path = self["watermark"], Path(self["path"])
        return (f"{path.name}: metadata says {'SYNTHETIC' if self['metadata_synthetic'] else 'nothing'}; "
                f"watermark score {wm['score']} over {wm['frames']} frames ({'present' if wm['present'] else 'not found'}, "
                f"threshold {wm['threshold']})"
                + (f", found at {wm['size'][0]}x{wm['size'][1]} (the file was scaled)" if wm.get("size") else ""))


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080), or a clear error."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise DubStudioError(f"--original-size {text}: give WxH, e.g. 1920x1080") from None
    return w, h


def check_mark_job(path: Path, max_frames: int = 300, original_size: tuple[int, int] | None = None,
                   rescaled: bool = False) -> CheckMarkResult:
    """Whether ``path`` (a video or a PNG folder) carries DubStudio's synthetic mark: the
    metadata manifest, and the invisible watermark (looked for at ``original_size``, or at every
    larger standard size with ``rescaled``, when the file may have been scaled)."""
    path = Path(path)
    if not path.exists():
        raise DubStudioError(f"{path} not found; give an exported video or PNG folder.")
    meta = read_mark(path)
    sizes = [original_size] if original_size else ("larger-standard" if rescaled else None)
    wm = detect(path, max_frames=max_frames, sizes=sizes)
    return CheckMarkResult({"path": str(path), "metadata_synthetic": meta["synthetic"], "manifest": meta.get("manifest"),
                            "watermark": wm, "synthetic": bool(meta["synthetic"] or wm["present"])})


@dataclass
class StoppedExportsResult:
    folder: Path
    stopped: list[dict] | None = None  # listed
    deleted: list[dict] | None = None  # with delete: what was deleted or kept, and why

    @property
    def ok(self) -> bool:
        return all(d["deleted"] for d in self.deleted or [])

    def to_json(self) -> dict:
        if self.deleted is not None:
            return {"folder": str(self.folder), "deleted": self.deleted,
                    "bytes_freed": sum(d["bytes"] for d in self.deleted if d["deleted"])}
        return {"folder": str(self.folder), "stopped": self.stopped}

    def describe(self) -> str:
        if self.deleted is not None:
            if not self.deleted:
                return f"no stopped exports in {self.folder}"
            freed = sum(d["bytes"] for d in self.deleted if d["deleted"])
            lines = [f"deleted the stopped export to {d['output']} ({d['frames_finished']} of {d['frames']} frames, "
                     f"{d['bytes'] / 2**20:.0f} MB)" if d["deleted"] else f"kept {d['output']}: {d['reason']}" for d in self.deleted]
            return "\n".join(lines + [f"{freed / 2**20:.0f} MB freed"])
        if not self.stopped:
            return f"no stopped exports in {self.folder}"
        lines = [f"{st['output']}: {st['frames_finished']} of {st['frames']} frames, {st['bytes'] / 2**20:.0f} MB in {st['work_folder']}"
                 + (" (exporting now)" if st["running"] else "") for st in self.stopped]
        return "\n".join(lines) + "\nexport to a name again to continue it, or delete with --delete"


def stopped_exports_job(folder: Path, names: list[str] | None = None, delete: bool = False) -> StoppedExportsResult:
    """The stopped exports in ``folder`` (or an export's file's folder), those called ``names``
    only when given; with ``delete`` their finished segments are deleted (a running one is kept)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent  # an export's file: the folder it is in
    if not folder.is_dir():
        raise DubStudioError(f"{folder} is not a folder; give the folder the exports were written to.")
    if delete:
        return StoppedExportsResult(folder, deleted=delete_stopped(folder, names))
    return StoppedExportsResult(folder, stopped=[st for st in stopped_in(folder) if names is None or st["output"] in names])
