"""Audio input: decode any audio track (wav of any bit depth, AAC in mp4, ...) to float32.

PyAV decodes; samples are placed by their timestamps (so a damaged packet becomes a short gap of
silence instead of shifting everything after it); soxr resamples (high quality; a window is
decoded with a margin so it equals the same span of a full load). Audio is resampled, video never
(ARCHITECTURE rule 6).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from dubstudio.core.errors import MediaError
from dubstudio.io.video import open_container, ffmpeg_reason

_MAX_BAD_PACKETS = 50  # more undecodable packets than this: the track is junk, not a glitch
_INT_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    duration_s: float
    codec: str


def check_complete(path: Path) -> None:
    """A clear MediaError for a cut-off audio file (an interrupted copy or download), as ``track``
    gives for a cut-off video: a WAV whose header declares more sound than the file holds, or an
    MP4/MOV whose boxes run past its end. Otherwise a dub would drive part of the shot and pad
    silence without a word."""
    from dubstudio.io.bwf import wav_data_shortfall
    from dubstudio.io.video import _mp4_is_truncated

    try:
        short = wav_data_shortfall(path)
    except (OSError, struct.error):
        short = None
    if short:
        raise MediaError(f"{path.name} is incomplete: its header declares {short} more bytes of sound than the file holds "
                         f"(an interrupted copy or export?); copy or export it again.")
    if short is None and _mp4_is_truncated(path):
        raise MediaError(f"{path.name} is incomplete (the file ends early, e.g. an interrupted download or copy); "
                         f"copy or export it again.")


def audio_info(path: str | Path) -> AudioInfo:
    """Sample rate, channel count, duration and codec of the first audio track (no decoding);
    a cut-off file is refused (``check_complete``)."""
    path = Path(path)
    if path.is_file():
        check_complete(path)
    with open_container(path, "audio file") as c:
        st = _audio_stream(c, path)
        cc = st.codec_context
        if st.duration and st.time_base:
            duration = float(st.duration * st.time_base)
        elif c.duration:
            duration = c.duration / av.time_base
        else:
            duration = 0.0
        channels = cc.channels if hasattr(cc, "channels") else len(cc.layout.channels)
        return AudioInfo(int(cc.sample_rate), int(channels), duration, cc.name)


def load_audio(
    path: str | Path,
    sr: int = 16000,
    mono: bool = True,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Decode the first audio track of ``path`` to float32 in [-1, 1] at ``sr`` Hz.

    Returns shape ``(n,)`` if ``mono`` (channels averaged) else ``(channels, n)`` like librosa.
    ``start_s``/``duration_s`` select a window (seconds from the start of the track).
    """
    path = Path(path)
    if sr <= 0 or start_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError("sr must be > 0, start_s and duration_s must be >= 0")
    chunks: list[np.ndarray] = []
    for seek in (start_s > 1.0, False):  # retry from the top if a seek lands past the window
        with open_container(path, "audio file") as c:
            st = _audio_stream(c, path)
            in_sr = int(st.codec_context.sample_rate)
            if in_sr <= 0:
                raise MediaError(f"{path.name}: the audio track has no sample rate; it is damaged.")
            first = int(round(start_s * in_sr))
            last = None if duration_s is None else first + int(round(duration_s * in_sr))
            # Decode a margin around a window so the resampler's edge transient falls outside
            # it: a window then equals the same span of a full load. The margin is a whole
            # number of resampling periods so both loads share one output sample grid.
            period = in_sr // math.gcd(in_sr, sr)
            margin = 0 if in_sr == sr else math.ceil(in_sr / 20 / period) * period
            pre = first if first < margin else margin
            post = 0 if last is None else margin
            if seek:  # jump close to the window; the decode loop trims to the exact sample
                c.seek(int((start_s - 0.5) / st.time_base), stream=st, backward=True)
            try:
                chunks = list(
                    _decode_window(c, st, path, in_sr, first - pre, last and last + post, mono, seek)
                )
                break
            except _SeekOvershoot:
                continue
    if not chunks:
        if start_s > 0:
            return np.zeros((0,) if mono else (1, 0), np.float32)
        raise MediaError(f"{path.name}: the audio track has no decodable samples; it is damaged.")
    x = np.concatenate(chunks, axis=1)  # (channels, pre + window + post) at in_sr
    y = _resample(x, in_sr, sr, int(round(x.shape[1] * sr / in_sr)))
    skip = int(round(pre * sr / in_sr))
    n_out = int(round((x.shape[1] - pre) * sr / in_sr))
    if duration_s is not None:
        n_out = min(n_out, int(round(duration_s * sr)))
    y = y[:, skip : skip + n_out]
    return np.ascontiguousarray(y[0] if mono else y)


def _audio_stream(c: av.container.InputContainer, path: Path) -> av.audio.stream.AudioStream:
    if not c.streams.audio:
        raise MediaError(
            f"{path.name} has no audio track; pick a file with sound or add the dialogue as a "
            f"separate audio file."
        )
    return c.streams.audio[0]


class _SeekOvershoot(Exception):
    """The demuxer's seek landed after the wanted start sample."""


def _decode_window(
    c: av.container.InputContainer,
    st: av.audio.stream.AudioStream,
    path: Path,
    in_sr: int,
    first: int,
    last: int | None,
    mono: bool,
    seeked: bool,
) -> Iterator[np.ndarray]:
    """Yield (channels, n) float32 blocks covering samples [first, last) of the file's timeline.

    Sample 0 is the container's start time (where the video starts too, for normal files): a track
    that starts later is preceded by silence, so audio stays aligned with the picture.
    """
    origin = round(c.start_time * in_sr / av.time_base) if c.start_time else 0
    pos: int | None = None  # timeline sample where the next block starts
    tol = max(1, in_sr // 500)  # coarse time bases jitter; trust continuity below 2 ms
    bad = 0
    for pkt in c.demux(st):
        try:
            frames = pkt.decode()
        except av.FFmpegError as e:
            bad += 1
            if bad > _MAX_BAD_PACKETS:
                raise MediaError(
                    f"the audio track of {path.name} is damaged ({ffmpeg_reason(e)}); re-export the file."
                ) from e
            continue
        for f in frames:
            block = _to_float(f)
            if mono and block.shape[0] > 1:
                block = block.mean(axis=0, keepdims=True)
            t0 = None if f.pts is None else round(f.pts * f.time_base * in_sr) - origin
            if pos is None:  # first block: place it by its timestamp
                a = 0 if t0 is None else t0
                if a > first:
                    if seeked:
                        raise _SeekOvershoot
                    block = _pad_front(block, a - first)  # track starts late: silence before it
                    a = first
            else:  # later blocks follow on, unless the timestamps show a real gap or overlap
                a = pos
                if t0 is not None and t0 - pos > tol:  # a packet was lost: fill with silence
                    block = _pad_front(block, t0 - pos)
                elif t0 is not None and pos - t0 > tol:  # overlap: keep what we already have
                    block = block[:, pos - t0 :]
            b = a + block.shape[1]
            pos = b
            lo, hi = max(a, first), b if last is None else min(b, last)
            if hi > lo:
                yield block[:, lo - a : hi - a]
            if last is not None and b >= last:
                return


def _pad_front(block: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([np.zeros((block.shape[0], n), np.float32), block], axis=1)


def _to_float(frame: av.AudioFrame) -> np.ndarray:
    """Any sample format -> (channels, n) float32."""
    a = frame.to_ndarray()
    ch = len(frame.layout.channels)
    if not frame.format.is_planar:
        a = a.reshape(-1, ch).T
    if a.dtype in _INT_SCALE:
        return (a / _INT_SCALE[a.dtype]).astype(np.float32)
    if a.dtype == np.uint8:
        return ((a.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    return a.astype(np.float32, copy=False)


def _resample(x: np.ndarray, in_sr: int, sr: int, n_out: int) -> np.ndarray:
    """(channels, n) at in_sr -> (channels, n_out) at sr, with soxr's high-quality filter."""
    if in_sr != sr:
        import soxr  # a librosa dependency; imported here so video-only users never pay for it

        y = soxr.resample(np.ascontiguousarray(x.T), in_sr, sr, quality="HQ").T
    else:
        y = x
    if y.shape[1] < n_out:
        y = np.pad(y, ((0, 0), (0, n_out - y.shape[1])))
    return np.ascontiguousarray(y[:, :n_out], dtype=np.float32)



# A file running this much past what a shot plays (a reel's dialogue stem) is decoded only as the
# window the shot hears, by export, the dub and the editor's waveform alike.
STEM_MARGIN_S = 10.0


def has_audio(path: str | Path) -> bool:
    """Whether ``path`` opens as media with an audio stream (False for unreadable files too)."""
    try:
        with av.open(str(path)) as c:
            return len(c.streams.audio) > 0
    except (av.FFmpegError, OSError):
        return False
