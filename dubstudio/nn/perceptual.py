"""Perceptual loss on frozen VGG16 features, without torchvision and without any download.

The backbones come from the ``stlpips-pytorch==0.0.2`` wheel (BSD-2), installed by the installer. We never
import that package (it needs torchvision, IPython and torchsummary): we locate its ``.pth`` files with
``importlib.util.find_spec`` and load them into the small modules below, whose layer indices copy the
package's ``invariant_networks.py`` so the checkpoint keys map one to one (``net.sliceK.I.*`` ->
``sliceK.I.*``; ``linK.model.1.weight`` -> ``lins.K.weight`` in :mod:`dubstudio.eval.lpips`).

What these weights are (read this before comparing numbers with papers):

* They are the *shift-tolerant* ST-LPIPS networks (Ghildyal & Liu, ECCV 2022), trained **from scratch on
  BAPPS** (``train.py --from_scratch --train_trunk``): trunk and linear heads together, on 64x64 patches,
  for human 2AFC similarity judgments. They are *not* the ImageNet-classification VGG16 / AlexNet of
  torchvision, so feature magnitudes and LPIPS values differ from the classic LPIPS v0.1 numbers.
* The architecture is anti-aliased (Zhang 2019, "Making CNNs shift-invariant again") with extra border
  padding: every stride-2 max-pool becomes ``MaxPool(stride 1) -> BlurPool`` where BlurPool is a
  reflect-pad-2, 3x3 binomial ([1,2,1] x [1,2,1] / 16), depthwise stride-2 conv. AlexNet's conv1 runs at
  stride 1 followed by a BlurPool *before* its ReLU, and its later 3x3/stride-2 max-pools become
  ``MaxPool(3, stride 1) -> BlurPool``. Feature maps are therefore a bit larger than the classic ones
  (VGG at 128 px: 128, 65, 33, 17, 9).
* Input normalisation is LPIPS's ScalingLayer on [-1, 1] inputs, ``(2x - 1 - shift) / scale`` with shift
  and scale read from the checkpoint; that is exactly ImageNet mean/std normalisation of x in [0, 1].
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dubstudio.core.errors import DubStudioError

WEIGHTS_PACKAGE = "stlpips_pytorch"
WEIGHTS_REQUIREMENT = "stlpips-pytorch==0.0.2"
_WEIGHT_FILES = {
    "vgg": (
        "weights/vST0.0/vgg_shift_tolerant.pth",
        "44597da68f49c1837c100ff52299050f274d102eb102e5837178c79be6f0e250",
    ),
    "alex": (
        "weights/vST0.0/alex_shift_tolerant.pth",
        "b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee",
    ),
}
#: smallest input side both backbones accept (reflection padding needs maps of at least 3 px everywhere)
MIN_SIZE = 32

VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
DEFAULT_LOSS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
DEFAULT_LOSS_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


class PerceptualWeightsMissing(DubStudioError):
    """The VGG/AlexNet weights for the perceptual loss and LPIPS are not installed (or are corrupt)."""


# --------------------------------------------------------------------------- locating the weights


def _weights_root() -> Path | None:
    """Folder of the installed weights package, found without importing it (its __init__ is never run)."""
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _missing_message(detail: str) -> str:
    return (
        f"{detail} The perceptual loss and the LPIPS metric need the VGG/AlexNet weights from the Python "
        f"package {WEIGHTS_REQUIREMENT}. Run the DubStudio installer again (bash installer/install.sh), or "
        f"install it into DubStudio's environment with: pip install --no-deps {WEIGHTS_REQUIREMENT}"
    )


def weights_available() -> bool:
    """True when both weight files (VGG16 and AlexNet) are installed. Cheap: no file is read."""
    root = _weights_root()
    return root is not None and all((root / rel).is_file() for rel, _ in _WEIGHT_FILES.values())


def weights_path(net: str) -> Path:
    """Path of the ``net`` ('vgg' or 'alex') checkpoint; raises PerceptualWeightsMissing when absent."""
    if net not in _WEIGHT_FILES:
        raise ValueError(f"unknown network {net!r}: use 'vgg' or 'alex'")
    root = _weights_root()
    if root is None:
        raise PerceptualWeightsMissing(_missing_message(f"The package {WEIGHTS_PACKAGE} is not installed."))
    path = root / _WEIGHT_FILES[net][0]
    if not path.is_file():
        raise PerceptualWeightsMissing(_missing_message(f"The weight file {path} is missing."))
    return path


@cache
def _verified(path: Path, sha256: str) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == sha256


def load_checkpoint(net: str) -> dict[str, torch.Tensor]:
    """The full ST-LPIPS state dict (trunk + linear heads + scaling layer) of ``net``, on the CPU."""
    path = weights_path(net)
    if not _verified(path, _WEIGHT_FILES[net][1]):
        raise PerceptualWeightsMissing(
            _missing_message(f"The weight file {path} is corrupt (sha256 mismatch).")
        )
    return torch.load(path, map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------- building blocks


class BlurPool2d(nn.Module):
    """Anti-aliased stride-2 downsampling (the package's ``Downsample(filt_size=3, pad_more=True)``).

    Reflect-pads 2 px on every side, then a depthwise 3x3 binomial filter with stride 2. The filter is a
    persistent buffer named ``filt`` so the checkpoint's copy is loaded (and checked) with the weights.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        k = a[:, None] * a[None, :]
        self.register_buffer("filt", (k / k.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _relu() -> nn.ReLU:
    return nn.ReLU(inplace=False)


class _Trunk(nn.Module):
    """Five sequential slices; ``forward(x, n)`` returns the outputs of the first ``n`` slices."""

    def __init__(self, layers: Sequence[Sequence[tuple[int, nn.Module]]]) -> None:
        super().__init__()
        for k, slice_layers in enumerate(layers, start=1):
            s = nn.Sequential()
            for idx, module in slice_layers:
                s.add_module(str(idx), module)  # keep the package's indices: checkpoint keys map 1:1
            self.add_module(f"slice{k}", s)
        self.n_slices = len(layers)

    def forward(self, x: torch.Tensor, n: int | None = None) -> list[torch.Tensor]:
        out = []
        for k in range(1, (n or self.n_slices) + 1):
            x = getattr(self, f"slice{k}")(x)
            out.append(x)
        return out


def shift_tolerant_vgg16() -> _Trunk:
    """VGG16 conv trunk (config D) with ``MaxPool(2, stride 1) -> BlurPool`` in place of each max-pool."""
    cfg = [[64, 64], ["M", 128, 128], ["M", 256, 256, 256], ["M", 512, 512, 512], ["M", 512, 512, 512]]
    slices, idx, cin = [], 0, 3
    for block in cfg:
        layers = []
        for v in block:
            if v == "M":
                layers += [(idx, nn.MaxPool2d(kernel_size=2, stride=1)), (idx + 1, BlurPool2d(cin))]
            else:
                layers += [(idx, nn.Conv2d(cin, v, kernel_size=3, padding=1)), (idx + 1, _relu())]
                cin = v
            idx += 2
        slices.append(layers)
    return _Trunk(slices)


def shift_tolerant_alexnet() -> _Trunk:
    """AlexNet conv trunk, shift-tolerant variant (conv1 stride 1 + BlurPool before ReLU, blurred pools)."""
    return _Trunk(
        [
            [(0, nn.Conv2d(3, 64, kernel_size=11, stride=1, padding=2)), (1, BlurPool2d(64)), (2, _relu())],
            [
                (3, nn.MaxPool2d(3, stride=1)),
                (4, BlurPool2d(64)),
                (5, nn.Conv2d(64, 192, 5, padding=2)),
                (6, _relu()),
            ],
            [
                (7, nn.MaxPool2d(3, stride=1)),
                (8, BlurPool2d(192)),
                (9, nn.Conv2d(192, 384, 3, padding=1)),
                (10, _relu()),
            ],
            [(11, nn.Conv2d(384, 256, 3, padding=1)), (12, _relu())],
            [(13, nn.Conv2d(256, 256, 3, padding=1)), (14, _relu())],
        ]
    )


class FrozenBackbone(nn.Module):
    """A frozen, always-eval trunk with its input normalisation; input RGB in [0, 1], (B, 3, H, W).

    ``forward(x, n)`` returns the first ``n`` of the five relu outputs (all five by default).
    ``state_dict``: an already loaded :func:`load_checkpoint` (saves reading the file twice).
    """

    def __init__(
        self, net: str, device: torch.device | str, state_dict: dict[str, torch.Tensor] | None = None
    ) -> None:
        super().__init__()
        if device is None:
            raise ValueError("pass the device explicitly (e.g. torch.device('cpu') or 'cuda')")
        if net not in _WEIGHT_FILES:
            raise ValueError(f"unknown network {net!r}: use 'vgg' or 'alex'")
        self.net_name = net
        self.trunk = shift_tolerant_vgg16() if net == "vgg" else shift_tolerant_alexnet()
        sd = load_checkpoint(net) if state_dict is None else state_dict
        self.register_buffer("shift", sd["scaling_layer.shift"].clone())
        self.register_buffer("scale", sd["scaling_layer.scale"].clone())
        trunk_sd = {k.removeprefix("net."): v for k, v in sd.items() if k.startswith("net.")}
        self.trunk.load_state_dict(trunk_sd, strict=True)  # every conv weight/bias and every blur filter
        self.requires_grad_(False)
        # channels_last: ~5-15% faster fwd+bwd on CPU (oneDNN convs and stride-1 max-pools)
        self.to(device, memory_format=torch.channels_last)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenBackbone:  # noqa: ARG002 - frozen: stays in eval
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.shift.device

    def forward(self, x: torch.Tensor, n: int | None = None) -> list[torch.Tensor]:
        check_images(x)
        x = x.to(self.shift.dtype)  # float32 weights; autocast still applies inside the convs
        x = (x * 2 - 1 - self.shift) / self.scale  # == ImageNet mean/std normalisation of x in [0, 1]
        return self.trunk(x.contiguous(memory_format=torch.channels_last), n)


def check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB images shaped (B, 3, H, W) in [0, 1], got {tuple(x.shape)}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE}x{MIN_SIZE} px, got {tuple(x.shape[-2:])}")


# --------------------------------------------------------------------------- public API


class VGGFeatures(nn.Module):
    """Frozen VGG16 feature extractor (ST-LPIPS VGG16 trunk), ImageNet normalisation inside.

    ``VGGFeatures(device)(x)`` with x RGB in [0, 1], (B, 3, H, W), H and W >= 32, returns a dict
    ``{layer: features}`` for ``layers`` (names in :data:`VGG_LAYERS`); only the slices needed for the
    deepest requested layer are run.
    """

    def __init__(self, device: torch.device | str, layers: Sequence[str] = DEFAULT_LOSS_LAYERS) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in VGG_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown VGG layers {unknown}: choose from {VGG_LAYERS}")
        self.layers = tuple(layers)
        self.backbone = FrozenBackbone("vgg", device)
        self._depth = max(VGG_LAYERS.index(name) for name in self.layers) + 1

    def train(self, mode: bool = True) -> VGGFeatures:  # noqa: ARG002
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outs = self.backbone(x, self._depth)
        return {name: outs[VGG_LAYERS.index(name)] for name in self.layers}


class PerceptualLoss(nn.Module):
    """Weighted sum over layers of the mean L1 distance between VGG features of prediction and target.

    ``loss = sum_l w_l * mean(|phi_l(pred) - phi_l(target)|)``, pred/target RGB in [0, 1], (B, 3, H, W).
    Gradients flow into ``pred`` (and ``target`` only if it requires grad); the VGG is frozen. Pass
    ``features`` to share one VGGFeatures between losses.
    """

    def __init__(
        self,
        device: torch.device | str,
        layers: Sequence[str] = DEFAULT_LOSS_LAYERS,
        weights: Sequence[float] = DEFAULT_LOSS_WEIGHTS,
        features: VGGFeatures | None = None,
    ) -> None:
        super().__init__()
        if len(layers) != len(weights):
            raise ValueError(f"{len(layers)} layers but {len(weights)} weights")
        self.weights = tuple(float(w) for w in weights)
        if features is None:
            features = VGGFeatures(device, layers)
        elif not set(layers) <= set(features.layers):
            raise ValueError(f"the shared VGGFeatures computes {features.layers}, not all of {tuple(layers)}")
        self.layers = tuple(layers)
        self.features = features

    def train(self, mode: bool = True) -> PerceptualLoss:  # noqa: ARG002
        return super().train(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        fp = self.features(pred)
        if target.requires_grad:
            ft = self.features(target)
        else:
            with torch.no_grad():
                ft = self.features(target)
        loss = pred.new_zeros(())
        for name, w in zip(self.layers, self.weights, strict=True):
            loss = loss + w * (fp[name] - ft[name]).abs().mean()
        return loss
