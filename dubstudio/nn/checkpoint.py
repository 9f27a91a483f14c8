"""Checkpoint files of the neural renderer: atomic, versioned, loadable without pickle.

Every file is a ``torch.save`` dict written through ``atomic_open`` (a kill mid-write leaves the
previous file) and read with ``weights_only=True`` (no arbitrary code from a file someone hands
you). Common header::

    {"format": FORMAT, "code_version": dubstudio.__version__, "kind": <see below>,
     "config": {...frozen dataclass as dict...}, ...}

Kinds:
- ``"prior"``: a prior renderer and its training state (generator, discriminator, one texture per
  identity, optimisers, step, RNG states, identities); the file given to ``--prior``.
- ``"adapt-state"``: resumable training state of one adaptation run (in the project cache).
- ``"actor"``: what rendering an adapted actor needs: the texture (fp16) and either a reference to
  the prior (path + fingerprint, texture mode) or the fine-tuned generator (full/mixed).
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dubstudio import __version__
from dubstudio.core.errors import DubStudioError, ProjectError
from dubstudio.io.atomic import atomic_open

FORMAT = 1


class CheckpointError(DubStudioError):
    """A checkpoint is missing, damaged, of another format or does not fit the current settings."""


def save(path: str | Path, kind: str, payload: dict[str, Any]) -> int:
    """Atomically write a checkpoint; returns its size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"format": FORMAT, "code_version": __version__, "kind": kind, **payload}
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    with atomic_open(path) as f:
        f.write(data)
    return len(data)


def holds_objects(e: BaseException) -> bool:
    """Whether torch's safe loader refused a file for naming Python objects (classes, functions: a
    hostile or foreign pickle) rather than for being garbage (a damaged or unrelated file)."""
    return "global" in str(e).lower()


def load(path: str | Path, kind: str | tuple[str, ...] | None = None, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save``; CheckpointError with a clear message otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; check the path (or train/adapt first).")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable DubStudio checkpoint ({type(e).__name__}); it may be damaged.") from e
    except Exception as e:  # an unpickling refusal (torch's hint to unsafe-load it is not ours to give)
        if not holds_objects(e):
            raise CheckpointError(f"{path} is not a readable DubStudio checkpoint; it may be damaged.") from e
        raise CheckpointError(f"{path} is not a DubStudio model: it holds Python objects that a DubStudio checkpoint never "
                              f"contains, so it was not loaded (nothing in it ran); use a file DubStudio trained.") from e
    if not isinstance(obj, dict) or "format" not in obj:
        raise CheckpointError(f"{path} is not a DubStudio checkpoint.")
    if obj["format"] != FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {obj['format']}, this DubStudio ({__version__}) reads format {FORMAT}; "
            f"train/adapt again with this version."
        )
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and obj.get("kind") not in kinds:
        raise CheckpointError(f"{path} holds a '{obj.get('kind')}' checkpoint, expected {' or '.join(kinds)}.")
    return obj


# ------------------------------------------------------------------------------------ RNG states


def rng_state(np_rng: np.random.Generator) -> dict[str, Any]:
    """Every random stream a training step touches (torch CPU, numpy sampler, python)."""
    st = {
        "torch": torch.get_rng_state(),
        "numpy": _np_state(np_rng.bit_generator.state),
        "python": _py_state(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any], np_rng: np.random.Generator) -> None:
    torch.set_rng_state(st["torch"].cpu() if isinstance(st["torch"], torch.Tensor) else st["torch"])
    np_rng.bit_generator.state = _np_unstate(st["numpy"])
    random.setstate(_py_unstate(st["python"]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in st["cuda"]])


# numpy's PCG64 state holds 128-bit ints; store them as decimal strings (weights_only-safe).
def _np_state(s: dict) -> dict:
    return {
        "bit_generator": s["bit_generator"],
        "state": {k: str(v) for k, v in s["state"].items()},
        "has_uint32": int(s["has_uint32"]),
        "uinteger": int(s["uinteger"]),
    }


def _np_unstate(s: dict) -> dict:
    return {
        "bit_generator": s["bit_generator"],
        "state": {k: int(v) for k, v in s["state"].items()},
        "has_uint32": int(s["has_uint32"]),
        "uinteger": int(s["uinteger"]),
    }


def _py_state(s: tuple) -> list:
    version, internal, gauss = s
    return [int(version), torch.tensor(internal, dtype=torch.int64), gauss]


def _py_unstate(s: list) -> tuple:
    version, internal, gauss = s
    return (int(version), tuple(int(x) for x in internal.tolist()), gauss)


def fingerprint(path: str | Path) -> str:
    """Content fingerprint of a checkpoint file (memoised while unchanged)."""
    from dubstudio.project.store import cached_fingerprint

    p = Path(path)
    if not p.is_file():
        raise ProjectError(f"checkpoint not found: {p}")
    return cached_fingerprint(p)
