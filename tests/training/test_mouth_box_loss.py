"""The perceptual term's mouth box: where it looks, and that it stays inside the crop."""

import torch

from dubstudio.training.losses import mouth_boxes
from dubstudio.nn.config import TrainConfig


def _frames(b=2, t=3, r=64):
    x = torch.arange(b * t * 3 * r * r, dtype=torch.float32).reshape(b, t, 3, r, r)
    return x, x + 1


def test_box_is_centred_on_the_centre_frames_mouth():
    pred, target = _frames()
    reg = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    reg[0, 1, 40:50, 20:30] = 2  # centre frame of item 0: mouth centred at (44.5, 24.5)
    reg[0, 0, 0:5, 0:5] = 2  # other frames of the window do not count
    reg[1, 1, 30:60, 10:60] = 1  # item 1: no mouth, lower face only
    pb, tb = mouth_boxes(pred, target, reg, 16)
    assert pb.shape == (2, 3, 16, 16)
    torch.testing.assert_close(pb[0], pred[0, 1, :, 36:52, 16:32])
    torch.testing.assert_close(tb[0], target[0, 1, :, 36:52, 16:32])
    torch.testing.assert_close(pb[1], pred[1, 1, :, 36:52, 26:42])


def test_box_is_clamped_inside_the_crop_and_falls_back_to_the_centre():
    pred, target = _frames(b=1)
    reg = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    reg[0, 1, 60:64, 60:64] = 2
    pb, _ = mouth_boxes(pred, target, reg, 32)
    torch.testing.assert_close(pb[0], pred[0, 1, :, 32:64, 32:64])
    pb, _ = mouth_boxes(pred, target, torch.zeros_like(reg), 32)
    torch.testing.assert_close(pb[0], pred[0, 1, :, 16:48, 16:48])


def test_default_recipe_keeps_older_cache_keys():
    d = TrainConfig().key_dict()
    assert "vgg_region" not in d and "vgg_box" not in d
    assert TrainConfig(vgg_region="mouth").key_dict()["vgg_region"] == "mouth"
