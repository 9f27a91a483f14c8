"""Colour tags: the reader reports them, the writer converts with them and writes them, so an
editor's player shows an export the way it shows the source."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest

from dubstudio.io.video import ColorTags, VideoReader, color_tags
from dubstudio.io.video_writer import VideoWriter

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 180, 150), (250, 250, 20)]


def inside(x: np.ndarray, w: int = 320) -> np.ndarray:
    """The bars without a few pixels either side of each edge (4:2:0 chroma is shared across them)."""
    step = w // len(COLOURS)
    cols = [c for i in range(len(COLOURS)) for c in range(i * step + 4, (i + 1) * step - 4)]
    return x[:, cols]


def bars(w: int = 320, h: int = 180) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    step = w // len(COLOURS)
    for i, c in enumerate(COLOURS):
        rgb[:, i * step:(i + 1) * step] = c
    return rgb


def probe(path) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "stream=color_range,color_space,color_transfer,color_primaries", "-of", "csv=p=0", str(path)],
                          capture_output=True, text=True, check=True).stdout.strip()


def decoded_as(path, matrix: str) -> np.ndarray:
    """The first frame as a player that assumes ``matrix`` shows it (none of our code)."""
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return f.reformat(format="rgb24", src_colorspace=matrix).to_ndarray().astype(int)


@pytest.mark.parametrize("codec,pix_fmt,ext", [("libx264", "yuv420p", "mp4"), ("prores_ks", "yuv422p10le", "mov")])
def test_a_bt709_source_gives_a_bt709_export(tmp_path, codec, pix_fmt, ext):
    out = tmp_path / f"hd.{ext}"
    rgb = bars()
    with VideoWriter(out, Fraction(25), rgb.shape[1], rgb.shape[0], codec=codec, pix_fmt=pix_fmt,
                     options={} if codec != "libx264" else None, color=ColorTags(1, 1, 1, 1)) as w:
        for _ in range(2):
            w.write(rgb)
    assert probe(out) == "tv,bt709,bt709,bt709"
    assert color_tags(out) == ColorTags(1, 1, 1, 1)
    # a player reading the tags (BT.709) sees the colours that were written
    assert np.abs(inside(decoded_as(out, "itu709") - rgb)).max() <= 4
    with VideoReader(out) as r:
        assert r.color == ColorTags(1, 1, 1, 1) and np.abs(inside(r.frame(0).astype(int) - rgb)).max() <= 2


def test_an_untagged_source_stays_untagged_and_decodes_as_the_reader_does(tmp_path):
    out = tmp_path / "plain.mp4"
    rgb = bars()
    with VideoWriter(out, Fraction(25), rgb.shape[1], rgb.shape[0]) as w:
        w.write(rgb)
    assert probe(out) == "unknown,unknown,unknown,unknown"
    with VideoReader(out) as r:  # untagged: swscale's BT.601 both ways
        assert not r.color.specified and np.abs(inside(r.frame(0).astype(int) - rgb)).max() <= 2
    # the shift a BT.709-tagged source would get without its tags: what the tagged export avoids
    assert np.abs(inside(decoded_as(out, "itu709") - rgb)).max() > 15


def test_full_range_is_kept(tmp_path):
    out = tmp_path / "full.mp4"
    rgb = bars()
    rgb[:, :10] = 0
    rgb[:, -10:] = 255
    with VideoWriter(out, Fraction(25), rgb.shape[1], rgb.shape[0], color=ColorTags(2, 2, 2, 2)) as w:
        w.write(rgb)
    assert probe(out).startswith("pc,")
    with VideoReader(out) as r:
        back = r.frame(0).astype(int)
    # full levels both ways (a range mix-up would give 16 / 235, or crush them)
    assert back[:, 2:6].mean() <= 2 and back[:, -6:-2].mean() >= 252 and np.median(np.abs(back - rgb)) <= 2


def test_decoding_4_2_0_is_not_biased_dark(tmp_path):
    """swscale's default 4:2:0 -> RGB path rounds down (about 1.2 levels on every pixel), which
    an export would carry into the untouched picture: the reader converts with accurate rounding,
    and a lossless round trip through the writer comes back unbiased."""
    rng = np.random.default_rng(0)
    blocks = (rng.random((16, 16, 3)) * 200 + 20).astype(np.uint8)
    rgb = np.repeat(np.repeat(blocks, 16, 0), 16, 1)  # flat 16 px blocks: 4:2:0 loses nothing inside
    out = tmp_path / "lossless.mp4"
    with VideoWriter(out, Fraction(25), 256, 256, options={"qp": "0", "preset": "veryfast"}) as w:
        w.write(rgb)
    with VideoReader(out) as r:
        back = r.frame(0).astype(int)
    centres = (slice(8, None, 16), slice(8, None, 16))
    bias = (back - rgb)[centres].mean(axis=(0, 1))
    assert np.abs(bias).max() < 0.3, bias
    with av.open(str(out)) as c:  # what the default conversion gives (the reader before)
        default = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert (default - rgb)[centres].mean() < -0.8
