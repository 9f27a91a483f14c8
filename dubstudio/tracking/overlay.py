"""Tracking overlays for checking a track by eye: wireframe, landmarks, crop box, masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.io.video import VideoReader
from dubstudio.io.video_writer import VideoWriter
from dubstudio.tracking import topology as topo
from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH, rasterize_mask, triangle_groups
from dubstudio.core.controls import JAW
from dubstudio.tracking.result import Tracking


def _edges() -> np.ndarray:
    tris = topo.all_triangles()
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def draw_overlay(rgb: np.ndarray, t: Tracking, i: int, model=None, landmarks: bool = True) -> np.ndarray:
    """One annotated frame (a copy); frames without a face get a red 'no face' label."""
    img = rgb.copy()
    h, w = img.shape[:2]
    thick = max(1, int(round(min(h, w) / 500)))
    font = max(0.5, min(h, w) / 600)
    if not t.has_face[i]:
        cv2.putText(img, f"{i}  no face", (10, int(30 * font)), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 60, 60), 2 * thick, cv2.LINE_AA)
        return img
    model = model or t.model()
    verts = t.vertices_image(i, model=model)
    lower, mouth = triangle_groups(model.identity)
    mask = rasterize_mask(verts[:, :2], lower, mouth, (h, w))
    tint = img.astype(np.float32)
    tint[mask == MASK_LOWER_FACE] = tint[mask == MASK_LOWER_FACE] * 0.75 + np.array([40, 90, 255]) * 0.25
    tint[mask == MASK_MOUTH] = tint[mask == MASK_MOUTH] * 0.6 + np.array([255, 60, 60]) * 0.4
    img = tint.astype(np.uint8)
    shift = 4
    pts = np.round(verts[:, :2] * (1 << shift)).astype(np.int32)
    lines = [pts[e] for e in _edges()]
    cv2.polylines(img, lines, False, (80, 255, 120), 1, cv2.LINE_AA, shift)
    if landmarks:
        for x, y in t.landmarks[i, :, :2]:
            cv2.circle(img, (int(round(x)), int(round(y))), thick, (255, 255, 255), -1)
    cx, cy, side = t.crop[i]
    p0 = (int(round(cx - side / 2)), int(round(cy - side / 2)))
    p1 = (int(round(cx + side / 2)), int(round(cy + side / 2)))
    cv2.rectangle(img, p0, p1, (255, 220, 0), 2 * thick)
    jaw = float(t.controls[i, JAW])
    cv2.putText(img, f"{i}  jaw {jaw:+.2f}", (10, int(30 * font)), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 220, 0), 2 * thick, cv2.LINE_AA)
    bar = int(np.clip(jaw, 0, 1) * 200 * font)
    y0 = int(42 * font)
    cv2.rectangle(img, (10, y0), (10 + bar, y0 + int(10 * font)), (255, 220, 0), -1)
    return img


def write_overlay_video(video: Path, t: Tracking, out: Path, progress: Progress | None = None) -> Path:
    progress = progress or Progress()
    progress.stage("overlay")
    model = t.model()
    with VideoReader(video) as reader, VideoWriter(out, reader.fps, reader.width, reader.height, color=reader.color, sar=reader.sar) as writer:
        for i, rgb in reader.iter_frames():
            writer.write(draw_overlay(rgb, t, i, model))
            progress.update(i + 1, reader.n_frames)
    return out


def write_overlay_grid(video: Path, t: Tracking, out: Path, n: int = 12, cols: int = 4, tile: int = 360) -> Path:
    """A contact sheet of ``n`` evenly spaced annotated frames."""
    from dubstudio.io.atomic import atomic_write_bytes

    model = t.model()
    idx = np.linspace(0, t.n_frames - 1, n).round().astype(int)
    tiles = []
    with VideoReader(video) as reader:
        for i in idx:
            img = draw_overlay(reader.frame(int(i)), t, int(i), model)
            s = tile / max(img.shape[:2])
            img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
            canvas = np.zeros((tile, tile, 3), np.uint8)
            canvas[: img.shape[0], : img.shape[1]] = img
            tiles.append(canvas)
    rows = [np.concatenate(tiles[r * cols : (r + 1) * cols], axis=1) for r in range((len(tiles) + cols - 1) // cols)]
    rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)))
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
    atomic_write_bytes(out, png.tobytes())
    return out
