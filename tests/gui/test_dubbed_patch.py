"""The compare view's dubbed side is the original shown image plus the render's change."""

from __future__ import annotations

import numpy as np


def test_a_patch_changes_only_its_box_and_is_exact_at_full_size(qtbot):
    from dubstudio.gui.dubbed_frames import dubbed_patch
    from dubstudio.gui.frames import bgra_to_qimage

    rng = np.random.default_rng(1)
    orig = rng.integers(0, 255, (120, 80, 3), np.uint8)
    dub = orig.copy()
    dub[50:70, 30:50] = rng.integers(0, 255, (20, 20, 3), np.uint8)

    def as_image(rgb):
        return bgra_to_qimage(np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)]))

    def rgb_of(img):
        a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
        return a[:, : img.width(), 2::-1].copy()  # (the caller keeps img alive while this reads it)

    full = dubbed_patch(orig, dub, None)
    img = full.over(as_image(orig))
    assert np.array_equal(rgb_of(img), dub)
    # scaled: outside the box the shown original is untouched, whatever made it (decoder or proxy)
    shown = rng.integers(0, 255, (60, 40, 3), np.uint8)
    half = dubbed_patch(orig, dub, (40, 60))
    base = as_image(shown)
    img = half.over(base)
    out = rgb_of(img)
    box = np.zeros((60, 40), bool)
    box[half.y : half.y + half.diff.shape[0], half.x : half.x + half.diff.shape[1]] = True
    assert np.array_equal(out[~box], shown[~box]) and not np.array_equal(out[box], shown[box])
    assert box.sum() < 0.25 * box.size
    assert half.over(as_image(orig)) is None  # an image of another size (a zoom in between): not laid over
    assert dubbed_patch(orig, orig.copy(), (40, 60)).diff.size == 0
