"""An editor's cut read as dubbing shots (``dubstudio conform import``).

Editorial hands departments a cut as an EDL, an OTIO file, FCP 7 XML or FCPX XML; OpenTimelineIO
and its adapters read them all into one timeline model, so nothing here parses a format itself.
Every clip on the picture track (the first video track; clips on others are reported, since a
dubbed shot must be the one picture the cut shows at that time) becomes a ``CutShot``: its source
media and source range (in the media's own timecode), its record range on the cut's timeline and
its actor.

The actor, by the first convention that applies (docs/conform.md):
1. the clip's OTIO metadata ``{"dubstudio": {"actor": NAME}}``;
2. a marker on the clip named ``actor:NAME`` (an EDL ``* LOC:`` comment, an NLE marker);
3. ``[NAME]`` in the clip's name (``sh010 [anna]``).

A clip's media is its media reference's file (an EDL's ``* FROM CLIP:`` / ``* FROM FILE:``, or a
``* SOURCE FILE:`` comment), else a file in the media folders given whose name (without suffix)
is the clip's name or its reel's. Everything a later step would trip on is found here, with the
shot named, before any job runs: missing or unreadable media, a source range outside the media, a
frame rate that differs from the cut's, overlapping picture clips, and (``check_faces``) clips
with no face.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

from dubstudio.core.errors import DubStudioError
from dubstudio.core.timebase import frames_since_midnight, parse_timecode, timecode_at

CUT_SUFFIXES = {".edl": "cmx_3600", ".otio": "otio_json", ".otioz": "otioz", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml"}
MEDIA_SUFFIXES = (".mov", ".mp4", ".mxf", ".m4v", ".avi", ".mkv")
_ACTOR_IN_NAME = re.compile(r"\[([^\]]+)\]")
_ACTOR_MARKER = re.compile(r"^\s*actor\s*[:=]\s*(.+?)\s*$", re.IGNORECASE)

__all__ = ["Cut", "CutShot", "read_cut", "read_timeline", "picture_clips", "record_range", "tc_of", "frames_of"]


@dataclass
class CutShot:
    """One picture clip of the cut: what to dub, from which media frames, where it sits in the cut."""

    index: int  # 1-based position among the picture track's clips (the conform finds the clip by it)
    name: str  # the clip's name without the actor tag (``event 003`` when the clip has none)
    media: Path | None
    actor: str
    record_in: int  # frames at the cut's rate from 00:00:00:00
    record_frames: int
    source_in: int  # frames at the media's rate from 00:00:00:00 (the media's own timecode)
    media_rate: Fraction | None = None
    media_start: int = 0  # the media's first frame, frames from 00:00:00:00
    media_frames: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def first_frame(self) -> int:
        """The shot's first frame as an index into its media file."""
        return self.source_in - self.media_start

    def describe(self, rate: Fraction) -> str:
        where = f"{tc_of(self.record_in, rate)}-{tc_of(self.record_in + self.record_frames, rate)}"
        src = f"{self.media.name if self.media else '(no media)'} {tc_of(self.source_in, self.media_rate or rate)}"
        return f"{self.index:03d} {self.name}: record {where}, {self.record_frames} frames, source {src}, actor {self.actor or '(none)'}"

    def to_json(self, rate: Fraction) -> dict:
        d = asdict(self)
        d["media"] = str(self.media) if self.media else None
        d["media_rate"] = str(self.media_rate) if self.media_rate else None
        d |= {"record_tc_in": tc_of(self.record_in, rate), "record_tc_out": tc_of(self.record_in + self.record_frames, rate),
              "source_tc_in": tc_of(self.source_in, self.media_rate or rate)}
        return d


@dataclass
class Cut:
    path: Path
    rate: Fraction
    shots: list[CutShot]
    problems: list[str]  # the cut's own (not one shot's): overlaps, clips off the picture track

    @property
    def all_problems(self) -> list[str]:
        return self.problems + [f"shot {s.index:03d} {s.name}: {p}" for s in self.shots for p in s.problems]

    def check(self) -> None:
        """One error naming every problem, or nothing."""
        found = self.all_problems
        if found:
            raise DubStudioError(f"{self.path.name}: {len(found)} problem(s): " + "; ".join(found))


def tc_of(frames: int, rate: Fraction) -> str:
    return timecode_at(None, Fraction(rate), int(frames))


def frames_of(tc: str, rate: Fraction) -> int:
    return frames_since_midnight(tc, Fraction(rate))


def _adapter(path: Path) -> str:
    name = CUT_SUFFIXES.get(path.suffix.lower())
    if name is None:
        raise DubStudioError(f"{path.name}: not a cut DubStudio reads; give an EDL (.edl), OTIO (.otio/.otioz), "
                             f"FCP 7 XML (.xml) or FCPX XML (.fcpxml).")
    return name


def read_timeline(path: Path, rate: Fraction | None = None):
    """The cut as an OpenTimelineIO timeline (an EDL is read at ``rate``: it does not say its own)."""
    import opentimelineio as otio

    path = Path(path)
    if not path.is_file():
        raise DubStudioError(f"{path} not found; check the path.")
    adapter = _adapter(path)
    kw = {"rate": float(rate or 25)} if adapter == "cmx_3600" else {}
    try:
        got = otio.adapters.read_from_file(str(path), adapter_name=adapter, **kw)
    except Exception as e:  # noqa: BLE001 - the adapters raise their own types; the user needs the reason
        raise DubStudioError(f"{path.name}: cannot read the cut ({type(e).__name__}: {e}).") from None
    if isinstance(got, otio.schema.SerializableCollection):  # FCP XML may hold several sequences
        timelines = [t for t in got.find_children(descended_from_type=otio.schema.Timeline)] if hasattr(got, "find_children") else list(got)
        if len(timelines) != 1:
            raise DubStudioError(f"{path.name} holds {len(timelines)} sequences; export the one cut to dub.")
        got = timelines[0]
    return got


def picture_clips(timeline) -> list:
    """The clips of the picture track (the first video track), in record order."""
    import opentimelineio as otio

    video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    if not video:
        return []
    return [c for c in video[0] if isinstance(c, otio.schema.Clip)]


def record_range(clip, timeline) -> tuple[int, int, Fraction]:
    """(first frame, frames, rate) of ``clip`` on the cut's timeline, counted from 00:00:00:00 (the
    timeline's global start time; an EDL keeps its first record timecode as its track's negative
    start instead)."""
    track = clip.parent()
    r = clip.range_in_parent()
    rate = Fraction(r.duration.rate).limit_denominator(1001)
    start = r.start_time.rescaled_to(float(rate)).value
    if track is not None and track.source_range is not None:
        start -= track.source_range.start_time.rescaled_to(float(rate)).value
    if timeline.global_start_time is not None:
        start += timeline.global_start_time.rescaled_to(float(rate)).value
    return int(round(start)), int(round(r.duration.rescaled_to(float(rate)).value)), rate


def _media_path(clip, media_dirs: list[Path]) -> Path | None:
    import opentimelineio as otio

    ref = clip.media_reference
    candidates: list[str] = []
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        url = ref.target_url
        candidates.append(unquote(urlparse(url).path) if url.startswith("file:") else url)
    for c in (clip.metadata.get("cmx_3600") or {}).get("comments", []):
        m = re.match(r"\s*SOURCE FILE\s*:\s*(.+)$", str(c), re.IGNORECASE)
        if m:
            candidates.append(m[1].strip())
    for c in candidates:
        p = Path(c).expanduser()
        if p.is_file():
            return p.resolve()
        for d in media_dirs:  # the cut was made on another machine: look for the file by name
            q = Path(d) / p.name
            if q.is_file():
                return q.resolve()
    names = {n for n in (_clean_name(clip.name), (clip.metadata.get("cmx_3600") or {}).get("reel")) if n}
    for d in media_dirs:
        for n in names:
            for suffix in MEDIA_SUFFIXES:
                q = Path(d) / f"{n}{suffix}"
                if q.is_file():
                    return q.resolve()
    return None


def _clean_name(name: str) -> str:
    return _ACTOR_IN_NAME.sub("", name or "").strip()


def actor_of(clip) -> str:
    """The clip's actor by the conventions in the module's docstring, or ''."""
    meta = clip.metadata.get("dubstudio") if hasattr(clip.metadata, "get") else None
    if meta and meta.get("actor"):
        return str(meta["actor"]).strip()
    for m in clip.markers:
        found = _ACTOR_MARKER.match(m.name or "")
        if found:
            return found[1]
    found = _ACTOR_IN_NAME.search(clip.name or "")
    return found[1].strip() if found else ""


def _media_info(path: Path) -> tuple[Fraction, int, int]:
    """(rate, first frame from 00:00:00:00, frames) of a media file."""
    from dubstudio.io.timecode import read_start_timecode
    from dubstudio.io.video import VideoReader

    with VideoReader(path) as r:
        fps, n = Fraction(r.fps), r.n_frames
    tc = read_start_timecode(path)
    return fps, (frames_of(tc, fps) if tc else 0), n


def read_cut(path: str | Path, media_dirs: list[Path] | None = None, rate: Fraction | None = None,
             check_faces: bool = True) -> Cut:
    """The cut's picture clips as shots, each with every problem found (``Cut.check`` raises them)."""
    import opentimelineio as otio

    path = Path(path)
    media_dirs = [Path(d) for d in (media_dirs or [])] + [path.resolve().parent]
    timeline = read_timeline(path, rate)
    clips = picture_clips(timeline)
    if not clips:
        raise DubStudioError(f"{path.name} has no clips on a video track; export the cut with its picture track.")
    cut_rate = rate or record_range(clips[0], timeline)[2]
    problems: list[str] = []
    shots: list[CutShot] = []
    media_cache: dict[Path, tuple[Fraction, int, int] | str] = {}
    for i, clip in enumerate(clips, 1):
        rec_in, rec_n, _ = record_range(clip, timeline)
        name = _clean_name(clip.name) or f"event {i:03d}"
        sr = clip.source_range or clip.trimmed_range()
        media = _media_path(clip, media_dirs)
        shot = CutShot(i, name, media, actor_of(clip), rec_in, rec_n, 0)
        if media is None:
            shot.problems.append("its media was not found (give the folder that holds it with --media)")
            src_rate = Fraction(sr.start_time.rate).limit_denominator(1001)
            shot.source_in = int(round(sr.start_time.value))
        else:
            info = media_cache.get(media)
            if info is None:
                try:
                    info = _media_info(media)
                except DubStudioError as e:
                    info = str(e)
                media_cache[media] = info
            if isinstance(info, str):
                shot.problems.append(f"its media {media.name} cannot be read: {info}")
                src_rate = Fraction(sr.start_time.rate).limit_denominator(1001)
                shot.source_in = int(round(sr.start_time.value))
            else:
                src_rate, shot.media_start, shot.media_frames = info
                shot.media_rate = src_rate
                shot.source_in = int(round(sr.start_time.rescaled_to(float(src_rate)).value))
                if src_rate != Fraction(cut_rate):
                    shot.problems.append(f"its media {media.name} runs at {float(src_rate):g} fps and the cut at "
                                         f"{float(cut_rate):g} fps; conform the media to the cut's rate first")
                elif shot.first_frame < 0 or shot.first_frame + rec_n > shot.media_frames:
                    shot.problems.append(
                        f"source {tc_of(shot.source_in, src_rate)}-{tc_of(shot.source_in + rec_n, src_rate)} lies outside "
                        f"{media.name} ({tc_of(shot.media_start, src_rate)}-{tc_of(shot.media_start + shot.media_frames, src_rate)})")
        if isinstance(clip.media_reference, otio.schema.GeneratorReference):
            continue  # black or bars: nothing to dub
        shots.append(shot)
    problems += _overlaps(timeline, cut_rate)
    cut = Cut(path, Fraction(cut_rate), shots, problems)
    if check_faces:
        _check_faces(cut)
    return cut


def _overlaps(timeline, rate: Fraction) -> list[str]:
    """Picture clips on other video tracks over the picture track's clips: which one is dubbed?"""
    import opentimelineio as otio

    video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    found = []
    base = [(c, *record_range(c, timeline)[:2]) for c in picture_clips(timeline)]
    for t in video[1:]:
        for c in t:
            if not isinstance(c, otio.schema.Clip):
                continue
            a, n, _ = record_range(c, timeline)
            for b, b0, bn in base:
                if a < b0 + bn and b0 < a + n:
                    found.append(f"clip {c.name!r} on track {t.name or 'V2'} overlaps {b.name!r} at "
                                 f"{tc_of(max(a, b0), rate)}-{tc_of(min(a + n, b0 + bn), rate)}; flatten the cut to one picture track")
    return found


def _check_faces(cut: Cut, samples: int = 4) -> None:
    """A shot whose frames show no face cannot be dubbed: found at import, not an hour into a job."""
    from dubstudio.tracking.faces import count_faces

    for s in cut.shots:
        if s.problems or s.media is None:
            continue
        if count_faces(s.media, samples=samples, first=s.first_frame, stop=s.first_frame + s.record_frames) == 0:
            s.problems.append(f"no face on {samples} frames sampled across it; leave it out of the dub")


def parse_rate(text: str | None) -> Fraction | None:
    if text in (None, ""):
        return None
    try:
        r = Fraction(str(text)).limit_denominator(1001) if "/" in str(text) else Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        raise DubStudioError(f"--rate {text!r} is not a frame rate (e.g. 25, 24000/1001, 23.976).") from None
    if abs(float(r) - 23.976) < 1e-3:
        r = Fraction(24000, 1001)
    elif abs(float(r) - 29.97) < 1e-3:
        r = Fraction(30000, 1001)
    if r <= 0:
        raise DubStudioError(f"--rate {text!r} must be positive.")
    return r


def parse_tc_arg(text: str, rate: Fraction, what: str) -> int:
    tc = parse_timecode(text, rate)
    if tc is None:
        raise DubStudioError(f"{what} {text!r} is not a timecode at {float(rate):g} fps (HH:MM:SS:FF).")
    return frames_of(tc, rate)
