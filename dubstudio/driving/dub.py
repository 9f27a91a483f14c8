"""Driving jobs: put new mouth curves on a project as a driven layer (never over the tracking).

Each job ends in one ``SetDriven`` edit on the named controls, saved through ``CurveStore``:
the tracked curves stay as they were, and the user can reset any frame or range to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dubstudio.core.curve_store import CurveStore
from dubstudio.core.curves import ControlCurves
from dubstudio.core.edits import SetDriven
from dubstudio.core.jobs import Progress
from dubstudio.io.project import Project
from dubstudio.tracking.face_model import CONTROL_NAMES
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.track import TrackSettings, track


@dataclass
class DubResult:
    source: str
    driven_frames: int
    frames: int
    details: dict


def load_curves(project: Project, tracking: Tracking) -> ControlCurves:
    store = CurveStore(project)
    return store.load(tracking) if store.exists() else ControlCurves.from_tracking(tracking)


def project_tracking(project: Project) -> Tracking:
    rec = project.stage_record("track")
    if rec is None:
        from dubstudio.errors import ProjectError

        raise ProjectError(f"{project.root} has no tracking yet; run `dubstudio track` on its video first.")
    return Tracking.load(project.path(rec["outputs"]["tracking"]))


def apply_driven(project: Project, tracking: Tracking, curves_values: np.ndarray, weight: np.ndarray, source: str) -> int:
    """Store a driven layer for all named controls (weight 0 = frame not driven); returns frames driven."""
    curves = load_curves(project, tracking)
    SetDriven(CONTROL_NAMES, curves_values, start=0, weight=weight, source=source).apply(curves)
    CurveStore(project).save(curves)
    return int((weight > 0).sum())


def dub_from_dubber(project: Project, dubber_video: Path, offset_s: float = 0.0, progress: Progress | None = None) -> DubResult:
    """Track the dubbing actor's video (cached in the project) and retarget their mouth onto the actor."""
    from dubstudio.driving.retarget import retarget

    progress = progress or Progress()
    actor = project_tracking(project)
    dub_project = Project.create(project.path(f"dubbers/{Path(dubber_video).stem}"), dubber_video)
    dubber, metrics = track(dubber_video, dub_project, TrackSettings(), progress)
    values, ok, fmap = retarget(dubber, actor, offset_s)
    values = _close_outside(values, ok, actor, dubber, offset_s)
    weight = actor.has_face.astype(np.float64)
    n = apply_driven(project, actor, values, weight, source=f"dubber:{Path(dubber_video).name}")
    return DubResult(
        source=str(dubber_video), driven_frames=n, frames=actor.n_frames,
        details={"map": fmap.as_dict(), "dubber_frames": dubber.n_frames, "dubber_fps": str(dubber.fps),
                 "dubber_tracking": {k: metrics[k] for k in ("landmark_rms_iod", "jaw_lip_corr") if k in metrics}},
    )


def _close_outside(values: np.ndarray, ok: np.ndarray, actor: Tracking, dubber: Tracking, offset_s: float) -> np.ndarray:
    """Where the dubber clip does not cover the shot, the new dialogue is silent: the mouth
    eases to closed (all controls 0) instead of showing the original language's lips. Frames
    inside the clip where the dubber's face was lost are interpolated from their neighbours."""
    from dubstudio.tracking.smoothing import fill_gaps

    t = np.arange(actor.n_frames) / float(actor.fps) - offset_s
    inside = (t >= 0) & (t <= (dubber.n_frames - 1) / float(dubber.fps))
    if ok.any():
        values = fill_gaps(values, ok)
    ramp = _eased(inside.astype(np.float64), ease=3)
    return values * ramp[:, None]


def _eased(mask: np.ndarray, ease: int) -> np.ndarray:
    """0/1 mask -> weights ramping over ``ease`` frames inside each driven run."""
    if ease <= 0 or not mask.any():
        return mask
    w = mask.copy()
    n = len(w)
    idx = np.arange(n)
    on = np.flatnonzero(mask > 0)
    # Distance (in frames) to the nearest undriven frame or the run's end.
    off = np.flatnonzero(mask <= 0)
    if len(off) == 0:
        return w
    d = np.min(np.abs(idx[on, None] - off[None, :]), axis=1)
    w[on] = np.minimum(1.0, d / (ease + 1))
    return w


def dub_from_audio(project: Project, audio: Path, offset_s: float = 0.0, progress: Progress | None = None) -> DubResult:
    """Predict mouth curves from dubbed audio (person-generic model if one is installed, adapted
    per actor on the shot's own audio; a per-actor model otherwise) and store them as the driven
    layer. Past the end of the audio the mouth stays closed."""
    from dubstudio.driving.audio2expr_train import drive_project_from_audio

    project_tracking(project)  # a clear error when the shot is not tracked yet
    res = drive_project_from_audio(project, audio, offset_s=offset_s, progress=progress)
    return DubResult(source=str(audio), driven_frames=res.audio_frames, frames=res.n_frames, details={"adaptation": res.adaptation})
