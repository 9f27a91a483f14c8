"""The built-in sample clip: a still public-domain portrait with a synthetic camera move and speech.

The picture is scikit-image's ``astronaut()`` (NASA astronaut Eileen Collins, public domain), moved by a
small, smooth, sub-pixel camera move (slow zoom 1.00 -> 1.08, a few pixels of pan, +-2 degrees of roll)
so a face tracker sees real rigid motion. The sound is espeak-ng reading a few English sentences.

The mouth never moves: the clip exercises decode / track / crop / export, but cannot show lip motion.

Built deterministically with PyAV (H.264 yuv420p + AAC in MP4); nothing is downloaded.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.core.errors import DubStudioError
from dubstudio.core.paths import user_data_dir

SAMPLE_NAME = "sample_astronaut.mp4"
AUDIO_RATE = 48_000
# Two sentences that espeak-ng (at 160 words a minute) speaks in about 5.6 s: they fit the default 6 s.
DEFAULT_TEXT = "Hello, this is the DubStudio sample. The camera moves; the mouth stays still."
# Centre of the face in the 512x512 astronaut image (mediapipe face detection: box x 174-278, y 68-172).
_FACE_CENTER_512 = (225.0, 125.0)
_ZOOM_END = 1.08
_PAN_PX_512 = (4.0, 3.0)
_ROLL_DEG = 2.0
_AAC_FRAME = 1024


class SampleError(DubStudioError):
    """The built-in sample clip cannot be built (e.g. espeak-ng is missing)."""


def default_sample_path() -> Path:
    """Where the built-in sample lives: <user data dir>/sample/sample_astronaut.mp4."""
    return user_data_dir() / "sample" / SAMPLE_NAME


def ensure_sample() -> Path:
    """Return the built-in sample clip, building it first if it is missing."""
    path = default_sample_path()
    return build_sample(path.parent)


def build_sample(
    out_dir: Path,
    *,
    seconds: float = 6.0,
    fps: int = 25,
    size: int = 512,
    text: str | None = None,
    force: bool = False,
) -> Path:
    """Build ``out_dir/sample_astronaut.mp4`` and return its path.

    An existing file is reused unless ``force``. The same arguments (and espeak-ng version) always give
    the same clip. Raises :class:`SampleError` if espeak-ng is missing or the arguments are invalid.
    """
    out_dir = Path(out_dir)
    out = out_dir / SAMPLE_NAME
    if out.is_file() and out.stat().st_size > 0 and not force:
        return out
    if not (seconds > 0 and fps > 0):
        raise SampleError(f"Sample length and frame rate must be positive (got {seconds} s at {fps} fps).")
    if size < 64 or size % 2:
        raise SampleError(f"Sample size must be an even number of pixels >= 64 (got {size}).")

    n_frames = max(1, round(seconds * fps))
    duration = n_frames / fps
    audio = _speech(text or DEFAULT_TEXT, duration)
    base = _portrait(size)

    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".sample-", suffix=".mp4", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_mp4(tmp, _frames(base, n_frames), audio, fps, size)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


# ---------------------------------------------------------------------------------------------- picture


def _portrait(size: int) -> np.ndarray:
    """The astronaut portrait as RGB uint8, size x size."""
    import cv2
    from skimage import data

    img = np.ascontiguousarray(data.astronaut()[:, :, :3])
    if img.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_CUBIC
        img = cv2.resize(img, (size, size), interpolation=interp)
    return img


def camera_matrix(u: float, size: int = 512) -> np.ndarray:
    """2x3 affine matrix of the synthetic camera at normalised time u in [0, 1] (identity at u=0).

    Zoom and roll are about the face centre; the pan drifts a few pixels right and back, and down.
    """
    import cv2

    scale = size / 512.0
    cx, cy = _FACE_CENTER_512[0] * scale, _FACE_CENTER_512[1] * scale
    ease = 0.5 - 0.5 * math.cos(math.pi * u)  # smooth 0 -> 1
    zoom = 1.0 + (_ZOOM_END - 1.0) * ease
    roll = _ROLL_DEG * math.sin(2.0 * math.pi * u)
    dx = _PAN_PX_512[0] * scale * math.sin(math.pi * u)
    dy = _PAN_PX_512[1] * scale * ease

    m = cv2.getRotationMatrix2D((cx, cy), roll, zoom)
    m[0, 2] += dx
    m[1, 2] += dy
    return m


def _frames(base: np.ndarray, n_frames: int) -> Iterator[np.ndarray]:
    import cv2

    size = base.shape[0]
    for i in range(n_frames):
        u = i / (n_frames - 1) if n_frames > 1 else 0.0
        if i == 0:
            yield base
            continue
        yield cv2.warpAffine(
            base, camera_matrix(u, size), (size, size),
            flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101,
        )


# ---------------------------------------------------------------------------------------------- sound


def _speech(text: str, duration: float) -> np.ndarray:
    """espeak-ng reading ``text``: mono float32 at 48 kHz, padded with silence or trimmed to ``duration``."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SampleError(
            "espeak-ng is not installed; it speaks the built-in sample's dialogue. "
            "Run `bash installer/install.sh` or `sudo apt-get install espeak-ng`."
        )
    with tempfile.TemporaryDirectory(prefix="dubstudio-sample-") as tmpdir:
        wav = Path(tmpdir) / "speech.wav"
        proc = subprocess.run(
            [exe, "-v", "en", "-s", "160", "-w", str(wav), "--", text],
            capture_output=True, text=True, timeout=120,
        )
        if proc.returncode != 0 or not wav.is_file():
            raise SampleError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
        with wave.open(str(wav), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    if width != 2:
        raise SampleError(f"espeak-ng wrote {8 * width}-bit audio; expected 16-bit PCM.")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    if rate != AUDIO_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(AUDIO_RATE, rate)
        x = resample_poly(x, AUDIO_RATE // g, rate // g).astype(np.float32)

    n = round(duration * AUDIO_RATE)
    if len(x) >= n:
        x = x[:n].copy()
        fade = min(n, AUDIO_RATE // 50)  # 20 ms fade-out where speech is cut
        x[n - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    else:
        x = np.concatenate([x, np.zeros(n - len(x), np.float32)])
    return np.clip(x * 0.9, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- mux


def _write_mp4(path: Path, frames: Iterator[np.ndarray], audio: np.ndarray, fps: int, size: int) -> None:
    """Stream frames (H.264 yuv420p) and audio (AAC mono 48 kHz) into one MP4, interleaved in time."""
    import av

    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        v = container.add_stream("libx264", rate=fps)
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        v.time_base = Fraction(1, fps)
        v.options = {"crf": "18", "preset": "medium", "threads": "1"}
        a = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        a.time_base = Fraction(1, AUDIO_RATE)

        audio_pos = 0

        def push_audio(until: int) -> None:
            nonlocal audio_pos
            while audio_pos < min(until, len(audio)):
                chunk = audio[audio_pos:audio_pos + _AAC_FRAME]
                af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
                af.sample_rate = AUDIO_RATE
                af.pts = audio_pos
                af.time_base = Fraction(1, AUDIO_RATE)
                container.mux(a.encode(af))
                audio_pos += len(chunk)

        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            container.mux(v.encode(vf))
            push_audio((i + 1) * AUDIO_RATE // fps)
        push_audio(len(audio))
        container.mux(v.encode(None))
        container.mux(a.encode(None))
