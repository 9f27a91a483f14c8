"""A cut's shots made into files a dub runs on: each shot's frames (with handles) cut out of its
source media, its dialogue line cut out of the language's stem, and the shot list ``batch`` and
``farm submit`` read, with a manifest the conform back reads (``conform.json``).

A shot file is ProRes 422 HQ (an edit-ready intermediate: the dub is rendered over it and the
editor relinks its export) carrying the source's own sound (the shot's model learns the actor's
voice from it) and its start timecode: the source timecode of its first frame, so its export's
clip sits at the same source range as the cut's clip and relinks without a slip. The handles are
extra source frames either side (as many as the media has, up to ``handles``); the line is placed
after the head handle and the handles are silent, so the dubbed mouth rests there.

The dialogue of a shot comes from the stem (one language's dialogue for the whole cut, placed on
the cut's timeline by its Broadcast WAV time reference or a given start timecode), cut to the
shot's record range, or from the cut's own audio track (the clip under the shot).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.conform.cut import Cut, CutShot, tc_of
from dubstudio.core.errors import DubStudioError
from dubstudio.core.jobs import Progress

MANIFEST = "conform.json"
SHOT_LIST = "shots.csv"
LINE_RATE = 48000


@dataclass(frozen=True)
class Stem:
    """One language's dialogue for the whole cut: a file and where its first sample sits on the
    cut's timeline (frames at the cut's rate from 00:00:00:00)."""

    path: Path
    start: int
    sample_rate: int
    samples: int
    how: str  # "bext" | "given" | "cut audio track"

    def frames(self, rate: Fraction) -> int:
        return int(self.samples * Fraction(rate) / self.sample_rate)

    def describe(self, rate: Fraction) -> str:
        return f"{self.path.name}: {tc_of(self.start, rate)}-{tc_of(self.start + self.frames(rate), rate)} ({self.how})"


def open_stem(path: str | Path, rate: Fraction, start_frames: int | None = None) -> Stem:
    """A stem and its place on the timeline: ``start_frames`` when given, else its Broadcast WAV
    time reference (a stem without one needs ``--stem-start``)."""
    import soundfile as sf

    from dubstudio.io.bwf import read_bext

    path = Path(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as e:
        raise DubStudioError(f"cannot read the stem {path.name}: {e}") from None
    if start_frames is not None:
        how, start = "given", int(start_frames)
    else:
        try:
            bext = read_bext(path)
        except (OSError, ValueError):
            bext = None
        if not bext:
            raise DubStudioError(f"the stem {path.name} carries no Broadcast WAV time reference; give its start with --stem-start HH:MM:SS:FF.")
        how, start = "bext", int(round(Fraction(bext["time_reference"]) * Fraction(rate) / info.samplerate))
    return Stem(path.resolve(), start, int(info.samplerate), int(info.frames), how)


def check_stem(cut: Cut, stem: Stem) -> None:
    """Every shot the stem does not cover gets a problem (found at import, before any job)."""
    end = stem.start + stem.frames(cut.rate)
    for s in cut.shots:
        if s.record_in < stem.start or s.record_in + s.record_frames > end:
            s.problems.append(f"the stem {stem.describe(cut.rate)} does not cover its record range "
                              f"{tc_of(s.record_in, cut.rate)}-{tc_of(s.record_in + s.record_frames, cut.rate)}")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("_") or "shot"


def shot_stem(s: CutShot) -> str:
    return f"{s.index:03d}_{_safe(s.name)}"


def write_shots(cut: Cut, stem: Stem, out_dir: Path, handles: int = 0, export_suffix: str = ".mov", lang: str = "dub",
                progress: Progress | None = None) -> Path:
    """Shot files, lines, the shot list and the manifest in ``out_dir`` (shots already cut out are
    kept: a rerun after a fix only does the rest). Returns the shot list's path."""
    cut.check()
    progress = progress or Progress()
    out_dir = Path(out_dir)
    for sub in ("shots", "lines", "exports"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    rows, entries = [], []
    for k, s in enumerate(cut.shots):
        progress.check()
        progress.stage(f"shot {s.index:03d} {s.name}")
        head = min(handles, s.first_frame)
        tail = min(handles, s.media_frames - s.first_frame - s.record_frames)
        name = shot_stem(s)
        shot_file = out_dir / "shots" / f"{name}.mov"
        line_file = out_dir / "lines" / f"{name}_{lang}.wav"
        export = out_dir / "exports" / f"{name}_{lang}{export_suffix}"
        first, n = s.first_frame - head, head + s.record_frames + tail
        start_tc = tc_of(s.media_start + first, s.media_rate)
        if not _is_cut_out(shot_file, n, start_tc):
            _cut_out(s.media, shot_file, first, n, s.media_rate, start_tc)
        _write_line(stem, s, cut.rate, line_file)
        rows.append({"shot": f"shots/{shot_file.name}", "audio": f"lines/{line_file.name}", "dubber": "", "actor": s.actor,
                     "offset": f"{head / float(s.media_rate):.6f}", "output": f"exports/{export.name}", "audio_policy": "pad"})
        entries.append(s.to_json(cut.rate) | {"shot_file": str(shot_file.resolve()), "line_file": str(line_file.resolve()),
                                               "export": str(export.resolve()), "head": head, "tail": tail, "shot_tc_in": start_tc})
        progress.update(k + 1, len(cut.shots))
    from dubstudio.io.atomic import atomic_write_text

    shot_list = out_dir / SHOT_LIST
    atomic_write_text(shot_list, _csv(rows))
    manifest = {"version": 1, "cut": str(cut.path.resolve()), "rate": str(cut.rate), "stem": stem.describe(cut.rate),
                "language": lang, "handles": handles, "shot_list": str(shot_list.resolve()), "shots": entries}
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return shot_list


def _csv(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _is_cut_out(path: Path, n: int, start_tc: str) -> bool:
    """Whether ``path`` is already this shot (a rerun keeps it)."""
    from dubstudio.io.timecode import read_start_timecode
    from dubstudio.io.video import VideoReader

    if not path.is_file():
        return False
    try:
        with VideoReader(path) as r:
            frames = r.n_frames
    except DubStudioError:
        return False
    return frames == n and read_start_timecode(path) == start_tc


def _cut_out(media: Path, out: Path, first: int, n: int, fps: Fraction, start_tc: str) -> None:
    """Frames ``first:first+n`` of ``media`` (and its sound over them) to ProRes 422 HQ + PCM in a
    .mov stamped with ``start_tc``; written under a temporary name and renamed when complete."""
    from dubstudio.export.formats import video_format
    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import VideoReader, color_tags, sample_aspect
    from dubstudio.io.video_writer import VideoWriter, WriterAudio
    from dubstudio.core.errors import MediaError

    fmt = video_format("mov")
    try:
        sound = load_audio(media, sr=LINE_RATE, mono=False, start_s=first / float(fps), duration_s=n / float(fps))
        sound = np.atleast_2d(sound).astype(np.float32)
        audio = WriterAudio(sound, LINE_RATE, fmt.audio_codec) if sound.size else None
    except MediaError:
        audio = None  # a source without sound: the shot has none either
    with VideoReader(media) as r:
        w = VideoWriter(out, fps, r.width, r.height, codec=fmt.codec, pix_fmt=fmt.pix_fmt, options=dict(fmt.options),
                        metadata={"timecode": start_tc}, audio=audio, container_format="mov", color=color_tags(media),
                        sar=sample_aspect(media))
        try:
            for _, rgb in r.iter_frames(first, first + n):
                w.write(rgb)
        except BaseException:
            w.close(keep=False)
            raise
        w.close(keep=True)


def _write_line(stem: Stem, s: CutShot, rate: Fraction, out: Path) -> None:
    """The stem's samples under the shot's record range, as 24-bit PCM at the stem's rate."""
    import soundfile as sf

    from dubstudio.io.atomic import atomic_open

    a = int(round(Fraction(s.record_in - stem.start) / Fraction(rate) * stem.sample_rate))
    b = a + int(round(Fraction(s.record_frames) / Fraction(rate) * stem.sample_rate))
    data, sr = sf.read(str(stem.path), start=a, stop=b, dtype="float32", always_2d=True)
    with atomic_open(out) as f:
        sf.write(f, data, sr, subtype="PCM_24", format="WAV")


def read_manifest(folder_or_file: str | Path) -> dict:
    p = Path(folder_or_file)
    p = p / MANIFEST if p.is_dir() else p
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DubStudioError(f"{p} not found; run `dubstudio conform import` first.") from None
    except (OSError, ValueError) as e:
        raise DubStudioError(f"cannot read {p}: {e}") from None
