"""Streaming video writer (PyAV): frames go straight to the encoder, never held in memory.

Optionally muxes one audio track: the samples are given up front (a 60 s stereo track at 48 kHz
is 23 MB of float32) and encoded *as the video advances*, so audio and video packets are
interleaved in the file the way players and editors expect, and nothing is encoded in one go at
the end. The audio is laid on the video's timeline: sample ``n`` plays at ``n / sample_rate``
seconds, frame ``k`` at ``k / fps``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dubstudio.core.errors import MediaError
from dubstudio.io.video import RGB_CONVERSION, ColorTags

__all__ = ["INTERLACED_CODECS", "VideoWriter", "WriterAudio"]

# encoders that code interlaced frames field by field when asked (AV_CODEC_FLAG_INTERLACED_DCT);
# FFmpeg's DNxHR profiles code whole frames only ("interlaced encoding is not supported for DNxHR")
INTERLACED_CODECS = ("prores_ks",)
_AV_FIELD = {"tt": 2, "bb": 3}  # AVFieldOrder: top coded first and shown first, and bottom

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_AUDIO_BLOCK = 1024  # samples handed to the encoder at a time (the encoder re-frames as needed)


@dataclass(frozen=True)
class WriterAudio:
    """An audio track to mux: ``samples`` (channels, n) float32 in [-1, 1] at ``sample_rate``.

    ``codec``: an encoder name ("aac", "pcm_s16le", "pcm_s24le", ...); ``bit_rate`` for lossy
    codecs (bits/s, None = the encoder's default)."""

    samples: np.ndarray
    sample_rate: int = 48000
    codec: str = "aac"
    bit_rate: int | None = None

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])


def _sws_matrix(space: int) -> str:
    """AVColorSpace -> the swscale matrix PyAV names (unspecified: BT.601, as the reader decodes it)."""
    return {1: "itu709", 4: "fcc", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}.get(int(space), "itu601")


class VideoWriter:
    """Write RGB frames at a rational frame rate. H.264 (yuv420p) by default.

    Usage: ``with VideoWriter(path, fps, w, h) as w: w.write(rgb)``. The file is written to a
    temporary name and renamed on a clean close, so an interrupted export never leaves a
    half-file under the final name. Frame ``k`` gets pts ``k`` in a 1/fps time base, so a
    30000/1001 shot stays exactly 30000/1001 and frames are consecutive.

    ``metadata``: container tags (mp4/mov need ``container_options={"movflags":
    "+use_metadata_tags"}`` to keep custom keys). ``audio``: a :class:`WriterAudio` to mux.
    ``container_format`` ("mp4", "mov", ...) when the file name does not tell it. ``color``: the
    source's :class:`ColorTags`; frames are converted with its matrix and range and the stream is
    tagged with it (None or unspecified: BT.601 limited, untagged, the way the reader decodes an
    untagged source, so a player shows both alike). ``sar``: the source's pixel aspect ratio
    (anamorphic footage), written so players display the picture unsqueezed. ``field_order``
    ("tt" / "bb"): the source's interlacing, kept by the ProRes encoder (the frames are coded as
    two fields, top or bottom first, and the stream says so); other codecs write progressive frames.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction,
        width: int,
        height: int,
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        options: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
        audio: WriterAudio | None = None,
        container_options: dict[str, str] | None = None,
        stream_metadata: dict[str, str] | None = None,
        container_format: str | None = None,
        color: ColorTags | None = None,
        sar: Fraction | None = None,
        label: str | None = None,
        field_order: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.label = label or str(self.path)  # what error messages call the file (a segment: its export)
        self.fps = Fraction(fps)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        # 4:2:0 and 4:2:2 need even sizes; pad by one pixel rather than fail.
        self.width, self.height = width + width % 2, height + height % 2
        self._c = None
        self._a = None
        self._audio = audio
        self._audio_pos = 0
        self.frames = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._c = av.open(str(self._tmp), mode="w", format=container_format, container_options=container_options or {})
            for k, v in (metadata or {}).items():
                self._c.metadata[k] = v
            self._s = self._c.add_stream(codec, rate=self.fps)
            self._s.width, self._s.height = self.width, self.height
            self._s.pix_fmt = pix_fmt
            if sar is not None and Fraction(sar) != 1:  # anamorphic: players stretch the picture back
                self._s.codec_context.sample_aspect_ratio = Fraction(sar)
            self._color = color if color is not None and color.specified else None
            if self._color is not None:  # written into the stream (H.264 VUI, mov colr atom)
                cc = self._s.codec_context
                cc.color_primaries, cc.color_trc = self._color.primaries, self._color.trc
                cc.colorspace, cc.color_range = self._color.space, self._color.range
            self._s.time_base = 1 / self.fps
            self._fields = self._interlace(codec, field_order)
            self._s.options = options or ({"crf": "18", "preset": "veryfast"} if codec == "libx264" else {})
            for k, v in (stream_metadata or {}).items():
                self._s.metadata[k] = v
            if audio is not None:
                self._add_audio(audio)
        except (av.FFmpegError, OSError, ValueError) as e:
            self._abort()
            if isinstance(e, OSError) and e.errno in _DISK_FULL:
                raise MediaError(f"disk full: cannot write {self.label}; free some space and export again.") from e
            raise MediaError(f"cannot write {self.label}: {e}") from e

    def _interlace(self, codec: str, field_order: str | None):
        """A filter graph that marks each frame's fields (FFmpeg's ``setfield``: PyAV cannot set
        a frame's interlace flags), or None for progressive output."""
        if field_order is None or codec not in INTERLACED_CODECS:
            return None
        if field_order not in _AV_FIELD:
            raise ValueError(f"field order must be one of {', '.join(_AV_FIELD)}, got {field_order!r}")
        cc = self._s.codec_context
        cc.flags |= av.codec.context.Flags.interlaced_dct
        cc.field_order = _AV_FIELD[field_order]
        g = av.filter.Graph()
        src = g.add_buffer(width=self.width, height=self.height, format=self._s.pix_fmt, time_base=self._s.time_base)
        mark = g.add("setfield", "tff" if field_order == "tt" else "bff")
        src.link_to(mark)
        mark.link_to(g.add("buffersink"))
        g.configure()
        return g

    def _add_audio(self, audio: WriterAudio) -> None:
        x = np.asarray(audio.samples)
        if x.ndim != 2 or x.shape[0] not in (1, 2):
            raise ValueError(f"audio must be (1 or 2 channels, samples), got shape {x.shape}")
        layout = "mono" if x.shape[0] == 1 else "stereo"
        self._a = self._c.add_stream(audio.codec, rate=int(audio.sample_rate), layout=layout)
        if audio.bit_rate:
            self._a.bit_rate = int(audio.bit_rate)
        self._a.time_base = Fraction(1, int(audio.sample_rate))
        self._layout = layout
        self._samples = np.ascontiguousarray(np.clip(x, -1.0, 1.0), dtype=np.float32)

    # -- writing --

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if (w, h) != (self.width, self.height):
            padded = np.zeros((self.height, self.width, 3), rgb.dtype)
            padded[:h, :w] = rgb[: self.height, : self.width]
            rgb = padded
        if rgb.dtype == np.uint16:  # 16-bit RGB: a 10-bit encoder keeps more than 8 bits of it
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb48le")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        if self._color is not None:
            # RGB -> YUV with the matrix and range the file is tagged with (swscale's default is
            # BT.601 limited, which a player would then read as BT.709: a visible hue shift in HD)
            frame = frame.reformat(format=self._s.pix_fmt, dst_colorspace=_sws_matrix(self._color.space),
                                   dst_color_range=2 if self._color.range == 2 else 1,
                                   dst_color_trc=self._color.trc, dst_color_primaries=self._color.primaries,
                                   interpolation=RGB_CONVERSION)
        else:  # converted here rather than by the encoder: the same accurate rounding as the reader
            frame = frame.reformat(format=self._s.pix_fmt, interpolation=RGB_CONVERSION)
        frame.pts = self.frames
        if self._fields is not None:
            self._fields.push(frame)
            frame = self._fields.pull()
        self._encode(self._s, frame)
        self.frames += 1
        if self._a is not None:  # audio up to the end of this frame: packets stay interleaved
            self._feed_audio(self._audio_sample(self.frames))

    def _audio_sample(self, frame: int) -> int:
        return min(self._samples.shape[1], round(Fraction(frame) * self._audio.sample_rate / self.fps))

    def _feed_audio(self, until: int) -> None:
        while self._audio_pos < until:
            n = min(_AUDIO_BLOCK, until - self._audio_pos)
            block = self._samples[:, self._audio_pos : self._audio_pos + n]
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=self._layout)
            f.sample_rate = int(self._audio.sample_rate)
            f.pts = self._audio_pos
            self._encode(self._a, f)
            self._audio_pos += n

    def _encode(self, stream, frame) -> None:
        try:
            for packet in stream.encode(frame):
                self._mux(packet)
        except (OSError, av.FFmpegError) as e:
            raise self._error(e) from e

    def _mux(self, packet) -> None:
        self._c.mux(packet)

    def _error(self, e: BaseException) -> MediaError:
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            return MediaError(
                f"disk full while writing {Path(self.label).name}; free some space and export again "
                f"(nothing was written under that name)."
            )
        return MediaError(f"writing {self.label} failed: {e}; check the folder is writable and export again.")

    @property
    def audio_samples_written(self) -> int:
        return self._audio_pos

    def close(self, keep: bool = True) -> None:
        if self._c is None:
            return
        if not keep:
            self._abort()
            return
        try:
            self._encode(self._s, None)
            if self._a is not None:
                self._feed_audio(self._samples.shape[1])  # any tail past the last frame
                self._encode(self._a, None)
            c, self._c = self._c, None
            try:
                c.close()  # writes the index (mp4/mov moov)
            except (OSError, av.FFmpegError) as e:
                raise self._error(e) from e
            self._tmp.replace(self.path)
        except BaseException as e:
            self._abort()
            if isinstance(e, OSError) and not isinstance(e, av.FFmpegError):
                raise self._error(e) from e
            raise

    def _abort(self) -> None:
        """Drop the partial file (errors on the way are secondary to the one being raised)."""
        c, self._c = self._c, None
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - a broken muxer may fail to close; the file goes anyway
                pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(keep=exc_type is None)
