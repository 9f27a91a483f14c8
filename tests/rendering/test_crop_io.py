"""Crop extraction and compositing back into the full frame."""

import numpy as np
from skimage import data

from dubstudio.rendering.crop_io import extract_crop, feather, paste_crop


def test_crop_then_paste_reproduces_the_frame_inside_the_box():
    frame = data.astronaut()
    box = np.array([225.0, 125.0, 160.0])
    crop = extract_crop(frame, box, 160)  # 1:1 scale: exact up to interpolation
    out = paste_crop(frame, crop, box, np.ones((160, 160), np.float32))
    region = (slice(60, 190), slice(160, 290))
    assert np.abs(out[region].astype(int) - frame[region].astype(int)).mean() < 1.0


def test_paste_only_changes_pixels_under_alpha():
    frame = data.astronaut()
    box = np.array([225.0, 125.0, 200.0])
    crop = np.zeros((128, 128, 3), np.uint8)
    alpha = np.zeros((128, 128), np.float32)
    alpha[40:90, 40:90] = 1
    out = paste_crop(frame, crop, box, alpha)
    changed = np.any(out != frame, axis=2)
    ys, xs = np.nonzero(changed)
    # The alpha square maps to [cx - side/2 + 40 * side/128, ...] in the frame.
    s = 200 / 128
    assert xs.min() >= 225 - 100 + 39 * s and xs.max() <= 225 - 100 + 91 * s
    assert ys.min() >= 125 - 100 + 39 * s and ys.max() <= 125 - 100 + 91 * s
    assert changed.sum() > 0.8 * (50 * s) ** 2


def test_crop_outside_the_frame_replicates_edges_and_downscales_smoothly():
    frame = data.astronaut()
    crop = extract_crop(frame, np.array([10.0, 10.0, 400.0]), 64)
    assert crop.shape == (64, 64, 3)
    assert crop.min() >= 0 and crop.std() > 5  # not a black or empty crop


def test_feather_is_soft_and_inside_the_mask():
    m = np.zeros((100, 100), np.uint8)
    m[20:80, 20:80] = 1
    a = feather(m, 6)
    assert a[50, 50] > 0.99 and a[:15].max() < 1e-3
    assert 0.05 < a[50, 22] < 0.95
