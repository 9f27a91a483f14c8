"""Audio-to-expression networks: frame-aligned mel windows -> the named mouth controls.

Two pieces, as in "Dubbing for Everyone" 3.6 / DEAD 3.4 (there a pre-trained Imitator; here a
small model of our own that we can train on tracked footage, no downloaded weights):

- ``Audio2Expr``: the person-generic model. Each video frame's log-mel window (80 x 16 mel
  frames = 160 ms, centred on the frame's time; see ``audio_features.frame_windows``) is encoded
  to a vector by a small 1D conv net over mel time, then non-causal dilated residual convolutions
  over the *sequence of frames* (receptive field +-15 frames) turn the per-frame vectors into
  per-frame controls. Windows are located by exact rational frame times, so the same model runs
  at 23.976/24/25/29.97/30 fps; training resamples clips to several rates.
- ``ActorLayer``: the per-actor adaptation, one scale and one offset per control
  (``actor = scale * generic + offset``), trained alone on the actor's own shot with the generic
  model frozen.

Only model definitions live here; data, losses, training, adaptation and inference are in the
``a2e_*`` modules (``audio2expr_train`` lists them and re-exports their names).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from dubstudio.core.controls import CONTROL_NAMES

MODEL_VERSION = 1  # bump when the architecture changes in a way old checkpoints cannot load


@dataclass(frozen=True)
class Audio2ExprConfig:
    n_mels: int = 80
    window: int = 16  # mel frames per video-frame window (audio_features.WINDOW_FRAMES)
    n_controls: int = len(CONTROL_NAMES)
    enc_channels: int = 64  # mel encoder width
    width: int = 128  # per-frame feature width of the temporal net
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # temporal receptive field 1 + 2 * sum = 31 frames
    kernel: int = 3
    dropout: float = 0.1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Audio2ExprConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "dilations" in kw:
            kw["dilations"] = tuple(int(x) for x in kw["dilations"])
        return cls(**kw)

    @property
    def receptive_frames(self) -> int:
        return 1 + (self.kernel - 1) * sum(self.dilations)


class _ChannelNorm(nn.Module):
    """LayerNorm over channels of a (B, C, T) tensor: per frame, so training on short windows
    and inference on a whole shot see the same statistics."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class MelEncoder(nn.Module):
    """(B*T, n_mels, window) mel window -> (B*T, width) feature of one video frame."""

    def __init__(self, cfg: Audio2ExprConfig) -> None:
        super().__init__()
        c = cfg.enc_channels
        self.convs = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 3, padding=1), nn.GELU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1), nn.GELU(),  # 16 -> 8
            nn.Conv1d(c, c, 3, stride=2, padding=1), nn.GELU(),  # 8 -> 4
        )
        t_out = ((cfg.window + 1) // 2 + 1) // 2  # two stride-2 convs: ceil(ceil(window / 2) / 2)
        self.proj = nn.Linear(c * t_out, cfg.width)
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.convs(x).flatten(1)))


class TemporalBlock(nn.Module):
    """Residual non-causal dilated conv over frames (replicate padding: no zero edges)."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.norm = _ChannelNorm(width)
        self.conv = nn.Conv1d(width, width, kernel, dilation=dilation, padding=pad, padding_mode="replicate")
        self.mix = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.mix(nn.functional.gelu(self.conv(self.norm(x)))))


class Audio2Expr(nn.Module):
    """Person-generic model: (B, T, n_mels, window) mel windows -> (B, T, n_controls)."""

    def __init__(self, cfg: Audio2ExprConfig = Audio2ExprConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = MelEncoder(cfg)
        self.blocks = nn.Sequential(
            *(TemporalBlock(cfg.width, cfg.kernel, d, cfg.dropout) for d in cfg.dilations)
        )
        self.head = nn.Sequential(_ChannelNorm(cfg.width), nn.Conv1d(cfg.width, cfg.n_controls, 1))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.ndim != 4 or windows.shape[2:] != (self.cfg.n_mels, self.cfg.window):
            raise ValueError(
                f"expected (B, T, {self.cfg.n_mels}, {self.cfg.window}) mel windows, got {tuple(windows.shape)}"
            )
        b, t = windows.shape[:2]
        feat = self.encoder(windows.reshape(b * t, *windows.shape[2:])).reshape(b, t, -1)
        y = self.head(self.blocks(feat.transpose(1, 2)))
        return y.transpose(1, 2)


class ActorLayer(nn.Module):
    """Per-control linear map on top of the frozen generic model: ``scale * x + offset``."""

    def __init__(self, n_controls: int = len(CONTROL_NAMES)) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_controls))
        self.offset = nn.Parameter(torch.zeros(n_controls))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODEL_VERSION", "Audio2ExprConfig", "Audio2Expr", "ActorLayer", "MelEncoder", "TemporalBlock", "n_params"]
