"""Join video segments into one file by stream copy, muxing an audio track as it goes.

An export written in segments (``dubstudio.export.resume``) becomes one file here without a
second encode: each segment was encoded with the same codec settings and starts on a keyframe,
so its packets are copied with their timestamps moved to the segment's first frame. The audio is
encoded alongside, interleaved with the video the way ``VideoWriter`` does it. The file is
written under a temporary name and renamed on success.
"""

from __future__ import annotations

import errno
import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dubstudio.core.errors import MediaError
from dubstudio.io.video_writer import _AUDIO_BLOCK, WriterAudio

__all__ = ["concat_segments", "extract_segments", "packet_digest"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def concat_segments(
    path: str | Path,
    segments: list[tuple[int, Path]],
    fps: Fraction,
    audio: WriterAudio | list[WriterAudio] | None = None,
    metadata: dict[str, str] | None = None,
    stream_metadata: dict[str, str] | None = None,
    container_format: str | None = None,
    container_options: dict[str, str] | None = None,
) -> int:
    """Write ``segments`` ((first frame, file), in order, each a video-only file whose frames are
    consecutive from that first frame) to ``path``; returns the number of video packets.

    ``metadata`` are container tags ("timecode" gives mp4/mov a tmcd track), ``stream_metadata``
    the video stream's. Colour tags, pixel aspect and codec parameters come from the segments."""
    path, fps = Path(path), Fraction(fps)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    out = None
    try:
        out = av.open(str(tmp), mode="w", format=container_format, container_options=container_options or {})
        for k, v in (metadata or {}).items():
            out.metadata[k] = v
        with av.open(str(segments[0][1])) as first:
            t = first.streams.video[0]
            vs = out.add_stream_from_template(t)
            # the fourcc too: for ProRes it names the profile (apcn, apch, ...), and the muxer
            # would otherwise pick its own
            vs.codec_context.codec_tag = t.codec_context.codec_tag
            vs.codec_context.framerate = fps  # the tmcd track is counted at this rate
            if t.sample_aspect_ratio:  # mov's pasp atom is written from the stream's, not the codec's
                vs.codec_context.sample_aspect_ratio = t.sample_aspect_ratio
        frame_tb = 1 / fps  # packets are stamped in frames; the muxer rescales to its own time base
        vs.time_base = frame_tb
        for k, v in (stream_metadata or {}).items():
            vs.metadata[k] = v
        tracks = [] if audio is None else [audio] if isinstance(audio, WriterAudio) else list(audio)
        feeders = [_AudioFeeder(out, a) for a in tracks]  # in order: track 1 is the first given
        packets, expected = 0, segments[0][0]
        for start, seg in segments:
            if start != expected:
                raise MediaError(f"segment {seg.name} starts at frame {start}, expected {expected}; export again.")
            with av.open(str(seg)) as src:
                s = src.streams.video[0]
                n = 0
                for pkt in src.demux(s):
                    if pkt.dts is None:  # the demuxer's end-of-stream flush packet
                        continue
                    tb = pkt.time_base
                    pkt.pts = round(pkt.pts * tb * fps) + start
                    pkt.dts = round(pkt.dts * tb * fps) + start
                    pkt.duration = 1
                    pkt.time_base = frame_tb
                    pkt.stream = vs
                    out.mux(pkt)
                    n += 1
                    for f in feeders:
                        f.feed(round(Fraction(pkt.dts + 1) * f.rate / fps))
            packets += n
            expected = start + n
        for f in feeders:
            f.finish()
        o, out = out, None
        o.close()
        tmp.replace(path)
        return packets
    except (OSError, av.FFmpegError) as e:
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            raise MediaError(f"disk full while writing {path.name}; free some space and export again.") from e
        raise MediaError(f"writing {path} failed: {e}; check the folder is writable and export again.") from e
    finally:
        if out is not None:
            try:
                out.close()
            except Exception:  # noqa: BLE001 - the file goes anyway
                pass
        tmp.unlink(missing_ok=True)


class _AudioFeeder:
    def __init__(self, container, audio: WriterAudio) -> None:
        x = np.asarray(audio.samples)
        if x.ndim != 2 or x.shape[0] not in (1, 2):
            raise ValueError(f"audio must be (1 or 2 channels, samples), got shape {x.shape}")
        self.layout = "mono" if x.shape[0] == 1 else "stereo"
        self.rate = int(audio.sample_rate)
        self.stream = container.add_stream(audio.codec, rate=self.rate, layout=self.layout)
        if audio.bit_rate:
            self.stream.bit_rate = int(audio.bit_rate)
        self.stream.time_base = Fraction(1, self.rate)
        self.container = container
        self.samples = np.ascontiguousarray(np.clip(x, -1.0, 1.0), dtype=np.float32)
        self.pos = 0

    def feed(self, until: int) -> None:
        until = min(until, self.samples.shape[1])
        while self.pos < until:
            n = min(_AUDIO_BLOCK, until - self.pos)
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(self.samples[:, self.pos : self.pos + n]), format="fltp", layout=self.layout)
            f.sample_rate = self.rate
            f.pts = self.pos
            for p in self.stream.encode(f):
                self.container.mux(p)
            self.pos += n

    def finish(self) -> None:
        self.feed(self.samples.shape[1])
        for p in self.stream.encode(None):
            self.container.mux(p)


def packet_digest(path: str | Path) -> str:
    """sha256 of a video file's video packets (their bytes, in decode order): what stream copy
    keeps, so a segment and its copy inside a joined file digest alike."""
    h = hashlib.sha256()
    with av.open(str(path)) as c:
        for pkt in c.demux(c.streams.video[0]):
            if pkt.dts is not None:
                h.update(bytes(pkt))
    return h.hexdigest()


def extract_segments(path: str | Path, fps: Fraction, starts: set[int], wanted: dict[int, Path],
                     container_format: str | None = None) -> dict[int, str]:
    """Copy segments back out of a file joined by :func:`concat_segments`: ``wanted`` maps a
    segment's first frame to the file to write it to (timestamps from 0 again); ``starts`` are all
    segment starts of the file (a segment ends where the next begins: a keyframe at one of them).
    Returns {start: packet digest} for the segments written; one that cannot be found is absent."""
    fps = Fraction(fps)
    frame_tb = 1 / fps
    digests: dict[int, str] = {}
    cur = None  # (start, container, stream, hash)

    def finish():
        nonlocal cur
        if cur is not None:
            start, out, _, h = cur
            out.close()
            digests[start] = h.hexdigest()
            cur = None

    try:
        with av.open(str(path)) as src:
            s = src.streams.video[0]
            for pkt in src.demux(s):
                if pkt.dts is None:
                    continue
                pts = round(pkt.pts * pkt.time_base * fps)
                dts = round(pkt.dts * pkt.time_base * fps)
                if pkt.is_keyframe and pts in starts:
                    finish()
                    if pts in wanted:
                        out = av.open(str(wanted[pts]), mode="w", format=container_format)
                        vs = out.add_stream_from_template(s)
                        vs.codec_context.codec_tag = s.codec_context.codec_tag
                        vs.codec_context.framerate = fps
                        if s.sample_aspect_ratio:
                            vs.codec_context.sample_aspect_ratio = s.sample_aspect_ratio
                        vs.time_base = frame_tb
                        cur = (pts, out, vs, hashlib.sha256())
                if cur is None:
                    continue
                start, out, vs, h = cur
                h.update(bytes(pkt))
                pkt.pts, pkt.dts = pts - start, dts - start
                pkt.duration = 1
                pkt.time_base = frame_tb
                pkt.stream = vs
                out.mux(pkt)
            finish()
    except (OSError, av.FFmpegError) as e:
        if cur is not None:
            try:
                cur[1].close()
            except Exception:  # noqa: BLE001
                pass
            digests.pop(cur[0], None)
            Path(wanted[cur[0]]).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            raise MediaError("disk full while reading the previous export back; free some space and export again.") from e
        return digests  # a damaged previous export: what was read is kept, the rest is rendered
    return digests
