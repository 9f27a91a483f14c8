"""A new actor's texture can start from the prior's mean texture instead of noise."""

import pytest
import torch

from dubstudio.nn.config import TrainConfig
from dubstudio.training.trainer import prior_mean_texture


def test_prior_mean_texture_adds_the_mean_of_the_identities_to_the_noise():
    cfg = TrainConfig(tex_resolution=16, tex_levels=2)
    torch.manual_seed(0)
    new = cfg.new_texture()
    noise = [p.detach().clone() for p in new.layers]
    a, b = cfg.new_texture(), cfg.new_texture()
    with torch.no_grad():
        for p in a.layers:
            p.fill_(1.0)
        for p in b.layers:
            p.fill_(3.0)
    prior_mean_texture(new, {"a": {k: v.half() for k, v in a.state_dict().items()}, "b": b.state_dict()})
    for p, n in zip(new.layers, noise):
        torch.testing.assert_close(p.detach(), n + 2.0)
    prior_mean_texture(new, {})  # a prior without textures: nothing to add
    for p, n in zip(new.layers, noise):
        torch.testing.assert_close(p.detach(), n + 2.0)


def test_tex_init_is_part_of_the_run_key_only_when_not_the_default():
    assert "tex_init" not in TrainConfig(tex_init="random").key_dict()  # runs from before it existed keep their keys
    assert TrainConfig().key_dict()["tex_init"] == "prior-mean"  # the default


def test_unknown_tex_init_is_refused(tmp_path):
    from dubstudio.core.errors import DubStudioError
    from dubstudio.training.trainer import TEX_INITS

    assert TEX_INITS == ("random", "prior-mean")
    with pytest.raises(DubStudioError, match="texture initialisation"):
        from dubstudio.training import trainer

        trainer._check_tex_init(TrainConfig(tex_init="zeros"))
