"""The torch device a job runs on: ``auto`` is the GPU when one is present, else the CPU."""

from __future__ import annotations

DEVICE_HELP = "torch device: auto (the GPU when present, else the CPU), cpu, cuda, cuda:1 ..."


def resolve_device(name: str | None = "auto") -> str:
    """``auto`` (or None) -> "cuda" when torch sees a GPU, else "cpu"; any other name as given."""
    if name and name != "auto":
        return name
    import torch  # lazily: a CLI that only asks --help never loads torch

    return "cuda" if torch.cuda.is_available() else "cpu"
