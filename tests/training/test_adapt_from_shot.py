"""Adapting a further shot of an actor from that actor's adaptation on another shot
(``adapt(..., start_from=...)``, `dubstudio adapt --from-shot`). Tiny widths at R = 64, as in
test_renderer_training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dubstudio.core.errors import DubStudioError, ProjectError
from dubstudio.project.store import Project
from dubstudio.rendering.renderer import ActorRenderer
from dubstudio.nn import checkpoint as ckpt
from dubstudio.shot.adaptation import actor_file_of
from dubstudio.training.trainer import adapt, train_prior
from tests.training.test_renderer_training import N_FRAMES, TINY, _trim

pytestmark = pytest.mark.media

FRAMES_A = range(0, 24)  # "shot A": where the actor was adapted first
FRAMES_B = range(24, N_FRAMES)  # "shot B": the further shot (held out from A)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def shots(media, tmp_path_factory) -> tuple[Project, Project, Path]:
    """Two projects of the same actor (one clip, two folders: shot A adapts on its first frames,
    shot B on the rest) and a tiny prior trained on shot A."""
    from dubstudio.tracking.track import track

    d = tmp_path_factory.mktemp("two_shots")
    clip = _trim(media / "talk_b.mp4", d / "talk_b_head.mp4", N_FRAMES)
    a = Project.create(d / "shot_a", clip)
    track(clip, a)
    b = Project.create(d / "shot_b", clip)
    track(clip, b)
    prior = d / "prior.pt"
    train_prior([a], prior, 3, TINY, frames=FRAMES_A)
    return a, b, prior


@pytest.fixture(scope="module")
def shot_a_full(shots) -> Path:
    a, _, _ = shots
    return adapt(a, "full", 40, frames=FRAMES_A, cfg=TINY.replace(lr_g=3e-3, lr_tex=2e-2)).path


def test_a_further_shot_starts_where_the_other_shot_ended(shots, shot_a_full):
    _, b, _ = shots
    src = ckpt.load(shot_a_full, "actor")
    frozen = TINY.replace(lr_g=0.0, lr_tex=0.0)  # one step that changes nothing: the start itself
    res = adapt(b, "full", 1, frames=FRAMES_B, cfg=frozen, start_from=shot_a_full)
    got = ckpt.load(res.path, "actor")
    for k, v in src["generator"].items():
        assert torch.equal(got["generator"][k], v), k
    # every texel either shot saw is the other shot's (texels neither saw are refilled from neighbours)
    seen = got["seen_texels"]
    top = src["texture"]["layers.0"]
    assert top.shape[-1] == seen.shape[-1]
    assert torch.equal(got["texture"]["layers.0"][..., seen], top[..., seen])
    assert got["start_from"]["fingerprint"] == ckpt.fingerprint(shot_a_full)
    assert got["start_from"]["frames"] == len(FRAMES_A)


def test_starting_from_the_other_shot_beats_starting_from_scratch_on_held_out_frames(shots, shot_a_full):
    _, b, _ = shots
    kw = dict(frames=range(24, 34), val_frames=range(34, N_FRAMES), cfg=TINY.replace(val_every=1), restart=True)
    scratch = adapt(b, "full", 1, **kw)
    reused = adapt(b, "full", 1, start_from=shot_a_full, **kw)
    # before any training on shot B (step 0) the other shot's actor already draws this face
    s0 = next(h for h in scratch.history if h["step"] == 0)["val_mouth_psnr"]
    r0 = next(h for h in reused.history if h["step"] == 0)["val_mouth_psnr"]
    assert r0 > s0 + 0.5, (r0, s0)  # tiny models, 40 steps on shot A: 12.4 against 11.6 dB
    assert scratch.path != reused.path  # one actor file per configuration: both are kept


def test_texture_mode_from_a_full_shot_keeps_that_shots_generator(shots, shot_a_full):
    _, b, _ = shots
    src = ckpt.load(shot_a_full, "actor")
    res = adapt(b, "texture", 3, frames=FRAMES_B, cfg=TINY, start_from=shot_a_full)
    got = ckpt.load(res.path, "actor")
    assert got["mode"] == "texture" and got["generator"] is not None  # no prior file holds these weights
    for k, v in src["generator"].items():
        assert torch.equal(got["generator"][k], v), k
    r = ActorRenderer.load(b, "cpu", actor=res.path)
    assert r.render_crops([30]).shape == (1, 64, 64, 3)


def test_texture_mode_from_a_texture_shot_refers_to_the_same_prior(shots):
    a, b, prior = shots
    src = adapt(a, "texture", 3, frames=FRAMES_A, prior=prior, cfg=TINY).path
    res = adapt(b, "texture", 3, frames=FRAMES_B, cfg=TINY, start_from=src)
    got = ckpt.load(res.path, "actor")
    assert got["generator"] is None and got["prior"]["fingerprint"] == ckpt.fingerprint(prior)
    r = ActorRenderer.load(b, "cpu", actor=res.path)
    pgen = ckpt.load(prior, "prior")["generator"]
    for k, v in r.gen.state_dict().items():
        assert torch.equal(v, pgen[k]), k
    # what either shot saw is kept: the union of both shots' texels
    seen_a = ckpt.load(src, "actor")["seen_texels"]
    assert bool((got["seen_texels"] | seen_a).eq(got["seen_texels"]).all())


def test_a_texture_shot_whose_prior_is_gone_is_refused_with_a_reason(shots, tmp_path):
    a, b, prior = shots
    moved = tmp_path / "prior.pt"
    moved.write_bytes(prior.read_bytes())
    src = adapt(a, "texture", 2, frames=FRAMES_A, prior=moved, cfg=TINY, restart=True).path
    moved.unlink()
    with pytest.raises(ProjectError, match="missing"):
        adapt(b, "texture", 2, frames=FRAMES_B, cfg=TINY, start_from=src)


def test_bad_combinations_are_refused(shots, shot_a_full, tmp_path):
    _, b, prior = shots
    with pytest.raises(DubStudioError, match="not both"):
        adapt(b, "full", 2, frames=FRAMES_B, cfg=TINY, prior=prior, start_from=shot_a_full)
    with pytest.raises(DubStudioError, match="mixed"):
        adapt(b, "mixed", 2, frames=FRAMES_B, cfg=TINY, start_from=shot_a_full)
    empty = Project.create(tmp_path / "untrained", b.video_path)
    with pytest.raises(ProjectError, match="has no adaptation yet"):
        actor_file_of(empty.root)
    with pytest.raises(ProjectError, match="neither an actor file nor a project"):
        actor_file_of(tmp_path / "nothing_here")


def test_cli_adapt_from_shot_names_the_source(shots, shot_a_full, capsys):
    import argparse

    from dubstudio.cli.train import register

    a, b, _ = shots
    assert adapt(a, "full", 40, frames=FRAMES_A, cfg=TINY.replace(lr_g=3e-3, lr_tex=2e-2)).cached  # A's latest again
    parser = argparse.ArgumentParser(prog="dubstudio")
    register(parser.add_subparsers(dest="command"))
    over = b.root / "tiny.json"
    over.write_text(json.dumps({k: v for k, v in TINY.to_dict().items() if k != "generator"}))
    args = parser.parse_args(["adapt", "--project", str(b.root), "--from-shot", str(a.root), "--steps", "2",
                              "--frames", "24:40", "--config", str(over), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["from_shot"] == str(shot_a_full) and out["steps"] == 2


def test_shape_distance_ignores_pose_and_scale_but_not_shape(shots):
    from scipy.spatial.transform import Rotation

    from dubstudio.tracking.fitting import shape_distance
    from dubstudio.shot.tracking import tracking_of

    ident = tracking_of(shots[0])[0].identity
    moved = 1.7 * ident @ Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix().T + [3.0, -1.0, 0.5]
    assert shape_distance(ident, moved) < 1e-9
    wider = ident * [1.15, 1.0, 1.0]  # the same face 15 % wider: another person's proportions
    assert shape_distance(ident, wider) > 0.025


def test_starting_from_another_persons_shot_warns(shots, shot_a_full, media, tmp_path):
    from dubstudio.tracking.track import track

    _, b, _ = shots
    clip = _trim(media / "talk_a.mp4", tmp_path / "talk_a_head.mp4", 24)
    other = Project.create(tmp_path / "other_actor", clip)
    track(clip, other)
    theirs = adapt(other, "full", 2, cfg=TINY).path
    res = adapt(b, "full", 1, frames=FRAMES_B, cfg=TINY, start_from=theirs)
    assert res.warning and "check that it is the same actor" in res.warning and "other_actor" in res.warning
    mine = adapt(shots[0], "full", 2, frames=FRAMES_A, cfg=TINY, restart=True).path  # stores the identity too
    assert adapt(b, "full", 1, frames=FRAMES_B, cfg=TINY, start_from=mine, restart=True).warning is None


def test_fewer_steps_than_trained_keep_the_longer_run_where_there_is_no_restart(shots):
    _, b, _ = shots
    kw = dict(frames=FRAMES_B, cfg=TINY.replace(seed=7))
    longer = adapt(b, "full", 4, restart=True, **kw)
    with pytest.raises(ckpt.CheckpointError, match="already trained to 4 steps"):
        adapt(b, "full", 2, **kw)  # `dubstudio adapt` says so (it has --restart)
    kept = adapt(b, "full", 2, keep_longer=True, **kw)  # the editor and `run` use what is there
    assert kept.cached and kept.steps == 4 and kept.path == longer.path


def test_a_cancelled_run_from_another_shot_resumes_from_its_checkpoint(shots, shot_a_full):
    from dubstudio.core.jobs import Progress
    from dubstudio.core.errors import Cancelled

    _, b, _ = shots
    kw = dict(frames=FRAMES_B, cfg=TINY.replace(seed=3), start_from=shot_a_full)
    progress = Progress(lambda ev: ev.stage.startswith("adapt") and ev.done == 2 and progress.token.cancel())
    with pytest.raises(Cancelled):
        adapt(b, "full", 6, progress=progress, restart=True, **kw)
    res = adapt(b, "full", 6, **kw)
    assert res.resumed_from == 3 and res.steps_run == 3 and res.steps == 6
    straight = adapt(b, "full", 6, restart=True, **kw)
    got, want = ckpt.load(res.path, "actor")["generator"], ckpt.load(straight.path, "actor")["generator"]
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_other_shot_may_be_named_by_its_video(tmp_path, shots, shot_a_full):
    import shutil

    a, _, _ = shots
    video = tmp_path / "sh010.mp4"
    shutil.copy2(a.video_path, video)
    with pytest.raises(ProjectError, match="does not exist"):
        actor_file_of(video)  # never opened: it has no project yet
    from dubstudio.core.paths import default_project_dir

    shutil.copytree(a.root, default_project_dir(video))
    Project.create(default_project_dir(video), video)  # the copy follows the video's new place
    assert actor_file_of(video).name == actor_file_of(a.root).name
