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

from dubstudio.errors import MediaError
from dubstudio.export.formats import VideoFormat
from dubstudio.export.mark import add_png_text, container_metadata, png_text_chunks
from dubstudio.io.atomic import atomic_write_json

__all__ = ["VideoSink", "PngSequenceSink", "check_png_target"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
FRAME_NAME = "frame_{:06d}.png"
_OURS = ("frame_", "audio.wav", "manifest.json")


class VideoSink:
    """H.264/ProRes video with the audio track, the synthetic mark in the container and, when the
    shot has them, its start timecode (a ``tmcd`` track) and colour tags (``color``: ColorTags)."""

    def __init__(self, path: Path, fmt: VideoFormat, fps: Fraction, width: int, height: int, audio, manifest: dict,
                 timecode: str | None = None, color=None, sar: Fraction | None = None, reel: str | None = None) -> None:
        from dubstudio.io.video_writer import VideoWriter, WriterAudio

        path = Path(path)
        if path.is_dir():
            raise MediaError(f"{path} is a folder; give a file name ending in .{fmt.name}.")
        wa = None
        if audio is not None and audio.samples is not None:
            ch = audio.samples.shape[0]
            wa = WriterAudio(audio.samples, audio.sample_rate, fmt.audio_codec, fmt.audio_rate(ch))
        self.writer = VideoWriter(
            path, fps, width, height, codec=fmt.codec, pix_fmt=fmt.pix_fmt, options=dict(fmt.options),
            # a "timecode" tag makes the mov/mp4 muxer write a tmcd track: NLEs read the start timecode from it
            metadata=container_metadata(manifest) | ({"timecode": timecode} if timecode else {}), audio=wa, container_options=dict(fmt.container_options),
            container_format=fmt.name, color=color, sar=sar,
            # the reel name goes into the tmcd track beside the timecode (conforming matches both)
            stream_metadata={"reel_name": reel} if reel and timecode else None,
        )
        self.path = path
        self.frames = 0

    def write(self, index: int, rgb: np.ndarray) -> None:
        self.writer.write(rgb)
        self.frames += 1

    def close(self, keep: bool) -> None:
        self.writer.close(keep=keep)


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

    Written into ``.<name>.partial-<pid>`` beside the target and renamed on success; a previous
    export in the target folder is replaced only then."""

    def __init__(self, folder: Path, audio, manifest: dict, compression: int = 3) -> None:
        self.folder = Path(folder)
        check_png_target(self.folder)
        self.tmp = self.folder.with_name(f".{self.folder.name}.partial-{os.getpid()}")
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir()
        except OSError as e:
            raise _error(e, self.folder) from e
        self.audio = audio
        self.manifest = manifest
        self.compression = int(compression)
        self._chunks = png_text_chunks(manifest)
        self.frames = 0

    def write(self, index: int, rgb: np.ndarray) -> None:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, self.compression])
        if not ok:
            raise MediaError(f"cannot encode frame {index} as PNG.")
        try:
            _write_bytes(self.tmp / FRAME_NAME.format(index), add_png_text(buf.tobytes(), self._chunks))
        except OSError as e:
            raise _error(e, self.folder) from e
        self.frames += 1

    def _write_audio(self) -> None:
        import soundfile as sf

        a = self.audio
        if a is None or a.samples is None:
            return
        try:
            with sf.SoundFile(self.tmp / "audio.wav", "w", samplerate=a.sample_rate, channels=a.samples.shape[0], subtype="PCM_24", format="WAV") as f:
                f.comment = self.manifest.get("note", "")[:500]
                f.software = f"DubStudio {self.manifest.get('version', '')}"
                f.write(np.ascontiguousarray(a.samples.T))
            tc = self.manifest.get("source_timecode")
            if tc:  # Broadcast WAV: the NLE places the sound at the pictures' timecode
                from dubstudio.io.bwf import add_bext
                from dubstudio.io.timecode import frames_since_midnight

                fps = Fraction(self.manifest["fps"])
                add_bext(self.tmp / "audio.wav", round(frames_since_midnight(tc, fps) * a.sample_rate / fps),
                         description=f"DubStudio synthetic dub of {self.manifest.get('source_video', '')}, starting at {tc}")
        except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError (a RuntimeError)
            if isinstance(e, OSError):
                raise _error(e, self.folder) from e
            raise MediaError(f"cannot write {self.folder / 'audio.wav'}: {e}; check free space and export again.") from e

    def close(self, keep: bool) -> None:
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            self._write_audio()
            atomic_write_json(self.tmp / "manifest.json", self.manifest)
            self._move_into_place()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

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


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _error(e: OSError, target: Path) -> MediaError:
    if e.errno in _DISK_FULL:
        return MediaError(f"disk full while writing {target}; free some space and export again (nothing was left under that name).")
    return MediaError(f"cannot write {target}: {e.strerror or e}; choose a writable folder.")

