"""Audio-to-expression inference: any audio -> named control curves at a shot's frame rate,
and ``dubstudio dub --audio`` (adapt, predict, put the result as the driven curve layer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.driving.a2e_actor import ActorAdaptation, AdaptConfig, adapt_project
from dubstudio.driving.a2e_data import Audio2ExprError, _fps, as_audio, audio_windows, clip_from_project
from dubstudio.driving.a2e_generic import _generic, _run
from dubstudio.driving.audio_features import SAMPLE_RATE
from dubstudio.errors import MediaError
from dubstudio.tracking.face_model import CONTROL_NAMES, CONTROL_RANGE


def predict_curves(
    audio: str | Path | np.ndarray,
    n_frames: int,
    fps: Any,
    generic: Any = None,
    actor_layer: ActorAdaptation | str | Path | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    smooth_s: float = 0.03,
    offset_s: float = 0.0,
) -> np.ndarray:
    """(n_frames, 7) named controls for ``audio`` at ``fps`` (frame i at time i / fps + offset_s).

    ``generic``: checkpoint path or GenericModel; ``actor_layer``: an ActorAdaptation (or its
    file). A ``scratch`` adaptation carries its own model and needs no generic. Frames past the
    end of the audio are silence (mouth closed). Zero-phase Gaussian smoothing of ``smooth_s``
    seconds (sigma); values are clipped to the controls' ranges.
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be > 0, got {n_frames}")
    fps = _fps(fps)
    a = as_audio(audio, sample_rate)
    if offset_s:
        k = int(round(abs(offset_s) * SAMPLE_RATE))
        a = a[k:] if offset_s > 0 else np.concatenate([np.zeros(k, np.float32), a])
        if len(a) == 0:
            raise MediaError(f"the audio ends before offset {offset_s:.2f} s; use a smaller offset.")
    ad = ActorAdaptation.load(actor_layer) if isinstance(actor_layer, (str, Path)) else actor_layer
    windows = audio_windows(a, n_frames, fps)
    if ad is not None and ad.mode == "scratch":
        raw = _run(ad.model, windows)
    else:
        g = _generic(generic)
        if g is None:
            raise Audio2ExprError(
                "no audio-to-expression model: give a generic model (`dubstudio audio2expr train`) or an "
                "actor adaptation trained on the shot (adapt_project)."
            )
        raw = g.predict(windows)
    y = ad.apply(raw) if ad is not None else raw.astype(np.float64)
    if smooth_s > 0:
        from scipy.ndimage import gaussian_filter1d

        y = gaussian_filter1d(y, sigma=float(smooth_s * fps), axis=0, mode="nearest")
    lo = np.array([CONTROL_RANGE[n][0] for n in CONTROL_NAMES])
    hi = np.array([CONTROL_RANGE[n][1] for n in CONTROL_NAMES])
    return np.clip(y, lo, hi)


@dataclass
class AudioDrive:
    """Result of driving a project's curves from audio."""

    edit: Any  # core.edits.SetDriven (already applied and saved when save=True)
    values: np.ndarray  # (n_frames, 7)
    adaptation: dict  # ActorAdaptation.metadata()
    audio_frames: int  # frames of the shot covered by the audio (the rest: silence, mouth closed)
    n_frames: int


def drive_project_from_audio(
    project: Any,
    audio: str | Path,
    generic: Any = None,
    *,
    controls: Sequence[str] = CONTROL_NAMES,
    offset_s: float = 0.0,
    save: bool = True,
    config: AdaptConfig = AdaptConfig(),
    progress: Progress | None = None,
) -> AudioDrive:
    """``dubstudio dub --audio``: adapt (cached), predict at the shot's fps and length, and put the
    result as the driven layer of ``controls`` (tracked curves and keys are kept; the user can
    reset any range). ``save`` writes ``edits/curves.json`` via CurveStore."""
    from dubstudio.core.curve_store import CurveStore
    from dubstudio.core.edits import SetDriven
    from dubstudio.io.project import Project
    from dubstudio.tracking.result import Tracking

    p = project if isinstance(project, Project) else Project.open(project)
    g = _generic(generic)
    ad = adapt_project(p, g, config, progress)
    t = Tracking.load(clip_from_project(p).tracking)
    a = as_audio(audio)
    values = predict_curves(a, t.n_frames, t.fps, g, ad, offset_s=offset_s)
    idx = [CONTROL_NAMES.index(c) for c in controls]
    edit = SetDriven(list(controls), values[:, idx], 0, 1.0, source=f"audio:{Path(audio).name}")
    if save:
        store = CurveStore(p)
        curves = store.load(t)
        edit.apply(curves)
        store.save(curves)
    covered = min(t.n_frames, int((len(a) / SAMPLE_RATE - offset_s) * t.fps))
    return AudioDrive(edit, values, ad.metadata(), max(0, covered), t.n_frames)
