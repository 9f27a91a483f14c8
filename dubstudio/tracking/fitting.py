"""Fitting the face model to landmarks: rigid pose, identity, named controls, residual.

Everything here is closed-form or a few Gauss-Newton steps of small linear systems, so a
frame costs about a millisecond on a CPU: the shot tracks in real time. The staging follows
the "Dubbing for Everyone" supplementary (7.1): identity once per shot, then parameters
shared by the shot (the residual basis) from many frames at once, then per frame with a
warm start from the previous frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dubstudio.tracking import topology as topo
from dubstudio.core.controls import JAW, CONTROL_NAMES
from dubstudio.tracking.face_model import FaceModel, Pose, _rot_x, jaw_angle
from dubstudio.tracking.template import canonical_frame

# Relative trust in mediapipe's z (a learned guess) versus its image-plane x, y.
Z_WEIGHT = 0.3
# The lip contours matter most for dubbing and are mediapipe's best-localised points; the
# face oval is a silhouette guess that jitters (its chin follows the jaw only loosely).
LIP_WEIGHT = 8.0
INNER_LIP_WEIGHT = 32.0
OVAL_WEIGHT = 0.3
# Ridge weights on the named controls: the jaw is cheap so it takes the mouth opening,
# the lip controls only explain what the jaw cannot.
CONTROL_RIDGE = np.array([0.001, 0.1, 0.1, 2.0, 2.0, 0.3, 0.1])
RESIDUAL_RIDGE = 0.02  # times 1/variance of each residual component
MAX_RESIDUAL = 16
RESIDUAL_VARIANCE_KEPT = 0.97


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> Pose:
    """Weighted similarity transform minimising sum w * |s R src + t - dst|^2."""
    w = weights / weights.sum()
    mu_s = w @ src
    mu_d = w @ dst
    a = src - mu_s
    b = dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = w @ (a**2).sum(axis=1)
    scale = float((sig * d).sum() / var_s)
    t = mu_d - scale * rot @ mu_s
    return Pose(scale, rot, t)


def _skew(v: np.ndarray) -> np.ndarray:
    """(n, 3) vectors -> (n, 3, 3) cross-product matrices."""
    z = np.zeros(len(v))
    return np.stack(
        [np.stack([z, -v[:, 2], v[:, 1]], 1), np.stack([v[:, 2], z, -v[:, 0]], 1), np.stack([-v[:, 1], v[:, 0], z], 1)], 1
    )


def refine_pose(pose: Pose, src: np.ndarray, dst: np.ndarray, xyz_w: np.ndarray, steps: int = 2) -> Pose:
    """Gauss-Newton on the similarity with per-axis weights.

    Umeyama weighs x, y and z alike, but mediapipe's z is a learned guess that bends at large
    head turns; this refinement trusts the image plane more (``xyz_w`` is (n, 3)), which is
    what the 2D fit error is measured in.
    """
    scale, rot, t = pose.scale, pose.rotation.copy(), pose.translation.copy()
    sw = np.sqrt(xyz_w).reshape(-1)
    for _ in range(steps):
        rx = src @ rot.T  # (n, 3)
        err = (dst - (scale * rx + t)).reshape(-1)
        jac = np.empty((len(src), 3, 7))
        jac[:, :, :3] = -scale * _skew(rx)  # left perturbation R <- exp([w]x) R
        jac[:, :, 3] = rx * scale  # d/d(log scale)
        jac[:, :, 4:] = np.eye(3)[None]
        jac = jac.reshape(-1, 7) * sw[:, None]
        delta = np.linalg.solve(jac.T @ jac + 1e-6 * np.eye(7), jac.T @ (err * sw))
        w = delta[:3]
        angle = np.linalg.norm(w)
        if angle > 1e-12:
            k = _skew((w / angle)[None])[0]
            rot = (np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k) @ rot
        scale *= float(np.exp(delta[3]))
        t = t + delta[4:]
    return Pose(scale, rot, t)


def to_canonical(pose: Pose, pts: np.ndarray) -> np.ndarray:
    return (pts - pose.translation) @ pose.rotation / pose.scale


@dataclass
class FrameFit:
    pose: Pose
    controls: np.ndarray  # (n_controls,)
    residual: np.ndarray  # (K,)


class Fitter:
    """Per-frame solver for one actor's FaceModel."""

    def __init__(self, model: FaceModel, residual_var: np.ndarray | None = None) -> None:
        self.model = model
        n = topo.N_LANDMARKS
        self.point_w = np.ones(n)
        self.point_w[topo.IRIS] = 0.2
        self.point_w[topo.FACE_OVAL] = OVAL_WEIGHT
        self.point_w[topo.LIP_CONTOURS] = LIP_WEIGHT
        self.point_w[topo.UPPER_INNER_LIP + topo.LOWER_INNER_LIP] = INNER_LIP_WEIGHT
        self.xyz_w = np.tile(np.array([1.0, 1.0, Z_WEIGHT]), (n, 1)) * self.point_w[:, None]
        self.rigid_w = np.maximum(model.regions.rigid, 1e-3)
        k = model.n_residual
        var = residual_var if residual_var is not None else np.ones(k)
        self.residual_ridge = RESIDUAL_RIDGE / np.maximum(var, 1e-8)

    def _jaw_blend(self, jaw_open: float) -> np.ndarray:
        """Per-vertex 3x3 matrices mapping a pre-jaw displacement to its post-jaw one."""
        w = self.model.regions.jaw[:, None, None]
        return np.eye(3)[None] + w * (_rot_x(jaw_angle(jaw_open)) - np.eye(3))[None]

    def solve_expression(
        self, obs_c: np.ndarray, controls: np.ndarray, residual: np.ndarray, steps: int = 2
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Newton on the named controls, then ridge least squares on the residual."""
        m = self.model
        c = controls.astype(np.float64).copy()
        r = residual.astype(np.float64).copy()
        sw = np.sqrt(self.xyz_w).reshape(-1)
        for _ in range(steps):
            blended = m.blend(c)  # named controls first, without the residual
            pred = m.jaw_skin(blended, c[JAW])
            err = (obs_c - pred).reshape(-1)
            blend_m = self._jaw_blend(c[JAW])
            jac = np.empty((topo.N_LANDMARKS, 3, len(c)))
            jac[:, :, 1:] = np.einsum("vij,kvj->vik", blend_m, m.bases[1:])
            # d/djaw of R(theta)(v - p), theta = jaw_angle(c), weighted per vertex.
            th = jaw_angle(c[JAW])
            d_rot = np.array([[0, 0, 0], [0, -np.sin(th), -np.cos(th)], [0, np.cos(th), -np.sin(th)]])
            jac[:, :, JAW] = (
                m.regions.jaw[:, None] * ((blended - m.regions.pivot) @ d_rot.T) * jaw_angle(1.0)
                + np.einsum("vij,vj->vi", blend_m, m.jaw_comotion)
            )
            jac = jac.reshape(-1, len(c)) * sw[:, None]
            lhs = jac.T @ jac + np.diag(CONTROL_RIDGE)
            rhs = jac.T @ (err * sw) - CONTROL_RIDGE * c
            c += np.linalg.solve(lhs, rhs)
        if m.n_residual:
            pred = m.landmarks(c, np.zeros_like(r))
            err = (obs_c - pred).reshape(-1)
            basis = np.einsum("vij,kvj->vik", self._jaw_blend(c[JAW]), m.residual_basis)
            basis = basis.reshape(-1, m.n_residual) * sw[:, None]
            lhs = basis.T @ basis + np.diag(self.residual_ridge)
            r = np.linalg.solve(lhs, basis.T @ (err * sw))
        return c, r

    def fit(self, obs: np.ndarray, init: FrameFit | None = None, iters: int = 2) -> FrameFit:
        """Fit pose and expression to one frame's (478, 3) landmarks, warm-started by ``init``."""
        m = self.model
        c = init.controls.copy() if init is not None else np.zeros(len(CONTROL_NAMES))
        r = init.residual.copy() if init is not None else np.zeros(m.n_residual)
        pose = None
        for it in range(iters):
            shape = m.landmarks(c, r)
            # First pass: the rigid part of the face only; later: the whole fitted mesh.
            w = self.rigid_w if it == 0 else self.rigid_w + 0.3 * self.point_w
            pose = refine_pose(umeyama(shape, obs, w), shape, obs, w[:, None] * self.xyz_w / self.point_w[:, None])
            obs_c = to_canonical(pose, obs)
            c, r = self.solve_expression(obs_c, c, r)
        return FrameFit(pose, c, r)


def mouth_opening(canonical: np.ndarray) -> float:
    a, b = topo.INNER_LIP_MID
    return float(np.linalg.norm(canonical[a, :2] - canonical[b, :2]))


def solve_identity(samples: list[np.ndarray], template: np.ndarray, closed_fraction: float = 0.3) -> np.ndarray:
    """Stage 1: the actor's neutral shape from the frames where the mouth is most closed.

    Generalised Procrustes on the rigid part of the face, then the mean of the
    closest-to-closed frames, expressed in the canonical frame (IOD = 1).
    """
    from dubstudio.tracking.face_model import compute_regions

    rigid_w = np.maximum(compute_regions(template).rigid, 1e-3)
    mean = np.asarray(template, dtype=np.float64)
    aligned = []
    for _ in range(3):
        aligned = [to_canonical(umeyama(mean, s.astype(np.float64), rigid_w), s) for s in samples]
        mean = canonical_frame(np.mean(aligned, axis=0))
    openings = np.array([mouth_opening(a) for a in aligned])
    n_keep = max(3, int(round(len(samples) * closed_fraction)))
    keep = np.argsort(openings)[:n_keep]
    neutral = canonical_frame(np.mean([aligned[i] for i in keep], axis=0))
    return neutral


def shape_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two neutral face shapes (``Tracking.identity``) are: the RMS vertex distance
    after a similarity alignment of ``b`` onto ``a``, both centred and scaled to unit RMS radius.
    On the media clips: one person in three shots of one take 0.005-0.011, two people 0.036-0.087."""
    a = np.asarray(a, np.float64) - np.mean(a, axis=0)
    b = np.asarray(b, np.float64) - np.mean(b, axis=0)
    a = a / np.sqrt((a**2).sum(1).mean())
    b = b / np.sqrt((b**2).sum(1).mean())
    u, sv, vt = np.linalg.svd(b.T @ a)
    if np.linalg.det(u @ vt) < 0:  # a rotation, never a mirror
        u[:, -1] *= -1
        sv[-1] *= -1
    scale = sv.sum() / (b**2).sum()
    return float(np.sqrt(((scale * b @ (u @ vt) - a) ** 2).sum(1).mean()))


def solve_residual_basis(
    model: FaceModel, samples: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2: a shot-wide residual basis (PCA of what the named controls leave over)."""
    fitter = Fitter(model)
    leftovers = []
    prev = None
    for s in samples:
        fit = fitter.fit(s.astype(np.float64), prev)
        prev = None  # samples are spread over the shot: no warm start between them
        obs_c = to_canonical(fit.pose, s)
        leftovers.append((obs_c - model.landmarks(fit.controls)).reshape(-1))
    x = np.asarray(leftovers)
    x = x - x.mean(axis=0)  # the mean leftover is a shape offset: fold into PCA as well
    _, sv, vt = np.linalg.svd(np.asarray(leftovers), full_matrices=False)
    var = sv**2 / max(len(samples) - 1, 1)
    cum = np.cumsum(var) / var.sum()
    k = int(min(MAX_RESIDUAL, np.searchsorted(cum, RESIDUAL_VARIANCE_KEPT) + 1, len(var)))
    basis = vt[:k].reshape(k, topo.N_LANDMARKS, 3)
    return basis, var[:k]
