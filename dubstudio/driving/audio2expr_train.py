"""Audio-to-expression: training data, the person-generic trainer, per-actor adaptation, inference.

This module only re-exports (older imports keep working); the code lives in::

    tracked clips + their audio ──train_generic──> generic checkpoint (person-generic model)
    actor's shot + its audio ──adapt_actor──> ActorAdaptation (per-control scale/offset on the
                                              frozen generic; a small own model if no generic)
    any audio ──predict_curves──> (n_frames, 7) named controls at the shot's fps

- ``a2e_data``: audio loading, gain normalisation, silence masks, model input windows, tracked
  clips as training arrays, batches and augmentation;
- ``a2e_generic``: ``TrainConfig``, the loss, checkpoints, ``GenericModel`` and ``train_generic``;
- ``a2e_actor``: ``AdaptConfig``, ``ActorAdaptation``, ``adapt_actor``, audio/video offset
  estimation and ``adapt_project`` (cached per project);
- ``a2e_predict``: ``predict_curves`` and ``drive_project_from_audio`` (``dubstudio dub --audio``).

The networks are in ``audio2expr``; the reasoning in docs/decisions.md "Audio to expression".
"""

from __future__ import annotations

from dubstudio.driving.a2e_actor import (
    ACTOR_KIND,
    N_CTRL,
    STAGE,
    ActorAdaptation,
    AdaptConfig,
    adapt_actor,
    adapt_project,
    estimate_av_offset,
    lag_correlation,
)
from dubstudio.driving.a2e_data import (
    MAX_GAIN_DB,
    TARGET_DBFS,
    Audio2ExprError,
    ClipData,
    ClipSource,
    as_audio,
    audio_windows,
    augment,
    clip_from_project,
    normalise_gain,
    prepare_clip,
    silence_mask,
)
from dubstudio.driving.a2e_generic import (
    FORMAT,
    GENERIC_KIND,
    TRAIN_VERSION,
    GenericModel,
    TrainConfig,
    TrainResult,
    a2e_loss,
    default_generic_path,
    find_generic,
    load_generic,
    train_generic,
)
from dubstudio.driving.a2e_predict import AudioDrive, drive_project_from_audio, predict_curves

__all__ = [
    "ACTOR_KIND", "FORMAT", "GENERIC_KIND", "MAX_GAIN_DB", "N_CTRL", "STAGE", "TARGET_DBFS", "TRAIN_VERSION",
    "ActorAdaptation", "AdaptConfig", "Audio2ExprError", "AudioDrive", "ClipData", "ClipSource", "GenericModel",
    "TrainConfig", "TrainResult", "a2e_loss", "adapt_actor", "adapt_project", "as_audio", "audio_windows", "augment",
    "clip_from_project", "default_generic_path", "drive_project_from_audio", "estimate_av_offset", "find_generic",
    "lag_correlation", "load_generic", "normalise_gain", "predict_curves", "prepare_clip", "silence_mask",
    "train_generic",
]
