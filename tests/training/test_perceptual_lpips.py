"""Perceptual loss (VGG16) and LPIPS (AlexNet / VGG16) loaded offline from the stlpips-pytorch weights."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from dubstudio.core.errors import DubStudioError
from dubstudio.nn import perceptual
from dubstudio.nn.perceptual import PerceptualLoss, PerceptualWeightsMissing, VGGFeatures, weights_available

needs_weights = pytest.mark.skipif(
    not weights_available(), reason="stlpips-pytorch weights not installed (run installer/install.sh)"
)


# --------------------------------------------------------------------------- fixtures and images


@pytest.fixture(scope="module")
def alex():
    from dubstudio.eval.lpips import LPIPS

    return LPIPS("alex", torch.device("cpu"))


@pytest.fixture(scope="module")
def vgg():
    from dubstudio.eval.lpips import LPIPS

    return LPIPS("vgg", torch.device("cpu"))


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    """skimage's astronaut, 2x2-averaged to 256x256, (1, 3, 256, 256) in [0, 1]."""
    from skimage import data

    img = data.astronaut().astype(np.float32) / 255.0
    img = img.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def noisy(img: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (img + sigma * torch.randn(img.shape, generator=g)).clamp(0, 1)


def blurred(img: torch.Tensor, sigma: float) -> torch.Tensor:
    from skimage.filters import gaussian

    hwc = img[0].permute(1, 2, 0).numpy()
    out = gaussian(hwc, sigma=sigma, channel_axis=-1, preserve_range=True, mode="reflect")
    return torch.from_numpy(out.astype(np.float32)).permute(2, 0, 1)[None].contiguous()


NOISE_SIGMAS = (0.02, 0.05, 0.1, 0.2, 0.3)
BLUR_SIGMAS = (0.5, 1.0, 2.0, 3.0, 4.0)


def distortions(img: torch.Tensor) -> dict[str, torch.Tensor]:
    d = {f"noise{s}": noisy(img, s) for s in NOISE_SIGMAS}
    d.update({f"blur{s}": blurred(img, s) for s in BLUR_SIGMAS})
    d["shift1px"] = torch.roll(img, 1, dims=3)
    d["bright+0.1"] = (img + 0.1).clamp(0, 1)
    return d


@pytest.fixture(scope="module")
def distorted(astronaut) -> tuple[list[str], torch.Tensor]:
    d = distortions(astronaut)
    return list(d), torch.cat(list(d.values()))


@pytest.fixture(scope="module")
def scores(alex, vgg, astronaut, distorted) -> dict[str, dict[str, float]]:
    """LPIPS of every distortion of the astronaut against the clean image, per network (computed once)."""
    names, x = distorted
    with torch.no_grad():
        return {
            net: dict(zip(names, m(x, astronaut.expand_as(x)).tolist()))
            for net, m in (("alex", alex), ("vgg", vgg))
        }


def mouth_mask(h: int = 256, w: int = 256) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((((yy - 0.62 * h) / (0.10 * h)) ** 2 + ((xx - 0.5 * w) / (0.16 * w)) ** 2) <= 1).float()


# --------------------------------------------------------------------------- weights availability


def test_missing_weights_is_a_clear_dubstudio_error(monkeypatch, tmp_path):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "stlpips_pytorch" else real_find_spec(name, *a),
    )
    assert weights_available() is False
    with pytest.raises(PerceptualWeightsMissing) as exc:
        VGGFeatures(torch.device("cpu"))
    assert isinstance(exc.value, DubStudioError)
    assert "installer" in str(exc.value) and "stlpips-pytorch==0.0.2" in str(exc.value)

    monkeypatch.setattr(perceptual, "_weights_root", lambda: tmp_path)  # package there, files gone
    assert weights_available() is False
    from dubstudio.eval.lpips import LPIPS

    with pytest.raises(PerceptualWeightsMissing, match="is missing"):
        LPIPS("alex", "cpu")


@needs_weights
def test_device_must_be_passed_and_nets_validated():
    from dubstudio.eval.lpips import LPIPS

    with pytest.raises(ValueError):
        VGGFeatures(None)
    with pytest.raises(ValueError):
        LPIPS("squeeze", "cpu")
    with pytest.raises(ValueError):
        VGGFeatures("cpu", layers=("relu9_9",))


# --------------------------------------------------------------------------- LPIPS


@needs_weights
def test_lpips_identical_images_is_zero(alex, vgg, astronaut):
    with torch.no_grad():
        for m in (alex, vgg):
            d = m(astronaut, astronaut.clone())
            assert d.shape == (1,)
            assert d.item() == pytest.approx(0.0, abs=1e-7)


@needs_weights
def test_lpips_monotonic_in_noise_and_blur(scores):
    for net, sc in scores.items():
        dn = [sc[f"noise{s}"] for s in NOISE_SIGMAS]
        db = [sc[f"blur{s}"] for s in BLUR_SIGMAS]
        print(f"\n{net} noise {dict(zip(NOISE_SIGMAS, np.round(dn, 4)))}")
        print(f"{net} blur  {dict(zip(BLUR_SIGMAS, np.round(db, 4)))}")
        assert all(a < b for a, b in zip(dn, dn[1:])), dn
        assert all(a < b for a, b in zip(db, db[1:])), db
        assert 0 < dn[0] and dn[-1] < 1.5 and 0 < db[0] and db[-1] < 1.5


@needs_weights
def test_lpips_sane_range_and_ranking(scores):
    a, v = scores["alex"], scores["vgg"]
    print("\nalex", {k: round(x, 4) for k, x in a.items()})
    print("vgg ", {k: round(x, 4) for k, x in v.items()})
    assert 0.1 < a["noise0.1"] < 0.6
    assert 0.1 < v["noise0.1"] < 0.8
    for s in (a, v):
        # shift tolerance is the point of these weights: a 1-px shift is far below mild noise
        assert s["shift1px"] < 0.5 * s["noise0.02"]
        assert s["bright+0.1"] < s["noise0.05"] < s["noise0.1"]
        assert s["blur1.0"] < s["blur2.0"] < s["blur4.0"]


REFERENCE_SUBSET = ("noise0.02", "noise0.1", "noise0.3", "blur1.0", "blur2.0", "shift1px", "bright+0.1")
REFERENCE_SCRIPT = textwrap.dedent(
    """
    import sys, types, torch
    # the package imports these but does not use them on this path: stub them so the reference runs here
    tv = types.ModuleType("torchvision"); tv.models = types.ModuleType("torchvision.models")
    ip = types.ModuleType("IPython"); ip.embed = lambda *a, **k: None
    ts = types.ModuleType("torchsummary"); ts.summary = lambda *a, **k: None
    stubs = {"torchvision": tv, "torchvision.models": tv.models, "IPython": ip, "torchsummary": ts}
    sys.modules.update(stubs)
    from stlpips_pytorch import stlpips
    blob = torch.load(sys.argv[1])
    out = {}
    for net in ("alex", "vgg"):
        m = stlpips.LPIPS(net=net, variant="shift_tolerant", verbose=False)
        with torch.no_grad():
            out[net] = m(blob["x"], blob["ref"], normalize=True).flatten()
    torch.save(out, sys.argv[2])
    """
)


@needs_weights
@pytest.mark.slow
def test_lpips_matches_reference_implementation(astronaut, distorted, scores, tmp_path):
    """Our modules vs the package's own stlpips.LPIPS(variant='shift_tolerant'), run in a subprocess."""
    names, x = distorted
    keep = [i for i, k in enumerate(names) if k in REFERENCE_SUBSET]  # a subset keeps the test ~15 s
    names, x = [names[i] for i in keep], x[keep]
    torch.save({"x": x, "ref": astronaut.expand_as(x).contiguous()}, tmp_path / "in.pt")
    (tmp_path / "ref.py").write_text(REFERENCE_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "ref.py"), str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = torch.load(tmp_path / "out.pt")
    for net in ("alex", "vgg"):
        ours = torch.tensor([scores[net][k] for k in names])
        print(f"\n{net} reference {dict(zip(names, np.round(ref[net].tolist(), 5)))}")
        torch.testing.assert_close(ours, ref[net], atol=1e-5, rtol=1e-4)
        assert torch.equal(torch.argsort(ours), torch.argsort(ref[net]))  # same ranking of distortions


@needs_weights
def test_masked_lpips_depends_only_on_pixels_inside_mask(alex, astronaut):
    mask = mouth_mask()
    inside = mask.bool()[None, None].expand_as(astronaut)
    y = noisy(astronaut, 0.1)
    g = torch.Generator().manual_seed(5)
    x2 = torch.where(inside, astronaut, torch.rand(astronaut.shape, generator=g))
    y2 = torch.where(inside, y, torch.rand(astronaut.shape, generator=g))
    with torch.no_grad():
        d = alex(astronaut, y, mask=mask)
        d_outside_changed = alex(x2, y2, mask=mask)
        d_inside_changed = alex(astronaut, torch.where(inside, noisy(astronaut, 0.2, seed=9), y), mask=mask)
        d_context = alex(x2, y2, mask=mask, isolate=False)
        d_all = alex(astronaut, y, mask=torch.ones(256, 256))
        d_plain = alex(astronaut, y)
        d_empty = alex(astronaut, y, mask=torch.zeros(1, 1, 256, 256))
    print(
        f"\nmasked {d.item():.4f}  outside changed {d_outside_changed.item():.4f}  "
        f"inside changed {d_inside_changed.item():.4f}  context-aware {d_context.item():.4f}"
    )
    torch.testing.assert_close(d_outside_changed, d, atol=1e-6, rtol=0)
    assert d_inside_changed.item() > d.item() + 0.01
    assert abs(d_context.item() - d.item()) > 1e-3  # without isolation, surroundings leak in
    torch.testing.assert_close(d_all, d_plain, atol=1e-6, rtol=1e-5)
    assert torch.isnan(d_empty).all()


# --------------------------------------------------------------------------- perceptual loss


@needs_weights
def test_vgg_features_shapes_frozen_and_eval():
    f = VGGFeatures(torch.device("cpu"))
    f.train()
    assert not f.training and not f.backbone.training
    out = f(torch.rand(2, 3, 128, 128))
    assert list(out) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert [tuple(t.shape[1:]) for t in out.values()] == [
        (64, 128, 128),
        (128, 65, 65),
        (256, 33, 33),
        (512, 17, 17),
    ]
    assert all(not p.requires_grad for p in f.parameters())
    with pytest.raises(ValueError):
        f(torch.rand(1, 3, 16, 16))


@needs_weights
def test_perceptual_loss_gradients_and_frozen_weights(astronaut):
    loss_fn = PerceptualLoss(torch.device("cpu"))
    loss_fn.train()
    target = astronaut[..., 64:192, 64:192]
    assert loss_fn(target, target.clone()).item() == 0.0
    pred = noisy(target, 0.1).requires_grad_(True)
    loss = loss_fn(pred, target)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    params = list(loss_fn.parameters())
    assert params and all(not p.requires_grad and p.grad is None for p in params)
    assert not loss_fn.features.training
    with torch.no_grad():
        losses = [loss_fn(noisy(target, s), target).item() for s in (0.02, 0.05, 0.1, 0.2)]
    assert all(a < b for a, b in zip(losses, losses[1:])), losses


def _fwd_bwd_seconds(fn, shape=(2, 3, 128, 128), reps=3) -> float:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(shape, generator=g)
    times = []
    for _ in range(reps + 1):  # first run is warm-up
        pred = torch.rand(shape, generator=g).requires_grad_(True)
        t0 = time.perf_counter()
        fn(pred, target).sum().backward()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


@needs_weights
def test_timing_fwd_bwd_128px_batch2(alex, vgg):
    loss_fn = PerceptualLoss(torch.device("cpu"))
    t_loss = _fwd_bwd_seconds(loss_fn)
    t_alex = _fwd_bwd_seconds(alex)
    t_vgg = _fwd_bwd_seconds(vgg)
    print(
        f"\nfwd+bwd, batch 2, 128x128, {torch.get_num_threads()} threads: perceptual (VGG to relu4_3) "
        f"{t_loss:.3f} s, LPIPS alex {t_alex:.3f} s, LPIPS vgg {t_vgg:.3f} s"
    )
    assert t_loss < 30 and t_alex < 30 and t_vgg < 30


@pytest.mark.skipif(
    not (weights_available() and torch.cuda.is_available()), reason="needs CUDA and the weights"
)
def test_cuda_matches_cpu(astronaut):
    from dubstudio.eval.lpips import LPIPS

    y = noisy(astronaut, 0.1)
    for net in ("alex", "vgg"):
        cpu = LPIPS(net, "cpu")(astronaut, y).item()
        gpu = LPIPS(net, torch.device("cuda"))(astronaut.cuda(), y.cuda()).item()
        assert gpu == pytest.approx(cpu, rel=1e-3, abs=1e-4)
    loss = PerceptualLoss("cuda")
    pred = y.cuda().requires_grad_(True)
    loss(pred, astronaut.cuda()).backward()
    assert pred.grad.is_cuda and all(p.device.type == "cuda" for p in loss.parameters())
