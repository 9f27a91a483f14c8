"""The adaptation holds a few frames out and chooses the mouth detail's settings on them; every
render of that actor uses the choice (issue 21)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

from tests.training.test_renderer_training import TINY


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.media
def test_adapt_holds_out_the_check_frames_and_renders_use_the_choice(talk_b_shot, tmp_path, monkeypatch):
    import dubstudio.training.trainer as trainer
    from dubstudio.app.adapt import AdaptRequest, adapt_job
    from dubstudio.app.renderer import RendererChoice, close_renderer, open_renderer
    from dubstudio.eval.detail_check import check_runs
    from dubstudio.rendering.mouth_detail import DetailSettings
    from dubstudio.shot import Shot

    project, tracking, _ = talk_b_shot
    root = tmp_path / "shot"
    shutil.copytree(project.root, root)  # its own copy: the shared shot stays unadapted
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY.to_dict()))
    trained = []
    real_adapt = trainer.adapt
    monkeypatch.setattr(trainer, "adapt", lambda *a, **kw: trained.append(list(kw["frames"])) or real_adapt(*a, **kw))

    req = AdaptRequest(root, 2, mode="full", config_file=cfg, device="cpu")
    res = adapt_job(req)
    held = [i for r in check_runs(tracking.has_face) for i in r]
    assert len(held) == 24 and not set(trained[-1]) & set(held)
    assert set(trained[-1]) | set(held) == set(range(tracking.n_frames))
    assert res.detail.frames == held and len(res.detail.scores) == 4
    # a two-step render is a grey smear: the check takes more of the mouth from the frames
    assert res.detail.chosen != {}, res.detail.describe()
    assert "mouth detail:" in res.describe() and res.to_json()["mouth_detail"]["chosen"] == res.detail.chosen
    r, _ = open_renderer(Shot.open(root), RendererChoice(device="cpu"))
    try:
        assert r.settings == res.detail.settings() != DetailSettings()
    finally:
        close_renderer(r)
    again = adapt_job(req)  # nothing to redo: the adaptation and its check are cached
    assert again.train.cached and again.detail.to_json() == res.detail.to_json()

    # without the check every frame trains, and the new actor renders with the default settings
    plain = adapt_job(replace(req, detail_check=False))
    assert plain.detail is None and trained[-1] == list(range(tracking.n_frames))
    r, _ = open_renderer(Shot.open(root), RendererChoice(device="cpu"))
    try:
        assert r.settings == DetailSettings()
    finally:
        close_renderer(r)
    # the checked actor, named by its file, still renders with its choice
    r, _ = open_renderer(Shot.open(root), RendererChoice(device="cpu", checkpoint=res.train.path))
    try:
        assert r.settings == res.detail.settings()
    finally:
        close_renderer(r)
