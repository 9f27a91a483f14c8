"""Tracking correction: the editor fixes a frame the tracker got wrong, and its neighbours follow.

Where tracking is wrong on a frame the user drags model landmarks to where they belong
(``CorrectLandmarks``) or nudges the head pose / jaw (``NudgePose``; both undoable edits in
``correction_edits.py``, stored by ``correction_store.py``). The frame is re-fitted
with the moved landmarks as strong constraints (the same solver as the tracker, fitting.py),
and the change is blended into the neighbouring frames so that nothing pops.

What is stored is the user's *input*, never a second tracking: per corrected frame the target
image positions of the moved landmarks and the pose/jaw nudge. The corrected ``Tracking`` is a
pure function of the tracker's file and these inputs (``TrackingCorrector``), so the original
tracking is never overwritten and "reset to tracker" just removes inputs.

How a frame is re-fitted (``TrackingCorrector.solve``):

1. The detected landmarks are the observations. Each moved landmark j gets the observation
   ``target_j`` with weight ``handle_weight``; the other landmarks are displaced by a smooth
   field that interpolates the handles' moves ``target_j - model_j`` (Gaussian RBF over the
   actor's neutral shape, ``falloff_iod`` wide, with the jaw weight as a fourth coordinate so
   a lower-lip drag never drags the upper lip along). Dragging the lower lip down therefore
   says "the whole lower lip is lower here", and the jaw opens instead of one vertex bending.
2. Pose (Umeyama + refinement) and expression (Gauss-Newton on the named controls, ridge on
   the residual) are solved as in ``Fitter.fit``, warm-started from the tracked frame; moved
   landmarks pull on the pose only as much as they are rigid (an eye corner moves the head,
   a lip point moves the mouth).
3. A pose nudge (rotation about the nose tip, in image axes; translation in pixels) is applied
   to the fitted pose and the expression is solved again under it; a jaw nudge is added to
   ``jaw_open`` last.
4. The same procedure without the user's input gives the frame's *base* fit; the correction
   is the difference ``new - base`` in parameter space (controls, residual, rotation vector,
   log scale, translation of the nose tip) and is added to the tracked (smoothed) values. A
   correction that changes nothing is therefore exactly zero.

Blending (``blend_frames`` = N): a corrected frame takes its full delta; neighbours take it
with a smoothstep falloff over N frames (frame k±(N+1) is untouched); between two corrected
frames closer than 2(N+1) the delta is interpolated (smoothstep) from one to the other. Blends
stay inside one run of frames with a face. Crop boxes are not changed by corrections (they
are smoothed over a second and nudges are well inside their margin), nor are the detected
landmarks (they stay what mediapipe saw).

Curves follow corrections: ``ControlCurves``' tracked base *is* the corrected tracking's
controls. An edit applies the new corrected controls to the base of the frames it changed;
keys and driven layers are stored as overrides/deltas over that base, so they survive (an
offset key rides on the corrected jaw, a replace key keeps its value, a driven curve at
weight 1 still wins). ``curves.json`` records ``tracked_sha256`` of the base it was saved over
(the corrected controls); ``tracking_corrections.json`` records the hash of the tracker's
file it corrects, so a re-tracked shot is noticed (the corrections are kept: they are image
positions and nudges, still meaningful on the same frames).

``edits/tracking_corrections.json`` (schema 1, atomic)::

    {"schema_version": 1, "kind": "dubstudio.tracking_corrections", "saved_at": "...",
     "saved_ns": 1700..., "n_frames": 200, "tracking_sha256": "...",
     "settings": {"blend_frames": 4, "falloff_iod": 0.2, "handle_weight": 1000.0, "iterations": 3},
     "frames": [{"frame": 12, "points": {"14": [412.5, 388.0]}, "rotation": [0, 0, 0.01],
                 "translation": [1.0, 0, 0], "jaw": 0.0}]}

Rotation is a rotation vector in radians (image axes: x right, y down, z into the screen),
translation is in image pixels, points are image pixels of model landmark indices.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from psygnal import Signal
from scipy.spatial.transform import Rotation

from dubstudio.core.errors import NoFaceError
from dubstudio.tracking import fitting
from dubstudio.tracking import topology as topo
from dubstudio.core.controls import JAW
from dubstudio.tracking.face_model import FaceModel, Pose
from dubstudio.tracking.fitting import FrameFit, Z_WEIGHT, refine_pose, to_canonical, umeyama
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.smoothing import segments

log = logging.getLogger(__name__)

# The handles an editor drags: a sparse, useful subset of the 478 landmarks.
HANDLE_GROUPS: dict[str, tuple[int, ...]] = {
    "outer lips": (61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91),
    "inner lips": (78, 81, 13, 311, 308, 402, 14, 178),
    "jaw": (132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361),
    "eyes": (33, 133, 362, 263),
    "nose": (168, 1, 98, 327),
}
HANDLE_LANDMARKS: tuple[int, ...] = tuple(i for g in HANDLE_GROUPS.values() for i in g)
# Polylines drawn between handles (all landmarks of each contour, so they follow the mesh).
JAW_LINE = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
CONTOURS: tuple[tuple[int, ...], ...] = (
    tuple(topo.UPPER_OUTER_LIP) + tuple(reversed(topo.LOWER_OUTER_LIP)),
    tuple(topo.UPPER_INNER_LIP) + tuple(reversed(topo.LOWER_INNER_LIP)),
    JAW_LINE,
    (33, 160, 158, 133, 153, 144, 33),
    (362, 385, 387, 263, 373, 380, 362),
    (168, 6, 197, 195, 5, 4, 1),
    (98, 97, 2, 326, 327),
)

_N_DELTA_POSE = 7  # rotation vector (3), log scale (1), nose-tip translation (3)


@dataclass(frozen=True)
class CorrectionSettings:
    blend_frames: int = 4  # neighbours on each side that take part of a correction
    falloff_iod: float = 0.2  # how far a landmark drag reaches on the face (inter-ocular units)
    handle_weight: float = 1000.0  # weight of a moved landmark (inner lips weigh 32)
    iterations: int = 3  # pose/expression alternations of a re-fit

    def __post_init__(self) -> None:
        if int(self.blend_frames) != self.blend_frames or self.blend_frames < 0:
            raise ValueError(f"blend_frames must be an integer >= 0, got {self.blend_frames!r}")
        if not self.falloff_iod > 0 or not self.handle_weight > 0 or int(self.iterations) < 1:
            raise ValueError("falloff_iod and handle_weight must be > 0, iterations >= 1")


@dataclass(frozen=True)
class FrameCorrection:
    """The user's input on one frame: moved landmarks and a pose/jaw nudge."""

    points: tuple[tuple[int, float, float], ...] = ()  # (landmark, x, y) image px, sorted
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # rotation vector, radians
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # pixels
    jaw: float = 0.0  # added to jaw_open

    def __post_init__(self) -> None:
        pts = {}
        for i, x, y in self.points:
            i = int(i)
            if not 0 <= i < topo.N_LANDMARKS:
                raise ValueError(f"landmark {i} is not one of the model's 0..{topo.N_LANDMARKS - 1}")
            if not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError(f"landmark {i} target must be finite, got {(x, y)!r}")
            pts[i] = (float(x), float(y))
        object.__setattr__(self, "points", tuple((i, *pts[i]) for i in sorted(pts)))
        rot = tuple(float(v) for v in self.rotation)
        tr = tuple(float(v) for v in self.translation)
        if len(rot) != 3 or len(tr) != 3 or not np.all(np.isfinite(rot + tr + (self.jaw,))):
            raise ValueError("rotation and translation must be 3 finite numbers each, jaw finite")
        object.__setattr__(self, "rotation", rot)
        object.__setattr__(self, "translation", tr)
        object.__setattr__(self, "jaw", float(self.jaw))

    @property
    def targets(self) -> dict[int, tuple[float, float]]:
        return {i: (x, y) for i, x, y in self.points}

    @property
    def has_nudge(self) -> bool:
        return any(self.rotation) or any(self.translation) or self.jaw != 0.0

    def is_empty(self) -> bool:
        return not self.points and not self.has_nudge

    def with_points(self, targets: Mapping[int, Iterable[float]]) -> FrameCorrection:
        """These moved landmarks added (a landmark moved again gets its new target)."""
        pts = self.targets | {int(i): tuple(float(v) for v in xy)[:2] for i, xy in targets.items()}
        return dataclasses.replace(self, points=tuple((i, x, y) for i, (x, y) in pts.items()))

    def nudged(self, d_rotation=(0.0, 0.0, 0.0), d_translation=(0.0, 0.0, 0.0), d_jaw: float = 0.0) -> FrameCorrection:
        """The nudge composed with another one (rotations compose, translations add)."""
        rot = (Rotation.from_rotvec(np.asarray(d_rotation, float)) * Rotation.from_rotvec(self.rotation)).as_rotvec()
        d = np.zeros(3)
        dt = np.atleast_1d(np.asarray(d_translation, float))[:3]
        d[: len(dt)] = dt
        tr = np.asarray(self.translation) + d
        return dataclasses.replace(self, rotation=tuple(rot), translation=tuple(tr), jaw=self.jaw + float(d_jaw))

    def to_json(self, frame: int) -> dict:
        return {
            "frame": int(frame),
            "points": {str(i): [x, y] for i, x, y in self.points},
            "rotation": list(self.rotation),
            "translation": list(self.translation),
            "jaw": self.jaw,
        }

    @classmethod
    def from_json(cls, d: dict) -> tuple[int, FrameCorrection]:
        pts = tuple((int(i), float(xy[0]), float(xy[1])) for i, xy in dict(d.get("points", {})).items())
        return int(d["frame"]), cls(pts, tuple(d.get("rotation", (0, 0, 0))), tuple(d.get("translation", (0, 0, 0))), float(d.get("jaw", 0.0)))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass
class TrackingSpan:
    """The corrected tracking's per-frame fields of frames [start, stop) (to restore exactly)."""

    start: int
    stop: int
    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    controls: np.ndarray
    residual: np.ndarray


class TrackingCorrector:
    """The tracker's ``original`` Tracking plus the user's corrections -> ``tracking`` (corrected).

    ``tracking`` is an immutable snapshot: every change makes a new ``Tracking`` object (sharing
    the landmarks and everything that corrections never change), so a worker thread holding
    one sees consistent data. ``changed(start, stop)`` is emitted after frames [start, stop)
    changed. Mutate only through the edits below (undoable), or ``set_corrections``.
    """

    changed = Signal(int, int)

    def __init__(self, original: Tracking, corrections: Mapping[int, FrameCorrection] | None = None,
                 settings: CorrectionSettings = CorrectionSettings(), model: FaceModel | None = None) -> None:
        self.original = original
        self.settings = settings
        self.model = model if model is not None else original.model()
        self._fitter = fitting.Fitter(self.model, original.residual_var)
        self._pivot = self.model.identity[topo.NOSE_TIP].copy()
        self._corrections: dict[int, FrameCorrection] = {}
        self._deltas: dict[int, np.ndarray] = {}  # frame -> parameter delta of its correction
        self._base_fits: dict[int, FrameFit] = {}
        self._kernel_q: np.ndarray | None = None
        self._segments = segments(original.has_face)
        self._seg_of = np.full(original.n_frames, -1, np.int64)
        for k, (a, b) in enumerate(self._segments):
            self._seg_of[a:b] = k
        self.tracking = original
        self.last_solve_ms = 0.0
        if corrections:
            self.set_corrections(dict(corrections), emit=False)

    # -- read access --

    @property
    def n_frames(self) -> int:
        return self.original.n_frames

    @property
    def corrections(self) -> dict[int, FrameCorrection]:
        """frame -> correction (a copy)."""
        return dict(self._corrections)

    def correction(self, frame: int) -> FrameCorrection | None:
        return self._corrections.get(int(frame))

    def corrected_frames(self) -> list[int]:
        return sorted(self._corrections)

    def is_corrected(self, frame: int) -> bool:
        return int(frame) in self._corrections

    def influence(self, frame: int) -> float:
        """How much of a correction reaches ``frame`` (1 on a corrected frame, 0 far away)."""
        return float(self._weights(int(frame)).sum()) if self._corrections else 0.0

    def landmarks(self, frame: int, tracking: Tracking | None = None) -> np.ndarray:
        """(478, 3) image-space model landmarks of the corrected tracked fit of ``frame``."""
        t = tracking or self.tracking
        return t.landmarks_image(int(frame), model=self.model)

    def check_frame(self, frame: int) -> int:
        f = int(frame)
        if not 0 <= f < self.n_frames:
            raise IndexError(f"frame {f} is outside the shot (0..{self.n_frames - 1})")
        if not self.original.has_face[f]:
            raise NoFaceError(f"frame {f} has no tracked face, so there is nothing to correct there; pick a frame with a face.")
        return f

    # -- solving one frame --

    def _q(self) -> np.ndarray:
        """Per-landmark coordinates of the drag falloff: neutral shape + the jaw weight."""
        if self._kernel_q is None:
            lam = 3.0 * self.settings.falloff_iod  # a jaw-weight difference of 1 = 3 sigma apart
            self._kernel_q = np.concatenate([self.model.identity, lam * self.model.regions.jaw[:, None]], axis=1)
        return self._kernel_q

    def _constrained(self, frame: int, obs: np.ndarray, corr: FrameCorrection) -> tuple[np.ndarray, np.ndarray]:
        """Observations with the moved landmarks (and the field they drag along), and the
        indices of the moved landmarks."""
        targets = corr.targets
        if not targets:
            return obs, np.zeros(0, np.int64)
        idx = np.array(sorted(targets), np.int64)
        tgt = np.array([targets[i] for i in idx])
        model_xy = self.original.landmarks_image(frame, model=self.model)[idx, :2]
        d = tgt - model_xy  # how far the user moved the visible points
        q = self._q()
        sig2 = self.settings.falloff_iod**2
        k_hh = np.exp(-((q[idx, None] - q[None, idx]) ** 2).sum(-1) / sig2)
        alpha = np.linalg.solve(k_hh + 1e-6 * np.eye(len(idx)), d)
        k_ah = np.exp(-((q[:, None] - q[None, idx]) ** 2).sum(-1) / sig2)
        out = obs.copy()
        out[:, :2] += k_ah @ alpha
        out[idx, :2] = tgt
        return out, idx

    def _fit(self, obs: np.ndarray, handles: np.ndarray, init: FrameFit, corr: FrameCorrection | None) -> FrameFit:
        f0 = self._fitter
        m = self.model
        w_h = self.settings.handle_weight
        point_w = f0.point_w.copy()
        point_w[handles] = w_h
        xyz_w = f0.xyz_w.copy()
        xyz_w[handles, :2] = w_h  # the user moved x, y; z stays as detected, at its usual weight
        fitter = copy.copy(f0)
        fitter.xyz_w = xyz_w
        extra = np.zeros(topo.N_LANDMARKS)
        extra[handles] = w_h * m.regions.rigid[handles]  # rigid handles move the head
        axes = np.array([1.0, 1.0, Z_WEIGHT])
        c, r = init.controls.astype(np.float64).copy(), init.residual.astype(np.float64).copy()
        pose = init.pose
        for it in range(self.settings.iterations):
            shape = m.landmarks(c, r)
            w = (f0.rigid_w if it == 0 else f0.rigid_w + 0.3 * f0.point_w) + extra
            pose = refine_pose(umeyama(shape, obs, w), shape, obs, w[:, None] * axes)
            c, r = fitter.solve_expression(to_canonical(pose, obs), c, r)
        if corr is not None and (any(corr.rotation) or any(corr.translation)):
            pose = self._nudge_pose(pose, corr.rotation, corr.translation)
        c, r = fitter.solve_expression(to_canonical(pose, obs), c, r)  # under the final pose
        return FrameFit(pose, c, r)

    def _nudge_pose(self, pose: Pose, rotvec, translation) -> Pose:
        rot = Rotation.from_rotvec(np.asarray(rotvec, float)).as_matrix() @ pose.rotation
        pivot = pose.scale * pose.rotation @ self._pivot + pose.translation
        pivot = pivot + np.asarray(translation, float)
        return Pose(pose.scale, rot, pivot - pose.scale * rot @ self._pivot)

    def _init(self, frame: int) -> FrameFit:
        t = self.original
        return FrameFit(t.pose(frame), t.controls[frame].copy(), t.residual[frame].copy())

    def _base_fit(self, frame: int) -> FrameFit:
        fit = self._base_fits.get(frame)
        if fit is None:
            obs = self.original.landmarks[frame].astype(np.float64)
            fit = self._base_fits[frame] = self._fit(obs, np.zeros(0, np.int64), self._init(frame), None)
        return fit

    def solve(self, frame: int, corr: FrameCorrection) -> np.ndarray:
        """The parameter delta (controls, residual, rotation vector, log scale, nose-tip
        translation) that ``corr`` makes on ``frame`` (zero for an empty correction)."""
        f = self.check_frame(frame)
        n_c, k = self.original.controls.shape[1], self.original.residual.shape[1]
        if corr.is_empty():
            return np.zeros(n_c + k + _N_DELTA_POSE)
        t0 = time.perf_counter()
        base = self._base_fit(f)
        if corr.points:
            obs, handles = self._constrained(f, self.original.landmarks[f].astype(np.float64), corr)
            new = self._fit(obs, handles, self._init(f), corr)
        elif any(corr.rotation) or any(corr.translation):
            # a nudge alone: the base fit's pose, nudged, then the expression under it
            pose = self._nudge_pose(base.pose, corr.rotation, corr.translation)
            obs_c = to_canonical(pose, self.original.landmarks[f].astype(np.float64))
            c, r = self._fitter.solve_expression(obs_c, base.controls, base.residual)
            new = FrameFit(pose, c, r)
        else:
            new = base
        d = self._delta(base, new)
        d[JAW] += corr.jaw
        self.last_solve_ms = (time.perf_counter() - t0) * 1000
        return d

    def _delta(self, base: FrameFit, new: FrameFit) -> np.ndarray:
        p = self._pivot
        drot = Rotation.from_matrix(new.pose.rotation @ base.pose.rotation.T).as_rotvec()
        dlogs = np.log(new.pose.scale / base.pose.scale)
        piv_b = base.pose.scale * base.pose.rotation @ p + base.pose.translation
        piv_n = new.pose.scale * new.pose.rotation @ p + new.pose.translation
        return np.concatenate([new.controls - base.controls, new.residual - base.residual, drot, [dlogs], piv_n - piv_b])

    def _apply_delta(self, frames: np.ndarray, deltas: np.ndarray, src: Tracking) -> dict[str, np.ndarray]:
        """Fields of ``frames`` of ``src`` (the original) with per-frame ``deltas`` added."""
        n_c, k = src.controls.shape[1], src.residual.shape[1]
        dc, dr = deltas[:, :n_c], deltas[:, n_c : n_c + k]
        drot, dlogs, dpiv = deltas[:, n_c + k : n_c + k + 3], deltas[:, n_c + k + 3], deltas[:, n_c + k + 4 :]
        s, rot, tr = src.scale[frames], src.rotation[frames], src.translation[frames]
        piv = s[:, None] * (rot @ self._pivot) + tr
        new_rot = Rotation.from_rotvec(drot).as_matrix() @ rot
        new_s = s * np.exp(dlogs)
        new_tr = piv + dpiv - new_s[:, None] * (new_rot @ self._pivot)
        moved = np.any(deltas != 0, axis=1)  # untouched frames keep their exact values
        return dict(
            scale=np.where(moved, new_s, s),
            rotation=np.where(moved[:, None, None], new_rot, rot),
            translation=np.where(moved[:, None], new_tr, tr),
            controls=src.controls[frames] + dc,
            residual=src.residual[frames] + dr,
        )

    def preview(self, frame: int, corr: FrameCorrection) -> Tracking:
        """A tracking snapshot where only ``frame`` carries ``corr`` at full weight (instead of
        its stored correction), for a live preview while dragging. Neighbours are not blended."""
        f = self.check_frame(frame)
        d = self.solve(f, corr)[None]
        fields = self._apply_delta(np.array([f]), d, self.original)
        out = {}
        for name, v in fields.items():
            arr = getattr(self.tracking, name).copy()
            arr[f] = v[0]
            out[name] = arr
        return dataclasses.replace(self.tracking, **out)

    # -- blending over frames --

    def _weights(self, t: int) -> np.ndarray:
        """Per corrected frame (in ``corrected_frames`` order) its weight at frame ``t``."""
        frames = self.corrected_frames()
        w = np.zeros(len(frames))
        seg = self._seg_of[t]
        if seg < 0 or not frames:
            return w
        n = self.settings.blend_frames
        same = [j for j, f in enumerate(frames) if self._seg_of[f] == seg]
        fs = np.array([frames[j] for j in same])
        pos = int(np.searchsorted(fs, t, side="right")) - 1  # last corrected frame <= t
        if pos >= 0 and fs[pos] == t:
            w[same[pos]] = 1.0
            return w
        a = same[pos] if pos >= 0 else None
        b = same[pos + 1] if pos + 1 < len(same) else None
        if a is not None and b is not None and frames[b] - frames[a] <= 2 * (n + 1):
            s = float(_smoothstep((t - frames[a]) / (frames[b] - frames[a])))
            w[a], w[b] = 1.0 - s, s
            return w
        if a is not None and t - frames[a] <= n:
            w[a] = float(_smoothstep(1.0 - (t - frames[a]) / (n + 1)))
        if b is not None and frames[b] - t <= n:
            w[b] = float(_smoothstep(1.0 - (frames[b] - t) / (n + 1)))
        return w

    def _reach(self, frame: int) -> tuple[int, int]:
        """Frames [start, stop) whose value can change when ``frame``'s correction changes."""
        r = 2 * (self.settings.blend_frames + 1)
        seg = self._seg_of[frame]
        a, b = self._segments[seg] if seg >= 0 else (frame, frame + 1)
        return max(a, frame - r), min(b, frame + r + 1)

    def _compute(self, start: int, stop: int) -> dict[str, np.ndarray]:
        frames = np.arange(start, stop)
        corrected = self.corrected_frames()
        deltas = np.zeros((len(frames), self.original.controls.shape[1] + self.original.residual.shape[1] + _N_DELTA_POSE))
        if corrected:
            dmat = np.stack([self._deltas[f] for f in corrected])
            for k, t in enumerate(frames):
                w = self._weights(int(t))
                if w.any():
                    deltas[k] = w @ dmat
        return self._apply_delta(frames, deltas, self.original)

    def _span(self, start: int, stop: int) -> TrackingSpan:
        t = self.tracking
        return TrackingSpan(start, stop, t.scale[start:stop].copy(), t.rotation[start:stop].copy(),
                     t.translation[start:stop].copy(), t.controls[start:stop].copy(), t.residual[start:stop].copy())

    def _write(self, span: TrackingSpan) -> None:
        """A new snapshot with frames [span.start, span.stop) replaced."""
        a, b = span.start, span.stop
        out = {}
        for name in ("scale", "rotation", "translation", "controls", "residual"):
            arr = getattr(self.tracking, name).copy()
            arr[a:b] = getattr(span, name)
            arr.setflags(write=False)
            out[name] = arr
        self.tracking = dataclasses.replace(self.tracking, **out)

    # -- changing corrections (edits call these) --

    def set_corrections(self, changes: Mapping[int, FrameCorrection | None], emit: bool = True) -> tuple[dict, TrackingSpan | None]:
        """Set (or remove, ``None`` / empty) the corrections of some frames. Returns what they
        were and the corrected fields they overwrote, for ``restore``."""
        new_deltas = {}
        for f, corr in changes.items():
            f = int(f)
            if corr is not None and not corr.is_empty():
                new_deltas[f] = self.solve(f, corr)  # raises before anything changed
            elif not 0 <= f < self.n_frames:
                raise IndexError(f"frame {f} is outside the shot (0..{self.n_frames - 1})")
        old = {int(f): (self._corrections.get(int(f)), self._deltas.get(int(f))) for f in changes}
        if not changes:
            return old, None
        lo = min(self._reach(int(f))[0] for f in changes)
        hi = max(self._reach(int(f))[1] for f in changes)
        span = self._span(lo, hi)
        for f, corr in changes.items():
            f = int(f)
            if f in new_deltas:
                self._corrections[f], self._deltas[f] = corr, new_deltas[f]
            else:
                self._corrections.pop(f, None)
                self._deltas.pop(f, None)
        fields = self._compute(lo, hi)
        self._write(TrackingSpan(lo, hi, **fields))
        if emit:
            self.changed.emit(lo, hi)
        return old, span

    def restore(self, old: Mapping, span: TrackingSpan | None, emit: bool = True) -> None:
        """Undo ``set_corrections``: the old inputs and, bit for bit, the old corrected fields."""
        for f, (corr, delta) in old.items():
            if corr is None:
                self._corrections.pop(f, None)
                self._deltas.pop(f, None)
            else:
                self._corrections[f], self._deltas[f] = corr, delta
        if span is not None:
            self._write(span)
            if emit:
                self.changed.emit(span.start, span.stop)

    def reset(self) -> None:
        """Forget every correction (not undoable; for loading)."""
        self._corrections.clear()
        self._deltas.clear()
        self.tracking = self.original
        self.changed.emit(0, self.n_frames)


__all__ = [
    "CONTOURS", "HANDLE_GROUPS", "HANDLE_LANDMARKS", "CorrectionSettings", "FrameCorrection", "TrackingCorrector",
]
