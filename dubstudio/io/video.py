"""Frame-accurate video input on top of PyAV.

``VideoReader`` indexes the presentation timestamps of every video packet once (demux only, no
decode), so ``n_frames`` is exact and frame ``i`` is "the i-th frame in display order" even with
B-frames. Random access seeks to the keyframe at/before the wanted pts and decodes forward;
sequential access (``i == last + 1``) keeps decoding without seeking. Frames come out as upright
HxWx3 uint8 RGB (uint16 with ``deep=True``, for sources of more than 8 bits): display-matrix
rotation/flip side data is applied, and swscale converts with the frame's own range/matrix tags
(full-range ``yuvj420p`` comes out with full levels).

Every failure a user can meet becomes a one-sentence ``MediaError``; no raw ``av`` traceback.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dubstudio.core.errors import MediaError

log = logging.getLogger(__name__)


# swscale's default YUV 4:2:0 -> RGB path rounds down: every decoded frame came out about 1.2
# levels dark (1.9 from 10-bit), and an export's untouched pixels with it. Accurate rounding with
# full chroma interpolation is exact to +-0.3 (0 from 10-bit) for 7 ms a 1080p frame.
RGB_CONVERSION = (av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
                  | av.video.reformatter.Interpolation.FULL_CHR_H_INT)


@dataclass(frozen=True)
class ColorTags:
    """A video's colour description, as ffmpeg's enums (AVColorPrimaries, AVColorTransferCharacteristic,
    AVColorSpace, AVColorRange): 2 / 2 / 2 / 0 mean unspecified. The reader converts with the
    matrix and range; an export carries all four, so an editor's player shows it as the source."""

    primaries: int = 2
    trc: int = 2
    space: int = 2
    range: int = 0

    @classmethod
    def of(cls, frame: av.VideoFrame) -> ColorTags:
        return cls(int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace), int(frame.color_range))

    @property
    def specified(self) -> bool:
        return self != ColorTags()

    def describe(self) -> str:
        names = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
        rng = {1: "tv", 2: "pc"}.get(self.range, "unspecified range")
        return f"{names.get(self.space, 'matrix ' + str(self.space) if self.space != 2 else 'unspecified matrix')}, {rng}"

# Frame rates that are written rounded in many files (e.g. 2997/100); snapped to the exact rational.
_STANDARD_RATES = [Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)] + [
    Fraction(r) for r in (24, 25, 30, 48, 50, 60, 100, 120)
]
_MAX_SEEK_RETRIES = 4  # back off over this many earlier keyframes before decoding from the start
_MAX_BAD_PACKETS = 250  # this many undecodable packets in a row: the stream is junk, not a glitch


def color_tags(path: str | Path) -> ColorTags:
    """The first video frame's colour tags (unspecified when the file cannot be decoded: the
    caller's own reader reports that)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            for frame in c.decode(video=0):
                return ColorTags.of(frame)
    except (av.FFmpegError, OSError, ValueError, IndexError):
        pass
    return ColorTags()


def _sar(stream) -> Fraction:
    """A video stream's sample (pixel) aspect ratio; 1 when square or unknown."""
    for sar in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if sar and 0 < sar < 10:
            return Fraction(sar)
    return Fraction(1)


def sample_aspect(path: str | Path) -> Fraction:
    """The pixel aspect ratio of a video file (anamorphic footage: e.g. 2 for a 2x squeeze);
    1 when square, unknown or unreadable."""
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            return _sar(c.streams.video[0])
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return Fraction(1)


def field_order(path: str | Path) -> str | None:
    """An interlaced video's field order, "tt" (top field first) or "bb"; None when progressive
    (or unreadable: the caller's own open reports that)."""
    try:
        with VideoReader(path) as r:
            return None if not r.interlaced else ("tt" if r.top_field_first else "bb")
    except (MediaError, OSError):
        return None


def open_container(path: Path, what: str) -> av.container.InputContainer:
    """``av.open`` for reading, with every failure mapped to a one-sentence MediaError."""
    if not path.exists():
        raise MediaError(f"{what} not found: {path}; check the path and that the drive is mounted.")
    if path.is_dir():
        raise MediaError(f"{path} is a folder, not a {what}; pick the file inside it.")
    if path.stat().st_size == 0:
        raise MediaError(f"{path} is empty (0 bytes); re-copy or re-export the {what}.")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as e:
        if _mp4_is_truncated(path):
            raise MediaError(
                f"{path.name} is incomplete (the file ends early, e.g. an interrupted download or "
                f"copy); copy or export it again."
            ) from e
        target = "WAV" if "audio" in what else "MP4 (H.264)"
        raise MediaError(
            f"{path.name} is not a readable media file or is damaged ({ffmpeg_reason(e)}); "
            f"check the file or convert it to {target} first."
        ) from e
    except OSError as e:
        raise MediaError(f"cannot read {path}: {e.strerror or e}; check file permissions.") from e


def ffmpeg_reason(e: BaseException) -> str:
    """The FFmpeg reason without the errno and path clutter."""
    s = getattr(e, "strerror", None) or str(e)
    return str(s).split(":")[0].strip()


def _mp4_is_truncated(path: Path) -> bool:
    """True if an ISO-BMFF (mp4/mov) file's top-level boxes run past its end or 'moov' is missing."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 8 or head[4:8] not in (b"ftyp", b"mdat", b"moov", b"wide", b"free"):
                return False
            pos, seen_moov = 0, False
            while pos + 8 <= size:
                f.seek(pos)
                hdr = f.read(16)
                box_size = int.from_bytes(hdr[:4], "big")
                if hdr[4:8] == b"moov":
                    seen_moov = True
                if box_size == 1 and len(hdr) >= 16:
                    box_size = int.from_bytes(hdr[8:16], "big")
                elif box_size == 0:  # box extends to end of file
                    box_size = size - pos
                if box_size < 8:
                    return False  # not a box structure we understand: don't guess
                if pos + box_size > size:
                    return True
                pos += box_size
            return not seen_moov
    except OSError:
        return False


def _snap_rate(rate: Fraction) -> Fraction:
    for std in _STANDARD_RATES:
        if abs(rate - std) / std < 2e-4:
            return std
    return rate


# --- display orientation -------------------------------------------------------------------------


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    for item in frame.side_data:
        # PyAV up to 18.1.0 iterates the side data itself; 18.1.1 iterates it as a Mapping's keys
        sd = item if hasattr(item, "type") else frame.side_data[item]
        if getattr(sd.type, "name", str(sd.type)).upper().endswith("DISPLAYMATRIX"):
            buf = bytes(sd)
            if len(buf) >= 36:
                return np.frombuffer(buf[:36], dtype="<i4").astype(np.float64)
    return None


def _orientation_ops(m: np.ndarray | None) -> tuple[str, ...]:
    """numpy ops that make a frame upright, following ffmpeg's own autorotate rules.

    ``m`` is FFmpeg's 3x3 display matrix (row-major, 16.16 fixed point). Only multiples of 90
    degrees are handled; anything else is logged and left as stored.
    """
    if m is None:
        return ()
    s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if s0 == 0 or s1 == 0:
        return ()
    # av_display_rotation_get() is the counter-clockwise angle; ffmpeg negates it (clockwise).
    theta = -round(-math.degrees(math.atan2(m[1] / s1, m[0] / s0)))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return ("transpose",) if m[3] > 0 else ("rot_cw",)
    if abs(theta - 180) < 1:
        return tuple(op for op, flag in (("hflip", m[0] < 0), ("vflip", m[4] < 0)) if flag)
    if abs(theta - 270) < 1:
        return ("antitranspose",) if m[3] < 0 else ("rot_ccw",)
    if abs(theta) < 1:
        return ("vflip",) if m[4] < 0 else ()
    log.warning("rotation of %.1f degrees is not a multiple of 90; frames are left as stored", theta)
    return ()


def _apply_ops(rgb: np.ndarray, ops: tuple[str, ...]) -> np.ndarray:
    for op in ops:
        if op == "rot_cw":
            rgb = np.rot90(rgb, -1)
        elif op == "rot_ccw":
            rgb = np.rot90(rgb, 1)
        elif op == "transpose":
            rgb = rgb.transpose(1, 0, 2)
        elif op == "antitranspose":
            rgb = np.rot90(rgb, -1)[::-1]
        elif op == "hflip":
            rgb = rgb[:, ::-1]
        elif op == "vflip":
            rgb = rgb[::-1]
    return np.ascontiguousarray(rgb) if ops else rgb


# --- timing --------------------------------------------------------------------------------------


def _irregular_timing(pts: np.ndarray, tb: Fraction, fps: Fraction) -> dict | None:
    """How a variable-frame-rate file departs from its nominal rate, or None when every frame
    follows the last by one frame period (within a quarter of one: timestamp rounding). A phone
    clip that dropped frames has gaps; read at a constant rate its later frames would play early,
    off their sound."""
    if len(pts) < 3 or not fps:
        return None
    deltas = np.diff(pts).astype(np.float64) * float(tb)
    period = float(np.median(deltas))  # the step most frames take (a gap skews the average rate)
    if period <= 0:
        return None
    fps = _snap_rate(Fraction(1 / period).limit_denominator(1001))
    off = np.abs(deltas - period) > 0.25 * period
    if not off.any():
        return None
    gaps = deltas > 1.5 * period
    missing = int(np.round(deltas[gaps] / period).sum() - gaps.sum()) if gaps.any() else 0
    worst = int(np.argmax(np.abs(deltas - period)))
    return {"irregular_steps": int(off.sum()), "missing_frames": missing, "largest_step_s": round(float(deltas[worst]), 3),
            "at_frame": worst + 1, "nominal_fps": f"{fps.numerator}/{fps.denominator}"}


def describe_irregular(name: str, irregular: dict) -> str:
    """Why a variable-frame-rate file is refused, and the way to a constant-rate copy."""
    gap = (f"{irregular['missing_frames']} frame(s) missing from its timestamps" if irregular["missing_frames"]
           else f"{irregular['irregular_steps']} uneven frame step(s)")
    rate = irregular["nominal_fps"].removesuffix("/1")
    return (f"{name} has a variable frame rate ({gap}; a step of {irregular['largest_step_s']} s before frame "
            f"{irregular['at_frame']}): read at a constant rate its frames would drift from its sound. Make a "
            f"constant-rate copy that keeps each frame at its time (frames repeated across gaps), e.g. "
            f"`ffmpeg -i {name} -fps_mode cfr -r {rate} -c:a copy {Path(name).stem}_cfr.mp4`, and use that.")


# --- reader --------------------------------------------------------------------------------------


class VideoReader:
    """Random-access and streaming reader for the first video stream of a file.

    Not thread-safe: use one reader per thread (they are cheap to open).
    """

    def __init__(self, path: str | Path, *, cache_size: int = 8, threads: bool = True, deep: bool = False) -> None:
        self.path = Path(path)
        # deep: frames come out as uint16 RGB (rgb48), keeping a 10/12-bit source's precision
        self.deep = bool(deep)
        self._container = open_container(self.path, "video file")
        self._lru: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(0, cache_size)
        self._frames: Iterator[av.VideoFrame] | None = None
        self._next_index: int | None = None  # index the decoder will produce next, if known
        self.seek_count = 0  # for tests/diagnostics: how often frame access had to seek
        try:
            self._setup(threads)
        except BaseException:
            self.close()
            raise

    # -- opening --

    def _setup(self, threads: bool) -> None:
        c = self._container
        streams = [
            s
            for s in c.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic)  # cover art is not video
        ]
        self.has_audio = len(c.streams.audio) > 0
        if not streams:
            kind = "an audio-only file" if self.has_audio else "not a video"
            raise MediaError(f"{self.path.name} has no video stream ({kind}); choose a video file.")
        self._stream = s = streams[0]
        self._threads = threads
        if threads:
            s.thread_type = "AUTO"  # frame+slice threads: ~2x faster decode, same frames
        self.codec = s.codec_context.name
        self.pix_fmt = s.codec_context.pix_fmt or ""
        self._tb = s.time_base or Fraction(1, 90000)
        # pixel aspect ratio (frames are stored as coded; the display stretches them); read before
        # _first_frame reopens the container, which frees this stream object
        self.sar = _sar(s)
        order = int(s.codec_context.field_order or 0)  # AVFieldOrder (PyAV's frames do not carry top-first)
        self._index_packets()

        first = self._first_frame()
        self._ops = _orientation_ops(_display_matrix(first))
        self._coded_size = (first.width, first.height)
        swap = bool(self._ops) and self._ops[0] in ("rot_cw", "rot_ccw", "transpose", "antitranspose")
        self._swapped = swap  # stored frames are the display's transpose
        self.width, self.height = (first.height, first.width) if swap else (first.width, first.height)
        self.pix_fmt = first.format.name
        self.rotation = int(first.rotation)  # display-matrix angle (counter-clockwise), applied
        self.color = ColorTags.of(first)
        self.bit_depth = max((c.bits for c in first.format.components), default=8)  # of the stored samples

        self.fps = self._frame_rate()
        self.irregular = _irregular_timing(self._pts, self._tb, self.fps)
        self.interlaced = bool(getattr(first, "interlaced_frame", False))
        # TT and BT show the top field first, BB and TB the bottom; unknown: bottom, as FFmpeg reads
        # an interlaced frame without its top-first flag
        self.top_field_first = (order in (2, 5)) if self.interlaced else None
        span = Fraction(int(self._pts[-1] - self._pts[0])) * self._tb
        self.duration_s = float(span + 1 / self.fps)
        self.start_time_s = float(Fraction(int(self._pts[0])) * self._tb)
        if self._cache_size:
            self._lru[0] = self._to_rgb(first)

    def _frame_rate(self) -> Fraction:
        """average_rate, else guessed_rate, else measured from the index; 25 for a still image."""
        s = self._stream
        for rate in (s.average_rate, s.guessed_rate):
            if rate and 0 < rate <= 1000:  # image demuxers report garbage (even negative) rates
                return _snap_rate(Fraction(rate))
        span = (self._pts[-1] - self._pts[0]) * self._tb
        if self.n_frames > 1 and span > 0:
            return _snap_rate(Fraction(self.n_frames - 1) / Fraction(span).limit_denominator(10**6))
        return Fraction(25)

    def _index_packets(self) -> None:
        """Collect every video packet's pts without decoding (the frame index)."""
        pts: list[int] = []
        keys: list[int] = []
        n_packets = 0
        missing_ts = 0
        try:
            for pkt in self._container.demux(self._stream):
                if pkt.size == 0:
                    continue  # the flush packet at the end
                n_packets += 1
                if pkt.is_discard:
                    continue  # trimmed by an edit list: the decoder drops it too
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                if ts is None:
                    missing_ts += 1
                    continue
                pts.append(ts)
                if pkt.is_keyframe:
                    keys.append(ts)
        except av.FFmpegError as e:
            raise MediaError(
                f"{self.path.name} is damaged: reading failed after {n_packets} frames "
                f"({ffmpeg_reason(e)}); copy or export it again."
            ) from e
        declared = self._stream.frames
        if declared and n_packets < declared:
            raise MediaError(
                f"{self.path.name} is incomplete: its header lists {declared} frames but only "
                f"{n_packets} are in the file (interrupted download or copy?); copy it again."
            )
        if missing_ts:
            raise MediaError(
                f"{self.path.name} has frames without timestamps, so frame-accurate access is "
                f"impossible; remux it to MP4 first (ffmpeg -i in -c copy out.mp4)."
            )
        if not pts:
            raise MediaError(f"{self.path.name} contains no video frames; choose another file.")
        self._pts = np.unique(np.asarray(pts, dtype=np.int64))  # sorted display order
        self._keys = np.unique(np.asarray(keys or pts[:1], dtype=np.int64))

    def _first_frame(self) -> av.VideoFrame:
        """Decode the first frame (proves the stream decodes; gives orientation and true size)."""
        self._seek(0, reopen=True)  # demuxing left us at EOF; a fresh open works for any format
        frame = None
        try:
            frame = next(self._frames, None)  # type: ignore[arg-type]
        except av.FFmpegError as e:
            raise MediaError(
                f"{self.path.name} cannot be decoded ({self.codec}: {ffmpeg_reason(e)}); "
                f"convert it to H.264 MP4 and try again."
            ) from e
        if frame is None:
            raise MediaError(
                f"{self.path.name} has no decodable video frames ({self.codec}); "
                f"the file is damaged or uses an unsupported codec, convert it to H.264 MP4."
            )
        if frame.pts is not None and frame.pts > self._pts[0]:
            # Leading frames that can never be shown (e.g. open-GOP start): not part of the clip.
            self._pts = self._pts[self._pts >= frame.pts]
        self._next_index = 1
        return frame

    # -- public API --

    @property
    def n_frames(self) -> int:
        return int(len(self._pts))

    def __len__(self) -> int:
        return self.n_frames

    def time_of(self, i: int) -> Fraction:
        """Presentation time of frame ``i`` in seconds, relative to the first frame."""
        self._check_index(i)
        return Fraction(int(self._pts[i] - self._pts[0])) * self._tb

    def index_at(self, t: float | Fraction) -> int:
        """Index of the frame on screen at ``t`` seconds (relative to the first frame)."""
        target = self._pts[0] + Fraction(t) / self._tb
        i = int(np.searchsorted(self._pts, math.floor(target), side="right")) - 1
        return min(max(i, 0), self.n_frames - 1)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (display order) as an upright HxWx3 uint8 (``deep``: uint16) RGB array (the caller owns it)."""
        self._check_index(i)
        hit = self._lru.get(i)
        if hit is not None:
            self._lru.move_to_end(i)
            return hit.copy()
        rgb = self._decode_index(i)
        if self._cache_size:
            self._lru[i] = rgb
            while len(self._lru) > self._cache_size:
                self._lru.popitem(last=False)
            return rgb.copy()
        return rgb

    def __getitem__(self, i: int) -> np.ndarray:
        return self.frame(i)

    def display_frame(self, i: int, size: tuple[int, int]) -> np.ndarray:
        """Frame ``i`` for a screen: upright, ``size`` = (width, height), HxWx4 uint8 BGRA (a
        QImage's RGB32 in memory). One libswscale pass converts and scales, which is several
        times cheaper than ``frame`` at full size plus a resize; not for processing."""
        self._check_index(i)
        return self._to_display(self._decode_av(i), size)

    def iter_display(self, size: tuple[int, int], start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``display_frame`` for ``start <= index < stop``, streaming; an undecodable frame
        repeats the previous one (as ``iter_frames``)."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        last: np.ndarray | None = None
        for i in range(max(0, start), stop):
            try:
                img = self._to_display(self._decode_av(i), size)
            except MediaError:
                if last is None:
                    raise
                img = last
            last = img
            yield i, img

    def _to_display(self, frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
        w, h = max(2, int(size[0])), max(2, int(size[1]))
        cw, ch = (h, w) if self._swapped else (w, h)
        # at full size the same conversion as ``frame`` (the pixels an editor judges at 1:1)
        flags = RGB_CONVERSION if (cw, ch) == self._coded_size else "AREA"
        try:
            img = frame.to_ndarray(format="bgra", width=cw, height=ch, interpolation=flags)
        except av.FFmpegError as e:
            raise MediaError(f"{self.path.name}: cannot convert {frame.format.name} frames for display ({ffmpeg_reason(e)})") from e
        return np.ascontiguousarray(_apply_ops(img, self._ops))

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, rgb)`` for ``start <= index < stop``, streaming (nothing is kept).

        A frame that cannot be decoded (damaged file) is replaced by the previous good frame and
        a warning is logged, so long jobs keep going; a damaged first frame raises MediaError.
        """
        stop = self.n_frames if stop is None else stop
        if not (0 <= start <= self.n_frames and start <= stop <= self.n_frames):
            raise MediaError(
                f"frame range {start}..{stop} is outside {self.path.name} (0..{self.n_frames}); "
                f"pick a range inside the clip."
            )
        last: np.ndarray | None = None
        for i in range(start, stop):
            try:
                cached = self._lru.get(i) if self._next_index != i else None
                rgb = cached.copy() if cached is not None else self._decode_index(i)
            except MediaError:
                if last is None:
                    raise
                log.warning("%s: frame %d is undecodable; repeating frame %d", self.path.name, i, i - 1)
                rgb = last.copy()
            last = rgb
            yield i, rgb

    def close(self) -> None:
        self._frames = None
        self._lru.clear()
        c, self._container = getattr(self, "_container", None), None
        if c is not None:
            c.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, {self.fps} fps, "
            f"{self.n_frames} frames, {self.codec})"
        )

    # -- decoding --

    def _check_index(self, i: int) -> None:
        if self._container is None:
            raise MediaError(f"{self.path.name} was closed; open a new VideoReader.")
        if not isinstance(i, (int, np.integer)) or not 0 <= i < self.n_frames:
            raise MediaError(
                f"frame {i} is out of range: {self.path.name} has {self.n_frames} frames; "
                f"use an index from 0 to {self.n_frames - 1}."
            )

    def _seek(self, ts: int, reopen: bool = False) -> None:
        """Position the decoder at the keyframe at/before ``ts``; ``reopen`` restarts from the top.

        Reopening is the fallback for demuxers that cannot seek (e.g. a still image) or whose
        index sends the seek too late.
        """
        if not reopen:
            try:
                self._container.seek(int(ts), backward=True, any_frame=False, stream=self._stream)
            except av.FFmpegError as e:  # unseekable input: start over instead
                log.debug("%s: seek to %d failed (%s); reopening", self.path.name, ts, e)
                reopen = True
        if reopen:
            index = self._stream.index
            self._frames = None
            self._container.close()
            self._container = open_container(self.path, "video file")
            self._stream = self._container.streams[index]
            if self._threads:
                self._stream.thread_type = "AUTO"
        self._frames = self._decode_packets()
        self._next_index = None

    def _decode_packets(self) -> Iterator[av.VideoFrame]:
        """Decoded frames from the current position; a bad packet is skipped, not fatal."""
        bad = 0
        for pkt in self._container.demux(self._stream):
            try:
                frames = pkt.decode()  # the final empty packet drains the decoder
            except av.FFmpegError as e:
                bad += 1
                log.debug("%s: skipping undecodable packet at pts %s: %s", self.path.name, pkt.pts, e)
                if bad >= _MAX_BAD_PACKETS:
                    raise
                continue
            bad = 0
            yield from frames

    def _decode_index(self, i: int) -> np.ndarray:
        return self._to_rgb(self._decode_av(i))

    def _decode_av(self, i: int) -> av.VideoFrame:
        target = int(self._pts[i])
        frame = None
        if self._next_index == i and self._frames is not None:
            frame = self._advance_to(target)
        if frame is None:
            # Keyframe at/before target first, then earlier keyframes (open GOPs, odd indexes),
            # finally the very start of the stream.
            earlier = self._keys[self._keys <= target][::-1][1:_MAX_SEEK_RETRIES]
            for ts in [target, *earlier.tolist(), None]:
                self.seek_count += 1
                self._seek(0 if ts is None else ts, reopen=ts is None)
                frame = self._advance_to(target)
                if frame is not None:
                    break
        if frame is None:
            self._next_index = None
            raise MediaError(
                f"frame {i} of {self.path.name} cannot be decoded (the file is damaged near "
                f"{float(self.time_of(i)):.2f} s); re-export the video."
            )
        self._next_index = i + 1
        return frame

    def _advance_to(self, target: int) -> av.VideoFrame | None:
        """Decode forward to the frame with pts ``target``; None if it was passed or never came."""
        try:
            for f in self._frames:  # type: ignore[union-attr]
                if f.pts is None or f.pts < target:
                    continue
                return f if f.pts == target else None
        except av.FFmpegError as e:
            log.warning("%s: decode error near pts %d: %s", self.path.name, target, e)
        self._frames = None
        return None

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = self._coded_size
        try:
            rgb = frame.to_ndarray(format="rgb48le" if self.deep else "rgb24", width=w, height=h, interpolation=RGB_CONVERSION)
        except av.FFmpegError as e:
            raise MediaError(
                f"{self.path.name}: cannot convert {frame.format.name} frames to RGB ({ffmpeg_reason(e)}); "
                f"convert the video to H.264 MP4."
            ) from e
        return _apply_ops(rgb, self._ops)
