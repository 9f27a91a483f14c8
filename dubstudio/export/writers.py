"""Where exported frames go: a muxed video file or a PNG sequence folder, written atomically.

Both sinks write under a temporary name beside the target and move it into place only on a
clean ``close(keep=True)``: a cancel, an error or a full disk leaves the previous output (if
any) untouched and no half-file or half-folder under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dubstudio.core.errors import MediaError
from dubstudio.export.formats import VideoFormat
from dubstudio.export.mark import add_png_text, container_metadata, png_text_chunks
from dubstudio.io.atomic import atomic_write_json

__all__ = ["VideoSink", "PngSequenceSink", "check_png_target"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
FRAME_NAME = "frame_{:06d}.png"
GUIDE_WAV = "audio_original.wav"  # the shot's own sound, with ExportSettings.guide_track
_OURS = ("frame_", "audio.wav", GUIDE_WAV, "manifest.json")


class VideoSink:
    """H.264/ProRes video with the audio track, the synthetic mark in the container and, when the
    shot has them, its start timecode (a ``tmcd`` track) and colour tags (``color``: ColorTags).

    Frames go into video-only segment files in the export's work folder (``work``: an
    ``ExportWork``), each closed and recorded when its last frame is in; segments may be skipped
    (the work holds them already). ``close(keep=True)`` joins them all by stream copy, muxing the
    audio and the tags, into the final name."""

    def __init__(self, work, fmt: VideoFormat, fps: Fraction, audio, manifest: dict, timecode: str | None = None,
                 color=None, sar: Fraction | None = None, reel: str | None = None, guide=None,
                 field_order: str | None = None) -> None:
        if work.out.is_dir():
            raise MediaError(f"{work.out} is a folder; give a file name ending in .{fmt.name}.")
        self.work, self.fmt, self.fps = work, fmt, Fraction(fps)
        self.audio, self.manifest = audio, manifest
        self.guide = guide  # the shot's own sound, muxed as a second track (ExportSettings.guide_track)
        self.timecode, self.color, self.sar, self.reel = timecode, color, sar, reel
        self.field_order = field_order  # an interlaced source's ("tt"/"bb"), kept by ProRes
        self.path = work.out
        self._seg = None  # [start, stop, name, writer, counts, next index]

    def write(self, index: int, rgb: np.ndarray, face: bool = False, marked: bool = False) -> None:
        from dubstudio.io.video_writer import VideoWriter

        if self._seg is None:
            start, stop = self.work.segment_of(index)
            if index != start or start in self.work.segments:
                raise MediaError(f"export frame {index} does not start a segment still to write; export again.")
            name = f"seg_{start:06d}.{self.fmt.name}"
            w = VideoWriter(self.work.path / name, self.fps, rgb.shape[1], rgb.shape[0], codec=self.fmt.codec,
                            pix_fmt=self.fmt.pix_fmt, options=dict(self.fmt.options), container_format=self.fmt.name,
                            color=self.color, sar=self.sar, label=str(self.path), field_order=self.field_order)
            self._seg = [start, stop, name, w, {"with_face": 0, "marked": 0, "width": w.width, "height": w.height}, start]
        start, stop, name, w, counts, expected = self._seg
        if index != expected:
            raise MediaError(f"export frames out of order ({index} for {expected}); export again.")
        w.write(rgb)
        counts["with_face"] += bool(face)
        counts["marked"] += bool(marked)
        self._seg[5] = index + 1
        if index + 1 == stop:
            from dubstudio.io.video_concat import packet_digest

            self._seg = None
            w.close(keep=True)
            self.work.record(start, stop, [name], packet_digest(self.work.path / name), **counts)

    def close(self, keep: bool) -> None:
        if not keep:
            if self._seg is not None:
                self._seg[3].close(keep=False)
                self._seg = None
            self.work.keep_or_discard()
            return
        from dubstudio.io.video_concat import concat_segments
        from dubstudio.io.video_writer import WriterAudio

        if self._seg is not None or not self.work.complete:
            raise MediaError(f"the export has {self.work.done} of {self.work.n_frames} frames; export again.")
        wa = [WriterAudio(a.samples, a.sample_rate, self.fmt.audio_codec, self.fmt.audio_rate(a.samples.shape[0]))
              for a in (self.audio, self.guide) if a is not None and a.samples is not None]
        manifest = self.manifest | {"segment_frames": self.work.seg_len, "render_segments": self.work.manifest_segments()}
        concat_segments(
            self.path, [(s["start"], self.work.path / s["files"][0]) for s in self.work.ordered()], self.fps, wa or None,
            # a "timecode" tag makes the mov/mp4 muxer write a tmcd track: NLEs read the start timecode from it
            metadata=container_metadata(manifest, self.fmt.name) | ({"timecode": self.timecode} if self.timecode else {}),
            # the reel name goes into the tmcd track beside the timecode (conforming matches both)
            stream_metadata={"reel_name": self.reel} if self.reel and self.timecode else None,
            container_format=self.fmt.name, container_options=dict(self.fmt.container_options),
        )
        self.work.discard()

    def reuse_previous(self) -> None:
        """Take the previous export's unchanged segments (stream copy, digest-checked)."""
        from dubstudio.export.mark import read_mark
        from dubstudio.export.resume import previous_segments
        from dubstudio.io.video_concat import extract_segments

        if not self.path.is_file():
            return
        try:
            manifest = read_mark(self.path).get("manifest")
        except Exception:  # noqa: BLE001 - not a file we can read: nothing to reuse
            return
        segs = previous_segments(manifest, self.work)
        if not segs:
            return
        wanted = {int(s["start"]): self.work.path / f"seg_{int(s['start']):06d}.{self.fmt.name}" for s in segs}
        digests = extract_segments(self.path, self.fps, {a for a, _ in self.work.plan()}, wanted, self.fmt.name)
        for s in segs:
            a = int(s["start"])
            if digests.get(a) == s.get("digest"):
                self.work.record(a, int(s["stop"]), [wanted[a].name], s["digest"],
                                 **{k: int(s.get(k, 0)) for k in ("with_face", "marked", "width", "height")})
                self.work.from_previous += int(s["stop"]) - a
            else:
                wanted[a].unlink(missing_ok=True)


def check_png_target(folder: Path) -> None:
    """Refuse a folder that holds anything but a previous DubStudio export (checked up front,
    before any rendering)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MediaError(f"{folder} is a file; give a folder name for a PNG sequence.")
    if folder.is_dir():
        others = [p.name for p in folder.iterdir() if not p.name.startswith(_OURS)]
        if others:
            raise MediaError(
                f"{folder} already holds other files ({', '.join(sorted(others)[:3])}); choose a new or empty folder for the PNG sequence."
            )


class PngSequenceSink:
    """``frame_%06d.png`` named by the shot's frame number (16-bit when given uint16 frames: a
    source of more than 8 bits), ``audio.wav`` (a Broadcast WAV whose
    time reference is the shot's source timecode, when it has one), ``manifest.json``.

    Written into the export's work folder beside the target (``work``: an ``ExportWork``; a
    segment of frames is recorded there once all its frames are written) and renamed on success;
    a previous export in the target folder is replaced only then."""

    def __init__(self, work, audio, manifest: dict, compression: int = 3, guide=None) -> None:
        self.work = work
        self.guide = guide  # the shot's own sound: audio_original.wav beside audio.wav
        self.folder = work.out
        check_png_target(self.folder)
        self.tmp = work.path
        self.audio = audio
        self.manifest = manifest
        self.compression = int(compression)
        self._chunks = png_text_chunks(manifest)
        self._seg = None  # [start, stop, counts, hash, next index]

    def write(self, index: int, rgb: np.ndarray, face: bool = False, marked: bool = False) -> None:
        import hashlib

        if self._seg is None:
            start, stop = self.work.segment_of(index)
            if index != start or start in self.work.segments:
                raise MediaError(f"export frame {index} does not start a segment still to write; export again.")
            self._seg = [start, stop, {"with_face": 0, "marked": 0}, hashlib.sha256(), start]
        start, stop, counts, h, expected = self._seg
        if index != expected:
            raise MediaError(f"export frames out of order ({index} for {expected}); export again.")
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, self.compression])
        if not ok:
            raise MediaError(f"cannot encode frame {index} as PNG.")
        data = add_png_text(buf.tobytes(), self._chunks)
        try:
            _write_bytes(self.tmp / FRAME_NAME.format(index), data)
        except OSError as e:
            raise _error(e, self.folder) from e
        h.update(data)
        counts["with_face"] += bool(face)
        counts["marked"] += bool(marked)
        self._seg[4] = index + 1
        if index + 1 == stop:
            self._seg = None
            self.work.record(start, stop, [FRAME_NAME.format(i) for i in range(start, stop)], h.hexdigest(),
                             **counts, width=rgb.shape[1], height=rgb.shape[0])

    def reuse_previous(self) -> None:
        """Take the previous export's unchanged frames (linked where the file system can, digest-checked)."""
        import hashlib
        import json

        from dubstudio.export.resume import previous_segments

        try:
            manifest = json.loads((self.folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for s in previous_segments(manifest, self.work):
            a, b = int(s["start"]), int(s["stop"])
            names = [FRAME_NAME.format(i) for i in range(a, b)]
            h = hashlib.sha256()
            try:
                for nm in names:
                    h.update((self.folder / nm).read_bytes())
            except OSError:
                continue
            if h.hexdigest() != s.get("digest"):
                continue
            try:
                for nm in names:
                    _link_or_copy(self.folder / nm, self.tmp / nm)
            except OSError as e:
                raise _error(e, self.folder) from e
            self.work.record(a, b, names, s["digest"], **{k: int(s.get(k, 0)) for k in ("with_face", "marked", "width", "height")})
            self.work.from_previous += b - a

    def _write_audio(self, a=None, name: str = "audio.wav") -> None:
        import soundfile as sf

        a = self.audio if a is None else a
        if a is None or a.samples is None:
            return
        try:
            with sf.SoundFile(self.tmp / name, "w", samplerate=a.sample_rate, channels=a.samples.shape[0], subtype="PCM_24", format="WAV") as f:
                f.comment = self.manifest.get("note", "")[:500]
                f.software = f"DubStudio {self.manifest.get('version', '')}"
                f.write(np.ascontiguousarray(a.samples.T))
            tc = self.manifest.get("source_timecode")
            if tc:  # Broadcast WAV: the NLE places the sound at the pictures' timecode
                from dubstudio.io.bwf import add_bext
                from dubstudio.core.timebase import frames_since_midnight

                fps = Fraction(self.manifest["fps"])
                add_bext(self.tmp / name, round(frames_since_midnight(tc, fps) * a.sample_rate / fps),
                         description=f"DubStudio synthetic dub of {self.manifest.get('source_video', '')}, starting at {tc}")
        except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError (a RuntimeError)
            if isinstance(e, OSError):
                raise _error(e, self.folder) from e
            raise MediaError(f"cannot write {self.folder / name}: {e}; check free space and export again.") from e

    def close(self, keep: bool) -> None:
        if not keep:
            self.work.keep_or_discard()
            return
        if self._seg is not None or not self.work.complete:
            raise MediaError(f"the export has {self.work.done} of {self.work.n_frames} frames; export again.")
        self._write_audio()
        if self.guide is not None:
            self._write_audio(self.guide, GUIDE_WAV)
        atomic_write_json(self.tmp / "manifest.json",
                          self.manifest | {"segment_frames": self.work.seg_len, "render_segments": self.work.manifest_segments()})
        self.work.release()
        (self.tmp / "state.json").unlink(missing_ok=True)
        self._move_into_place()

    def _move_into_place(self) -> None:
        old = None
        try:
            if self.folder.is_dir():
                check_png_target(self.folder)  # still only ours
                old = self.folder.with_name(f".{self.folder.name}.old-{os.getpid()}")
                os.replace(self.folder, old)
            os.replace(self.tmp, self.folder)
        except OSError as e:
            if old is not None and not self.folder.exists():
                with contextlib.suppress(OSError):
                    os.replace(old, self.folder)  # put the previous export back
            raise _error(e, self.folder) from e
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # same file system (the work folder sits beside the output): no copy
    except OSError:
        shutil.copyfile(src, dst)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _error(e: OSError, target: Path) -> MediaError:
    if e.errno in _DISK_FULL:
        return MediaError(f"disk full while writing {target}; free some space and export again (nothing was left under that name).")
    return MediaError(f"cannot write {target}: {e.strerror or e}; choose a writable folder.")

