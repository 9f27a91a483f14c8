"""The shot's control curves: the user's saved edits and the driven layer over the corrected
tracking, and the final per-frame controls the renderer uses."""

from __future__ import annotations

import json

import numpy as np

from dubstudio.core.curves import ControlCurves
from dubstudio.core.retime import in_frames
from dubstudio.shot.curve_store import CurveStore
from dubstudio.shot.dub_audio import recorded_words
from dubstudio.project.store import Project
from dubstudio.shot.tracking import tracking_of
from dubstudio.tracking.result import Tracking


def load_curves(project: Project, tracking: Tracking | None = None) -> ControlCurves:
    """The saved curve edits over ``tracking`` (default: the project's corrected tracking);
    the plain tracked curves when nothing was saved."""
    tracking = tracking if tracking is not None else tracking_of(project)[0]
    store = CurveStore(project)
    if not store.exists():
        return ControlCurves.from_tracking(tracking)
    curves = store.load(tracking)
    # checked last: it reads the file again, and only curves with a driven layer but no words can be older
    if not curves.words and any(curves.has_driven(i) for i in range(curves.n_controls)) and store.predates_words():
        # saved before the curves kept the line's words: until now they were only recorded with the
        # dub audio (in seconds); from here on they travel with the curves (saved, undone, re-timed)
        curves.set_words(in_frames(recorded_words(project), float(tracking.fps)))
    return curves


def final_controls(project: Project, tracking: Tracking | None = None) -> tuple[np.ndarray | None, bool]:
    """(per-frame controls for the renderer, or None for the tracked ones; edited?): tracked +
    driven layer + keys, as ``ControlCurves.evaluate_all`` combines them."""
    tracking = tracking if tracking is not None else tracking_of(project)[0]
    final = load_curves(project, tracking).evaluate_all()
    if final.shape == tracking.controls.shape and np.array_equal(final, np.asarray(tracking.controls, np.float64)):
        return None, False
    return final, True


def driven_source(project: Project) -> str | None:
    """'speech_de.wav' when the saved curves carry a driven layer from audio or a dubber, else
    None (read from the saved file alone: cheap, and no tracking needed)."""
    store = CurveStore(project)
    if not store.exists():
        return None
    try:
        data = json.loads(store.curves_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    driven = data.get("driven") or {}
    sources = sorted(set((driven.get("sources") or {}).values()))
    return ", ".join(s.split(":", 1)[-1] for s in sources) or None
