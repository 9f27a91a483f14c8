"""Interlaced sources: detected with their field order, and the order kept by a ProRes export."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.app.export import ExportRequest, export_job
from dubstudio.app.info import info_job
from dubstudio.app.renderer import RendererChoice
from dubstudio.export.mark import read_mark
from dubstudio.io.video import field_order
from dubstudio.io.video_writer import VideoWriter

pytestmark = pytest.mark.media


def probe_field_order(path) -> str:
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=field_order",
                        "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["streams"][0].get("field_order", "unknown")


@pytest.mark.parametrize("order", ["tt", "bb"])
def test_prores_codes_fields_in_the_given_order(tmp_path, order):
    out = tmp_path / "f.mov"
    with VideoWriter(out, Fraction(25), 256, 144, codec="prores_ks", pix_fmt="yuv422p10le", field_order=order) as w:
        for i in range(3):
            w.write(np.full((144, 256, 3), 40 * i, np.uint8))
    assert probe_field_order(out) == order
    assert field_order(out) == order  # and our reader reads it back


@pytest.mark.parametrize("codec,pix_fmt,suffix,opts", [("libx264", "yuv420p", "mp4", {}),
                                                        ("dnxhd", "yuv422p", "mxf", {"profile": "dnxhr_hq"})])
def test_h264_and_dnxhr_stay_progressive(tmp_path, codec, pix_fmt, suffix, opts):
    out = tmp_path / f"f.{suffix}"
    with VideoWriter(out, Fraction(25), 256, 144, codec=codec, pix_fmt=pix_fmt, options=opts, field_order="tt") as w:
        w.write(np.zeros((144, 256, 3), np.uint8))
    assert field_order(out) is None


@pytest.mark.parametrize("interlaced,order", [("tff", "tt"), ("bff", "bb")])
def test_export_of_an_interlaced_shot_keeps_its_field_order(derived_shot, tmp_path, interlaced, order):
    shot = derived_shot(n=12, fps=Fraction(25), scale=0.5, interlaced=interlaced)
    assert field_order(shot.clip) == order
    assert info_job(shot.clip)["scan"] == f"interlaced, {'top' if order == 'tt' else 'bottom'} field first"
    copy = RendererChoice(kind="copy", train_frames="0:6")
    export_job(ExportRequest(shot.project.root, tmp_path / "dub.mov", renderer=copy, threads=1))
    assert probe_field_order(tmp_path / "dub.mov") == order
    assert read_mark(tmp_path / "dub.mov")["manifest"]["field_order"] == order
    export_job(ExportRequest(shot.project.root, tmp_path / "dub.mp4", renderer=copy, threads=1))
    assert field_order(tmp_path / "dub.mp4") is None  # H.264 review copies are progressive; the manifest says what the source was
    man = read_mark(tmp_path / "dub.mp4")["manifest"]
    assert man["source_field_order"] == order and "field_order" not in man
