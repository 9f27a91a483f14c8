"""The cut handed back (``dubstudio conform export``): the same timeline, each dubbed shot's clip
pointing at its export, every record range and source range untouched, so the editor relinks in
their NLE. A shot whose export is missing or is not that shot's export keeps its original media
and is listed.

The export of a shot file carries the shot file's start timecode (the source timecode of its first
frame, head handle included), so the clip's source range, in source timecode, falls inside the
export as it fell inside the original media: only the media reference changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from dubstudio.conform.cut import frames_of, picture_clips, read_timeline, record_range
from dubstudio.conform.shots import read_manifest
from dubstudio.core.errors import DubStudioError


@dataclass
class Relinked:
    otio: Path
    edl: Path | None
    relinked: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # "NNN name: why"

    def to_json(self) -> dict:
        return {"otio": str(self.otio), "edl": str(self.edl) if self.edl else None, "relinked": self.relinked, "kept": self.kept}

    def describe(self) -> str:
        text = f"{len(self.relinked)} shot(s) relinked to their dubs -> {self.otio}" + (f" and {self.edl}" if self.edl else "")
        if self.kept:
            text += f"\n{len(self.kept)} shot(s) keep their original media:\n  " + "\n  ".join(self.kept)
        return text


def _export_problem(entry: dict) -> str | None:
    """Why ``entry``'s export cannot stand in for its clip, or None."""
    from dubstudio.io.timecode import read_start_timecode
    from dubstudio.io.video import VideoReader

    export = Path(entry["export"])
    if not export.is_file():
        return f"no export at {export}"
    try:
        with VideoReader(export) as r:
            n, fps = r.n_frames, Fraction(r.fps)
    except DubStudioError as e:
        return f"its export {export.name} cannot be read: {e}"
    want = entry["head"] + entry["record_frames"] + entry["tail"]
    if n != want:
        return f"its export {export.name} has {n} frames, the shot {want} (an unfinished or older export?)"
    tc = read_start_timecode(export)
    if tc != entry["shot_tc_in"]:
        return f"its export {export.name} starts at {tc or 'no timecode'}, the shot at {entry['shot_tc_in']}"
    if entry.get("media_rate") and fps != Fraction(entry["media_rate"]):
        return f"its export {export.name} runs at {float(fps):g} fps, the shot at {float(Fraction(entry['media_rate'])):g}"
    return None


def relink_cut(folder: str | Path, out: str | Path, edl: bool = True) -> Relinked:
    """Write the conformed cut as OTIO at ``out`` (and an EDL beside it): see the module's docstring."""
    import opentimelineio as otio

    manifest = read_manifest(folder)
    cut_path = Path(manifest["cut"])
    rate = Fraction(manifest["rate"])
    timeline = read_timeline(cut_path, rate)
    clips = picture_clips(timeline)
    out = Path(out)
    if out.suffix.lower() != ".otio":
        raise DubStudioError(f"{out.name}: the conformed cut is written as OTIO; name it {out.stem}.otio.")
    result = Relinked(out, out.with_suffix(".edl") if edl else None)
    for entry in manifest["shots"]:
        label = f"{entry['index']:03d} {entry['name']}"
        i = entry["index"] - 1
        if i >= len(clips) or record_range(clips[i], timeline)[:2] != (entry["record_in"], entry["record_frames"]):
            raise DubStudioError(f"{cut_path.name} changed since it was imported (shot {label} is not where it was); "
                                 f"import it again.")
        why = _export_problem(entry)
        if why:
            result.kept.append(f"{label}: {why}")
            continue
        export = Path(entry["export"])
        clip, mrate = clips[i], float(Fraction(entry["media_rate"]))
        n = entry["head"] + entry["record_frames"] + entry["tail"]
        clip.media_reference = otio.schema.ExternalReference(
            target_url=export.as_uri(),
            available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(frames_of(entry["shot_tc_in"], mrate), mrate),
                                                    otio.opentime.RationalTime(n, mrate)))
        clip.metadata.setdefault("dubstudio", {})
        clip.metadata["dubstudio"]["dubbed"] = {"language": manifest.get("language"), "original_media": entry.get("media")}
        cmx = clip.metadata.get("cmx_3600")
        if cmx is not None:  # an EDL's reel names the tape the source came from; the export is its own
            cmx["reel"] = export.stem[:32]
            cmx["comments"] = [c for c in cmx.get("comments", []) if not str(c).upper().startswith("SOURCE FILE")]
        result.relinked.append(label)
    from dubstudio.io.atomic import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, otio.adapters.write_to_string(timeline, "otio_json"))
    if result.edl is not None:
        try:
            text = otio.adapters.write_to_string(timeline, "cmx_3600", rate=float(rate))
        except Exception as e:  # noqa: BLE001 - the EDL writer refuses what an EDL cannot hold
            result.kept.append(f"(no EDL written: {type(e).__name__}: {e})")
            result.edl = None
        else:
            atomic_write_text(result.edl, text)
    return result
