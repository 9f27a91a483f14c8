"""The synthetic mark on its own: the watermark touches only the given pixels (the rendered ones), by
+-amplitude, is found with its key and not without it; PNG text chunks; the manifest."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from dubstudio.export.mark import (
    WatermarkSettings,
    add_png_text,
    build_manifest,
    container_metadata,
    detect,
    embed,
    pattern,
    png_text_chunks,
    synthetic_mask,
)


def textured(seed: int, h: int = 320, w: int = 448) -> np.ndarray:
    """Smooth structure + fine noise: a stand-in for a video frame."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(30, 220, (h // 16, w // 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return (np.clip(base.astype(int), 40, 200) + rng.integers(-6, 7, (h, w, 3))).astype(np.uint8)  # 34..206: no clipping


def test_pattern_is_keyed_balanced_and_stable():
    p = pattern()
    assert p.shape == (64, 64) and set(np.unique(p)) == {-1, 1} and p.sum() == 0
    assert np.array_equal(p, pattern())
    assert abs((p * pattern("another key")).mean()) < 0.05
    assert np.array_equal(p[::2, ::2].repeat(2, 0).repeat(2, 1), p)  # v2: 2x2-pixel cells
    v1 = pattern(method="dubstudio-pn-luma-v1")
    assert v1.sum() == 0 and not np.array_equal(v1[::2, ::2].repeat(2, 0).repeat(2, 1), v1)  # v1: single pixels


def test_v1_marks_are_still_found_and_named():
    """Exports made before v2 carry v1 marks; check-mark must still find them."""
    frames = [textured(s) for s in range(10)]
    for method in ("dubstudio-pn-luma-v1", "dubstudio-pn-luma-v2"):
        marked = []
        for f in frames:
            g = f.copy()
            embed(g, 120, 160, np.ones((140, 180), bool), WatermarkSettings(amplitude=2, method=method))
            marked.append(g)
        found = detect(marked)
        assert found["present"] and found["method"] == method and set(found["scores"]) == {"dubstudio-pn-luma-v1", "dubstudio-pn-luma-v2"}
    with pytest.raises(ValueError, match="unknown watermark method"):
        WatermarkSettings(method="v3")


def test_v2_survives_x264s_default_quality_on_a_short_shot(tmp_path):
    """A 24-frame shot re-encoded at crf 23: the 2x2-cell mark stays far above the threshold where
    the single-pixel one (whose energy the encoder quantises first) is lost."""
    import av

    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.integers(60, 200, (256, 256, 3)).astype(np.float32), (0, 0), 6)  # smooth "skin"
    scores = {}
    for method in ("dubstudio-pn-luma-v1", "dubstudio-pn-luma-v2"):
        path = tmp_path / f"{method}.mp4"
        with av.open(str(path), "w") as c:
            st = c.add_stream("libx264", rate=25)
            st.width = st.height = 256
            st.pix_fmt, st.options = "yuv420p", {"crf": "23", "preset": "fast"}
            for k in range(24):
                f = np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
                embed(f, 64, 64, np.ones((128, 128), bool), WatermarkSettings(method=method))
                for pk in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(pk)
            for pk in st.encode():
                c.mux(pk)
        scores[method] = detect(path)["scores"][method]
    assert scores["dubstudio-pn-luma-v2"] > 20 and scores["dubstudio-pn-luma-v2"] > 2 * scores["dubstudio-pn-luma-v1"], scores


def test_embed_touches_only_the_mask_by_the_amplitude():
    frame = textured(0)
    out = frame.copy()
    out[100:200, 150:300] = np.clip(out[100:200, 150:300].astype(int) + 10, 0, 255)  # "rendered" pixels (no clipping)
    m = synthetic_mask(frame, out, np.array([225.0, 150.0, 160.0]))
    assert m is not None
    y0, x0, mask = m
    assert mask.sum() == np.any(out != frame, axis=2).sum()
    marked = embed(out.copy(), y0, x0, mask, WatermarkSettings(amplitude=2))
    d = marked.astype(int) - out
    assert np.abs(d).max() == 2
    assert np.array_equal(d[..., 0], d[..., 1]) and np.array_equal(d[..., 1], d[..., 2])  # luma only
    changed = np.any(d != 0, axis=2)
    assert not np.any(changed & ~np.any(out != frame, axis=2))
    psnr_region = 10 * np.log10(255**2 / (d[100:200, 150:300].astype(float) ** 2).mean())
    assert 40 < psnr_region < 45  # +-2 everywhere in the region: 42.1 dB
    assert synthetic_mask(frame, frame, np.array([225.0, 150.0, 160.0])) is None
    assert synthetic_mask(frame, out, None) is None


def test_with_the_composites_weight_the_mask_is_the_rendered_area_whatever_the_pixels():
    """A render that came out equal to the frame in places is still rendered there."""
    frame = textured(1)
    out = frame.copy()
    out[100:150, 150:300] += 1  # half the rendered rectangle differs, half happens to match
    w = np.zeros((100, 150), np.float32)
    w[10:90, 10:140] = 0.7
    w[40:60, 60:80] = 0.3  # mostly original, and unchanged below row 150: not marked there
    y0, x0, mask = synthetic_mask(frame, out, np.array([225.0, 150.0, 160.0]), (100, 150, w))
    assert (y0, x0) == (100, 150) and mask.sum() == 80 * 130 - 10 * 20
    assert np.array_equal(mask[:50], w[:50] > 0)  # changed pixels the composite touched
    assert not synthetic_mask(frame, frame.copy(), np.array([225.0, 150.0, 160.0]), (100, 150, w * 0.5))


def test_detect_finds_the_key_and_only_the_key():
    frames = [textured(s) for s in range(10)]
    marked = []
    for f in frames:
        g = f.copy()
        embed(g, 120, 160, np.ones((140, 180), bool), WatermarkSettings(amplitude=2))
        marked.append(g)
    yes = detect(marked)
    assert yes["present"] and yes["score"] > 20 and yes["frames"] == 10
    assert not detect(frames)["present"]
    assert not detect(marked, key="someone else's key")["present"]
    assert abs(detect(frames)["score"]) < 5


def test_png_text_chunks_are_valid():
    ok, buf = cv2.imencode(".png", textured(1)[:32, :32])
    data = add_png_text(buf.tobytes(), png_text_chunks({"version": "0.1.0"}))
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.text["dubstudio_synthetic"] == "1" and im.text["Software"] == "DubStudio 0.1.0"
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)


def test_manifest_and_container_tags():
    man = build_manifest(project="p", source_video="talk.mp4", frames=10, frames_rendered=9, fps="30000/1001",
                         renderer="copy-baseline", audio={"source": "de.wav"}, watermark=WatermarkSettings(), output_format="mp4")
    tags = container_metadata(man)
    assert tags["dubstudio_synthetic"] == "1" and "compositeSynthetic" in tags["digital_source_type"]
    back = json.loads(tags["dubstudio_manifest"])
    assert back["synthetic"] and back["frames_rendered"] == 9 and back["watermark"]["method"] == "dubstudio-pn-luma-v2" and back["watermark"]["cell"] == 2
    assert back["watermark"]["key_id"] and "key" not in back["watermark"]


def test_a_downscaled_copy_is_found_at_the_size_it_was_made_from(tmp_path):
    """The mark lives on the export's pixel grid: a 1280x720 export scaled to 960x540 and re-encoded
    (ffmpeg, as a re-upload would) is not found as it is, but is when resampled back to a larger
    standard size."""
    import subprocess

    import av

    rng = np.random.default_rng(5)
    base = cv2.resize(rng.integers(60, 200, (45, 80, 3)).astype(np.float32), (1280, 720), interpolation=cv2.INTER_CUBIC)
    src = tmp_path / "export.mp4"
    with av.open(str(src), "w") as c:
        st = c.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt, st.options = 1280, 720, "yuv420p", {"crf": "17", "preset": "fast"}
        for _ in range(24):
            f = np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
            embed(f, 200, 400, np.ones((320, 480), bool), WatermarkSettings())
            for pk in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pk)
        for pk in st.encode():
            c.mux(pk)
    small = tmp_path / "small.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-vf", "scale=960:540", "-c:v", "libx264", "-crf", "18", str(small)],
                   check=True, timeout=120)
    assert detect(src)["present"] and detect(src)["size"] is None
    as_is = detect(small)
    assert not as_is["present"], as_is
    found = detect(small, sizes="larger-standard")
    assert found["present"] and found["size"] == [1280, 720], found
    assert detect(small, sizes=[(1280, 720)])["present"]
