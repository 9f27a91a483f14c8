"""The synthetic mark: a machine-readable manifest in the container and an invisible watermark.

Two layers, so dubbed footage can be identified later:

1. **Metadata** (survives remuxing, lost on re-encoding by most tools): ``comment`` with a plain
   sentence, ``dubstudio_synthetic=1``, ``digital_source_type`` (the IPTC term for synthetic
   composites, as used by C2PA) and ``dubstudio_manifest`` (JSON: tool, version, project, frames
   rendered, audio source, date, watermark parameters). PNG sequences get the same manifest as
   ``manifest.json`` beside the frames and as tEXt chunks in every PNG.
2. **Watermark** (survives re-encoding): a keyed pseudo-random +-1 pattern of ``BLOCK`` x ``BLOCK``
   pixel cells, ``TILE`` x ``TILE`` pixels tiled on the output frame's pixel grid, added to the luma
   of the *synthetic* pixels only (those the composite changed or rendered at least half; every
   pixel the composite did not touch stays bit-identical to the source) at ``amplitude`` code
   values. :func:`detect` band-passes the luma of each frame, accumulates it per tile of the grid
   over the frames and correlates every tile with the key's (band-passed) pattern and with
   ``N_DECOYS`` patterns of other keys; the score is the key's statistic in standard deviations of
   the decoys' ones, so it needs no calibration per clip (an unmarked video scores like a decoy:
   N(0, 1)-like, max 4.4 over 7 real clips x 40 keys; threshold 8).

   Method v2 (2x2-pixel cells, the default since the eighth session) survives x264's default
   quality (crf 23) on a 24-frame shot where v1 (single-pixel cells, whose energy sits at the
   highest frequencies the encoder quantises first) fell to the threshold (benchmarks/
   watermark_bench.py, BENCHMARKS.md). :func:`detect` looks for both, so older exports are found.

The default key is public: the mark identifies DubStudio output, it does not resist a determined
adversary who knows the key (that would need a secret key and a learned watermark).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from dubstudio import __version__

__all__ = [
    "WatermarkSettings",
    "DIGITAL_SOURCE_TYPE",
    "pattern",
    "embed",
    "synthetic_mask",
    "detect",
    "build_manifest",
    "container_metadata",
    "png_text_chunks",
    "add_png_text",
    "read_mark",
]

DEFAULT_KEY = "dubstudio/synthetic/v1"
TILE = 64
# method name -> (cell size in pixels, box size of the detector's band-pass)
METHODS = {"dubstudio-pn-luma-v2": (2, 7), "dubstudio-pn-luma-v1": (1, 3)}
METHOD = "dubstudio-pn-luma-v2"  # what embed writes by default
N_DECOYS = 127
MIN_SHARE = 0.5  # a pixel at least this much rendered carries the mark
DETECT_THRESHOLD = 8.0  # unmarked clips x 40 keys: max 4.4 (N(0, 1)-like); marked crf-18 exports: hundreds
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"
HUMAN_NOTE = (
    "Synthetic media: the lower face in this video was re-rendered (visual dubbing) by DubStudio "
    "to match new dialogue; it does not show the original performance."
)


@dataclass(frozen=True)
class WatermarkSettings:
    enabled: bool = True
    amplitude: float = 2.0  # luma code values (of 255)
    key: str = DEFAULT_KEY
    method: str = METHOD

    def __post_init__(self) -> None:
        if not 0 < self.amplitude <= 16:
            raise ValueError(f"watermark amplitude must be in (0, 16] code values, got {self.amplitude}")
        if self.method not in METHODS:
            raise ValueError(f"unknown watermark method {self.method!r}: use one of {', '.join(METHODS)}")

    def describe(self) -> dict:
        if not self.enabled:
            return {"method": None}
        return {"method": self.method, "tile": TILE, "cell": METHODS[self.method][0], "amplitude": self.amplitude, "key_id": key_id(self.key)}


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def pattern(key: str = DEFAULT_KEY, tile: int = TILE, method: str = METHOD) -> np.ndarray:
    """(tile, tile) int8 of +-1 in cells of the method's size, balanced (as many +1 as -1), from ``key``."""
    cell = METHODS[method][0]
    n = tile // cell
    rng = np.random.default_rng(_seed(f"{method}:{key}"))
    p = np.ones(n * n, np.int8)
    p[: n * n // 2] = -1
    rng.shuffle(p)
    return np.kron(p.reshape(n, n), np.ones((cell, cell), np.int8))


def _decoys(tile: int = TILE, n: int = N_DECOYS, method: str = METHOD) -> np.ndarray:
    return np.stack([pattern(f"decoy-{k}", tile, method) for k in range(n)])


# -- embedding ------------------------------------------------------------------------------------


def synthetic_mask(original: np.ndarray, output: np.ndarray, box: np.ndarray | None,
                   weight: tuple[int, int, np.ndarray] | None = None) -> tuple[int, int, np.ndarray] | None:
    """The rendered pixels as (y0, x0, bool mask); None when there are none.

    Where ``output`` differs from ``original`` in the crop box's bounding rectangle; with
    ``weight`` (y0, x0, rendered share per pixel, ``RenderedFrame.weight``) also every pixel at
    least ``MIN_SHARE`` rendered whether or not it came out different (a render close to the
    frame, or the detail pass's original texture, would otherwise leave the mark only a
    scattering of pixels), and never a pixel the composite did not touch (weight 0)."""
    if box is None or output is original:
        return None
    if weight is not None:
        y0, x0, w = weight
        h, wd = w.shape
        changed = np.any(output[y0 : y0 + h, x0 : x0 + wd] != original[y0 : y0 + h, x0 : x0 + wd], axis=2)
        m = (w >= MIN_SHARE) | (changed & (w > 0))
        return (y0, x0, m) if m.any() else None
    h, w = original.shape[:2]
    cx, cy, side = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(cx - side / 2))), max(0, int(np.floor(cy - side / 2)))
    x1, y1 = min(w, int(np.ceil(cx + side / 2)) + 1), min(h, int(np.ceil(cy + side / 2)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    m = np.any(output[y0:y1, x0:x1] != original[y0:y1, x0:x1], axis=2)
    if not m.any():
        return None
    return y0, x0, m


def embed(canvas: np.ndarray, y0: int, x0: int, mask: np.ndarray, settings: WatermarkSettings = WatermarkSettings(), _cache: dict = {}) -> np.ndarray:  # noqa: B006 - pattern cache
    """Add the keyed pattern (+-amplitude on R, G and B alike, i.e. on luma only) to ``canvas``
    where ``mask`` (placed at y0, x0) is true; in place, returns ``canvas``."""
    if not settings.enabled or not mask.any():
        return canvas
    p = _cache.get((settings.key, settings.method))
    if p is None:
        p = _cache[(settings.key, settings.method)] = pattern(settings.key, TILE, settings.method)
    h, w = mask.shape
    ys = (np.arange(y0, y0 + h) % TILE)[:, None]
    xs = (np.arange(x0, x0 + w) % TILE)[None, :]
    delta = np.where(mask, p[ys, xs] * settings.amplitude, 0.0)
    if settings.amplitude != int(settings.amplitude):  # fractional: dither so the mean is right
        delta = np.floor(delta + np.random.default_rng(y0 * 7919 + x0).random(delta.shape))
    region = canvas[y0 : y0 + h, x0 : x0 + w]
    region[...] = np.clip(region.astype(np.int16) + delta.astype(np.int16)[..., None], 0, 255).astype(np.uint8)
    return canvas


# -- detection ------------------------------------------------------------------------------------


def _luma(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame.astype(np.float32)
    f = frame.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def _band(y: np.ndarray, box: int) -> np.ndarray:
    return y - cv2.blur(y, (box, box), borderType=cv2.BORDER_REFLECT)


def residual(frame: np.ndarray, clip: float = 8.0, box: int = 3) -> np.ndarray:
    """Band-passed luma (minus its ``box`` x ``box`` mean, clipped to +-clip so edges do not
    dominate), scaled to unit standard deviation so every frame weighs the same."""
    r = _band(_luma(frame), box)
    np.clip(r, -clip, clip, out=r)
    return r / (float(r.std()) + 1e-6)


def tiles(r: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(rows, tile, cols, tile) view of the whole tiles of the frame grid."""
    h, w = (r.shape[0] // tile) * tile, (r.shape[1] // tile) * tile
    return r[:h, :w].reshape(h // tile, tile, w // tile, tile)


def _frames_of(source, max_frames: int) -> Iterable[np.ndarray]:
    """Luma (or RGB) frames of a video file, a folder of PNGs, or an iterable of arrays."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
            for p in files[:max_frames]:
                img = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if img is not None:
                    yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            return
        from dubstudio.io.video import open_container

        with open_container(path, "video file") as c:
            if not c.streams.video:
                return
            st = c.streams.video[0]
            st.thread_type = "AUTO"
            for k, f in enumerate(c.decode(st)):
                if k >= max_frames:
                    break
                yield f.to_ndarray(format="rgb24")
        return
    for k, f in enumerate(source):
        if k >= max_frames:
            break
        yield np.asarray(f)


def _bank(key: str, method: str) -> np.ndarray:
    """(1 + N_DECOYS, TILE, TILE) float32: the key's pattern and the decoys, band-passed like the
    frames (tile-periodic), so each correlation is a matched filter."""
    box = METHODS[method][1]
    bank = np.concatenate([pattern(key, TILE, method)[None], _decoys(TILE, N_DECOYS, method)]).astype(np.float32)
    pad = box  # wrap around the tile: the pattern repeats on the frame's grid
    out = np.empty_like(bank)
    for k, p in enumerate(bank):
        big = np.pad(p, pad, mode="wrap")
        out[k] = _band(big, box)[pad:-pad, pad:-pad]
    return out


def _score(acc: np.ndarray, bank: np.ndarray) -> tuple[float, float]:
    c = np.einsum("yixj,dij->dyx", acc.astype(np.float32), bank)  # (1 + D, rows, cols)
    sd = c[1:].std(axis=0, ddof=1)
    z = c / np.where(sd > 0, sd, 1.0)
    stat = (np.maximum(z, 0.0) ** 2).sum(axis=(1, 2))
    spread = stat[1:].std(ddof=1)
    score = float((stat[0] - stat[1:].mean()) / spread) if spread > 0 else 0.0
    return score, float(z[0].max())


# frame sizes exports are commonly made at: what a downscaled copy may have been made from
STANDARD_SIZES = [(1280, 720), (1920, 1080), (2560, 1440), (3840, 2160), (720, 1280), (1080, 1920), (1440, 2560),
                  (2160, 3840), (1080, 1080), (2048, 858), (1998, 1080), (4096, 1716), (3996, 2160)]


def larger_standard_sizes(width: int, height: int, tolerance: float = 0.01, max_factor: float = 2.25) -> list[tuple[int, int]]:
    """Standard frame sizes larger than ``width`` x ``height`` (by at most ``max_factor``, e.g.
    1080p to 480p) with the same aspect ratio: the sizes a downscaled copy of an export may have
    been made from."""
    ar = width / height
    return [(w, h) for w, h in STANDARD_SIZES if width < w <= max_factor * width and abs(w / h - ar) <= tolerance * ar]


def detect(source, key: str = DEFAULT_KEY, max_frames: int = 300, threshold: float = DETECT_THRESHOLD,
           sizes: list[tuple[int, int]] | str | None = None) -> dict:
    """Look for the watermark (every method in ``METHODS``) in a video file, a PNG folder or an
    iterable of RGB frames (the first ``max_frames``).

    ``sizes``: also look at the frames resampled (bicubic) to each of these (width, height): the
    mark lives on the export's pixel grid, so a downscaled copy is checked at the size it was made
    from; ``"larger-standard"``: the ``larger_standard_sizes`` of the first frame. The best size is
    reported as ``size``.

    Each frame's band-passed luma is summed per tile position of the grid over the frames, then
    every tile is correlated with the key's pattern and with ``N_DECOYS`` decoy patterns. A tile's
    correlations are scaled by their spread over the decoys (so busy, static background tiles
    count as little as they deserve), and a pattern's statistic is the sum of its positive tile
    scores squared: the mark only sits in the tiles of the face, and this finds it wherever it
    is. ``score`` is the key's statistic in standard deviations of the decoys' statistics (under
    no mark the key is just one more decoy); the method (and size) that scores highest is reported.
    Returns ``{"score", "present", "threshold", "frames", "peak_tile_z", "method", "scores", "size"}``
    (``scores``: per method at the best size; ``size``: None for the frames as they are)."""
    acc: dict[tuple, np.ndarray] = {}
    n = 0
    for frame in _frames_of(source, max_frames):
        if sizes == "larger-standard":
            sizes = larger_standard_sizes(frame.shape[1], frame.shape[0])
        used = False
        for size in [None, *(sizes or [])]:
            f = frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)
            for method, (_cell, box) in METHODS.items():
                t = tiles(residual(f, box=box))
                if t.size == 0:
                    continue
                acc[(size, method)] = t.astype(np.float64) if (size, method) not in acc else acc[(size, method)] + t
                used = True
        n += used
    if not acc or n == 0:
        return {"score": 0.0, "present": False, "threshold": threshold, "frames": n, "peak_tile_z": 0.0, "method": None,
                "scores": {}, "size": None}
    banks = {m: _bank(key, m) for m in METHODS}
    scores = {k: _score(a, banks[k[1]]) for k, a in acc.items()}
    best = max(scores, key=lambda k: scores[k][0])
    score, peak = scores[best]
    return {
        "score": round(score, 2),
        "present": bool(score > threshold),
        "threshold": threshold,
        "frames": n,
        "peak_tile_z": round(peak, 2),
        "method": best[1],
        "scores": {m: round(v[0], 2) for (sz, m), v in scores.items() if sz == best[0]},
        "size": None if best[0] is None else list(best[0]),
    }


# -- metadata -------------------------------------------------------------------------------------


def build_manifest(
    *,
    project: str,
    source_video: str,
    frames: int,
    frames_rendered: int,
    fps: str,
    renderer: str,
    audio: dict,
    watermark: WatermarkSettings,
    output_format: str,
    side_by_side: bool = False,
    curves_edited: bool = False,
    settings: dict | None = None,
    source_timecode: str | None = None,
) -> dict:
    """What was made, by what, from what: the JSON stored in the container and beside PNGs.
    File *names* only (no folders): an export should not leak the editor's disk layout."""
    return {
        "synthetic": True,
        "digital_source_type": DIGITAL_SOURCE_TYPE,
        "note": HUMAN_NOTE,
        "tool": "DubStudio",
        "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project": project,
        "source_video": source_video,
        "source_timecode": source_timecode,  # the export starts at the same timecode (it conforms back)
        "frames": frames,
        "frames_rendered": frames_rendered,
        "fps": fps,
        "renderer": renderer,
        "curves_edited": curves_edited,
        "audio": audio,
        "format": output_format,
        "side_by_side": side_by_side,
        "watermark": watermark.describe(),
        "settings": settings or {},
    }


def container_metadata(manifest: dict, fmt_name: str = "mp4") -> dict[str, str]:
    """Container tags for mp4/mov (written with movflags=+use_metadata_tags); in MXF, whose muxer
    keeps only its own fields, as user comments (``comment_<key>``)."""
    tags = {
        "comment": HUMAN_NOTE,
        "description": HUMAN_NOTE,
        "dubstudio_synthetic": "1",
        "digital_source_type": DIGITAL_SOURCE_TYPE,
        "dubstudio_manifest": json.dumps(manifest, sort_keys=True, separators=(",", ":")),
    }
    if fmt_name == "mxf":
        return {f"comment_{k}": v for k, v in tags.items() if k != "description"} | {"product_name": "DubStudio"}
    return tags


def png_text_chunks(manifest: dict) -> bytes:
    """tEXt chunks (Software, Comment, dubstudio_synthetic, digital_source_type) as bytes."""
    items = {
        "Software": f"DubStudio {manifest.get('version', __version__)}",
        "Comment": HUMAN_NOTE,
        "dubstudio_synthetic": "1",
        "digital_source_type": DIGITAL_SOURCE_TYPE,
    }
    out = b""
    for k, v in items.items():
        data = k.encode("latin-1") + b"\0" + v.encode("latin-1", "replace")
        out += struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    return out


def add_png_text(png: bytes, chunks: bytes) -> bytes:
    """Insert ready-made chunks right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return png[:33] + chunks + png[33:]


def read_mark(path: str | Path) -> dict:
    """The metadata layer of a file or PNG folder: ``{"synthetic": bool, "manifest": dict|None}``."""
    path = Path(path)
    if path.is_dir():
        m = path / "manifest.json"
        if m.is_file():
            man = json.loads(m.read_text(encoding="utf-8"))
            return {"synthetic": bool(man.get("synthetic")), "manifest": man}
        return {"synthetic": False, "manifest": None}
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            text = dict(getattr(im, "text", {}) or {})
        return {"synthetic": text.get("dubstudio_synthetic") == "1", "manifest": None, "tags": text}
    from dubstudio.io.video import open_container

    with open_container(path, "video file") as c:
        tags = dict(c.metadata)
    for k in [k for k in tags if k.startswith("comment_")]:  # MXF user comments
        tags.setdefault(k.removeprefix("comment_"), tags[k])
    man = None
    if "dubstudio_manifest" in tags:
        try:
            man = json.loads(tags["dubstudio_manifest"])
        except ValueError:
            man = None
    return {"synthetic": tags.get("dubstudio_synthetic") == "1", "manifest": man}
