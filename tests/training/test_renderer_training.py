"""Neural renderer training on a short real clip: learning, texture-only adaptation, resume,
cancel, rendering. Tiny widths at R = 64 so the whole file stays well under a minute on 2 cores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import Cancelled
from dubstudio.project.store import Project
from dubstudio.nn.generator import GeneratorConfig
from dubstudio.rendering.rasterizer import rasterize_frames
from dubstudio.tracking.crops import MASK_MOUTH
from dubstudio.nn import checkpoint as ckpt
from dubstudio.training.data import FrameCache, WindowSampler
from dubstudio.shot.tracking import tracking_of
from dubstudio.training.trainer import Session, adapt, train_prior
from dubstudio.nn.config import TrainConfig

pytestmark = pytest.mark.media

N_FRAMES = 40
TINY = TrainConfig(
    resolution=64,
    batch_size=2,
    generator=GeneratorConfig(width=4, mults=(1, 2, 4, 8), audio_dim=8),
    tex_resolution=32,
    tex_levels=2,
    checkpoint_every=1000,
    checkpoint_seconds=1e9,
)


def _trim(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` frames of ``src`` with their audio, re-encoded into ``dst`` (tmp only)."""
    import av

    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import VideoReader

    with VideoReader(src) as r:
        frames = [rgb for _, rgb in r.iter_frames(0, n)]
        fps = r.fps
    audio = load_audio(src, sr=16000, duration_s=float(n / fps))
    h, w = frames[0].shape[:2]
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "14", "preset": "ultrafast"}
        aus = out.add_stream("aac", rate=16000, layout="mono")
        for rgb in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        for i in range(0, len(audio), 1024):
            f = av.AudioFrame.from_ndarray(audio[None, i : i + 1024].astype(np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i
            for p in aus.encode(f):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)
    return dst


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads can be 10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def clip_project(media, tmp_path_factory) -> Project:
    from dubstudio.tracking.track import track

    d = tmp_path_factory.mktemp("render_train")
    clip = _trim(media / "talk_b.mp4", d / "talk_b_head.mp4", N_FRAMES)
    project = Project.create(d / "proj", clip)
    track(clip, project)
    return project


@pytest.fixture(scope="module")
def prior_file(clip_project, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prior") / "prior.pt"
    train_prior([clip_project], out, 3, TINY, frames=range(0, 24))
    return out


def _gen_state(state: dict) -> dict:
    return {k: v.clone() for k, v in state.items()}


def test_frame_cache_is_built_once_and_windows_clamp(clip_project):
    c1 = FrameCache.build(clip_project, range(0, 12), 64)
    assert c1.crops.shape == (12, 64, 64, 3) and c1.crops.dtype == np.uint8
    assert c1.uv.dtype == np.float16 and c1.regions.dtype == np.uint8 and c1.mel.shape == (12, 80, 16)
    assert (c1.regions == 2).any() and (c1.regions == 1).any()
    mtimes = {p: p.stat().st_mtime_ns for p in (clip_project.root / "cache" / "frames_64").rglob("chunk_*.npz")}
    c2 = FrameCache.build(clip_project, range(0, 12), 64)
    assert np.array_equal(c1.crops, c2.crops)
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}  # loaded, not rebuilt
    s = WindowSampler({"a": c1}, 3)
    assert s.fixed("a", [0], 5).frames.tolist() == [[0, 0, 1]]  # clamped at the start
    assert s.fixed("a", [11], 5).frames.tolist() == [[10, 11, 11]]  # and at the end
    b = s.sample(np.random.default_rng(0), ["a", "a"])
    assert b.crops.shape == (2, 3, 64, 64, 3) and b.ref.shape == (2, 64, 64, 3)


def test_loss_decreases_on_a_fixed_window(clip_project):
    torch.manual_seed(0)
    cache = FrameCache.build(clip_project, range(0, 12), 64)
    sampler = WindowSampler({"a": cache}, 3)
    fixed = sampler.fixed("a", [4, 8], 0)
    sampler.sample = lambda rng, names: fixed  # always the same two windows
    cfg = TINY.replace(lr_g=5e-3, lr_tex=2e-2)
    sess = Session(cfg, "cpu", sampler, lambda rng: ["a", "a"], {"a": cfg.new_texture()}, ["a"], True)
    losses = [sess.train_step()["l1"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:3]), losses


def test_texture_mode_trains_only_the_texture(clip_project, prior_file):
    prior = ckpt.load(prior_file, "prior")
    res = adapt(clip_project, "texture", 4, frames=range(0, 24), prior=prior_file, cfg=TINY)
    actor = ckpt.load(res.path, "actor")
    assert actor["generator"] is None and actor["mode"] == "texture"  # only the texture is stored
    from dubstudio.rendering.renderer import ActorRenderer

    r = ActorRenderer.load(clip_project, "cpu", mode="texture")
    for k, v in r.gen.state_dict().items():
        assert torch.equal(v, prior["generator"][k]), k  # renderer bit-identical to the prior
    torch.manual_seed(TINY.seed)
    fresh = TINY.new_texture()
    changed = [not torch.equal(v.float(), fresh.state_dict()[k].half().float()) for k, v in actor["texture"].items()]
    assert all(changed)
    assert all(v.dtype == torch.float16 for v in actor["texture"].values())
    assert res.stored_bytes <= 1_000_000
    seen = actor["seen_texels"]  # the texels the 24 training frames sampled, stored for rendering
    assert seen.dtype == torch.bool and seen.shape == (TINY.tex_resolution,) * 2 and 0 < seen.sum() < seen.numel()
    # the default (R = 128) texture, stored the same way, also fits the 1 MB budget
    assert TrainConfig().new_texture().n_bytes() <= 1_000_000


def test_default_texture_file_is_under_a_megabyte(tmp_path):
    cfg = TrainConfig()
    n = ckpt.save(tmp_path / "a.pt", "actor", {"texture": cfg.new_texture().state_fp16(), "config": cfg.to_dict()})
    assert n <= 1_000_000, n


def test_resume_reproduces_the_next_step(clip_project):
    kw = dict(frames=range(0, 24), cfg=TINY)
    adapt(clip_project, "full", 4, restart=True, **kw)
    resumed = adapt(clip_project, "full", 5, **kw)  # loads the step-4 state from disk, one more step
    assert resumed.resumed_from == 4 and resumed.steps_run == 1
    a = _gen_state(ckpt.load(resumed.path, "actor")["generator"])
    straight = adapt(clip_project, "full", 5, restart=True, **kw)
    assert straight.resumed_from == 0 and straight.steps_run == 5
    b = ckpt.load(straight.path, "actor")["generator"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cancel_saves_a_checkpoint_and_the_rerun_resumes(clip_project):
    # the user cancels while step 3 is reported; the job stops at its next progress update
    progress = Progress(lambda ev: ev.done == 3 and progress.token.cancel())
    with pytest.raises(Cancelled):
        adapt(clip_project, "full", 8, frames=range(0, 24), cfg=TINY, progress=progress, restart=True)
    states = list((clip_project.root / "cache" / "adapt").glob("full-*.state.pt"))
    assert len(states) == 1 and ckpt.load(states[0], "adapt-state")["step"] == 4
    res = adapt(clip_project, "full", 8, frames=range(0, 24), cfg=TINY)
    assert res.resumed_from == 4 and res.steps_run == 4 and res.steps == 8


def test_render_crops_keeps_the_real_crop_outside_the_mask(clip_project, prior_file):
    from dubstudio.io.video import VideoReader
    from dubstudio.rendering.crop_io import extract_crop
    from dubstudio.rendering.renderer import ActorRenderer

    adapt(clip_project, "texture", 2, frames=range(0, 24), prior=prior_file, cfg=TINY, restart=True)
    r = ActorRenderer.load(clip_project, "cpu")
    assert r.resolution == 64
    idx = [30, 31, 39]
    out = r.render_crops(idx)
    assert out.shape == (3, 64, 64, 3) and out.dtype == np.uint8
    out2, masks = r.render_crops(idx, return_masks=True)
    assert np.array_equal(out, out2)
    tracking, _ = tracking_of(clip_project)
    with VideoReader(clip_project.video_path) as reader:
        real = np.stack([extract_crop(reader.frame(i), tracking.crop[i], 64) for i in idx])
    assert masks.any(axis=(1, 2)).all() and (~masks).any(axis=(1, 2)).all()
    assert np.array_equal(out[~masks], real[~masks])
    # edited controls (mouth wide open) and another audio window: same interface, bigger mask
    ctrl = tracking.controls[idx].copy()
    ctrl[:, 0] = 1.5
    edited, emasks = r.render_crops(idx, controls=ctrl, mel=np.zeros((3, 80, 16), np.float32), return_masks=True)
    assert edited.shape == out.shape and emasks.sum() >= masks.sum()
    assert np.array_equal(edited[~emasks], real[~emasks])
    # texels adaptation never saw: their pixels keep the real crop, except at the mouth
    assert r.seen_texels is not None and r.seen_texels.any() and not r.seen_texels.all()
    r.seen_texels = np.zeros_like(r.seen_texels)
    blind, bmasks = r.render_crops(idx, return_masks=True)
    assert bmasks.sum() < masks.sum() and np.array_equal(blind[~bmasks], real[~bmasks])
    regions = rasterize_frames(tracking, idx, 64).regions.numpy()
    assert bmasks[regions == MASK_MOUTH].all()
    r.close()


def test_window_neighbours_follow_the_shot_controls_however_frames_are_batched(clip_project, prior_file):
    """The generator sees each frame's neighbours too. Rendered in pieces (export batches, the
    editor's single frames), a dubbed frame at a piece's edge must see its neighbours dubbed, not
    tracked: else the mouth pops towards the original every batch (found on talk_b + German)."""
    from dubstudio.rendering.renderer import ActorRenderer

    adapt(clip_project, "full", 3, frames=range(0, 24), prior=prior_file, cfg=TINY, restart=True)
    r = ActorRenderer.load(clip_project, "cpu")
    tracking, _ = tracking_of(clip_project)
    shot = tracking.controls.astype(np.float64).copy()
    shot[:, 0] = np.where(np.arange(len(shot)) % 2 == 0, 1.2, -0.2)  # every other frame wide open
    idx = list(range(28, 36))
    whole = r.render_crops(idx, shot_controls=shot).astype(int)
    single = np.stack([r.render_crops([i], shot_controls=shot)[0] for i in idx]).astype(int)
    assert np.abs(single - whole).max() <= 1  # batching changes nothing (float rounding at most)
    # without the shot's controls a lone frame's neighbours are tracked: a different picture
    lone = np.stack([r.render_crops([i], controls=shot[i])[0] for i in idx]).astype(int)
    assert np.abs(lone - whole).mean() > 4 * max(np.abs(single - whole).mean(), 0.01)
    with pytest.raises(ValueError, match="shot_controls"):
        r.render_crops(idx, shot_controls=shot[:10])
    r.close()


def test_export_batches_do_not_change_a_dubbed_render(clip_project, prior_file):
    from dubstudio.rendering.render_job import RenderSettings, render_frames
    from dubstudio.rendering.renderer import ActorRenderer

    adapt(clip_project, "full", 3, frames=range(0, 24), prior=prior_file, cfg=TINY, restart=True)
    r = ActorRenderer.load(clip_project, "cpu")
    tracking, _ = tracking_of(clip_project)
    shot = tracking.controls.astype(np.float64).copy()
    shot[:, 0] = np.where(np.arange(len(shot)) % 2 == 0, 1.2, -0.2)

    def frames(batch: int, span: range = range(26, 38)) -> np.ndarray:
        s = RenderSettings(batch_size=batch, background=None)
        return np.stack([f.output for f in render_frames(clip_project, tracking, r, span, shot, settings=s)]).astype(int)

    a, b = frames(12), frames(3)
    assert np.abs(a - b).max() <= 2, "frames at batch edges differ from the same frames mid-batch"
    # a sub-range given the whole shot's curves: its edge frames see their dubbed neighbours too
    assert np.abs(frames(12, range(30, 34)) - a[4:8]).max() <= 2
    r.close()


def test_cli_adapt_prints_one_json_line(clip_project, prior_file, tmp_path, capsys):
    import argparse
    import json

    from dubstudio.cli.train import register

    parser = argparse.ArgumentParser(prog="dubstudio")
    register(parser.add_subparsers(dest="command"))
    over = tmp_path / "tiny.json"
    over.write_text(json.dumps({k: v for k, v in TINY.to_dict().items() if k != "generator"}))
    args = parser.parse_args([
        "adapt", "--project", str(clip_project.root), "--prior", str(prior_file), "--mode", "texture",
        "--steps", "2", "--frames", "0:24", "--config", str(over), "--restart", "--json",
    ])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 2 and out["mode"] == "texture" and out["stored_bytes"] > 0
    assert {"final_loss", "steps_per_s", "wall_s"} <= set(out)


def test_open_renderer_adds_the_mouth_detail_by_default(clip_project, prior_file):
    """What export, render and the editor open: the neural renderer with the mouth detail from the
    shot's own frames (at least the render's resolution), or without it when asked."""
    from dubstudio.app.renderer import RendererChoice, close_renderer, open_renderer
    from dubstudio.rendering.mouth_detail import DetailedRenderer
    from dubstudio.rendering.renderer import ActorRenderer
    from dubstudio.shot import Shot

    adapt(clip_project, "texture", 2, frames=range(0, 24), prior=prior_file, cfg=TINY, restart=True)
    shot = Shot.open(clip_project.root)
    r, name = open_renderer(shot, RendererChoice(device="cpu"), reference_frames=range(0, 24))
    try:
        assert isinstance(r, DetailedRenderer) and name.endswith("+detail") and r.resolution >= 64
        assert set(r.bank.frames.tolist()) <= set(range(0, 24))  # only the frames it was given
        out, masks = r.render_crops([30, 31], return_masks=True)
        assert out.shape == (2, r.resolution, r.resolution, 3) and masks.shape == (2, r.resolution, r.resolution)
        assert "mouth_detail" in r.info and r.info["mode"] == "texture"
    finally:
        close_renderer(r)
    plain, name = open_renderer(shot, RendererChoice(device="cpu", mouth_detail=False))
    assert isinstance(plain, ActorRenderer) and not name.endswith("+detail")
    close_renderer(plain)
