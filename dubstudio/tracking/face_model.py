"""The face model: mediapipe topology, a per-actor identity, named expression controls.

    canonical = identity + sum_k c_k * B_k(identity) + sum_j r_j * P_j      (blendshapes)
    canonical = jaw_skin(canonical, jaw)                                   (rotation about a pivot)
    image     = s * R @ canonical + t                                      (rigid head pose)

Units are canonical: inter-ocular distance (outer eye corners) = 1, x right, y down, z into
the screen. The *named controls* are displacement fields defined geometrically on the actor's
own neutral shape, with amplitudes in IOD units, so "jaw_open = 0.4" means the same mouth
motion on any actor: one person's curves can drive another's. ``jaw_open = 1`` is a
``JAW_MAX_DEG`` rotation of the lower face about a pivot at ear level; the other controls are
linear. The per-shot *residual* basis P (from the tracker) absorbs what the named controls
cannot (blinks, brows, gaze, asymmetries) so the mesh still reproduces the tracked landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dubstudio.core.controls import CONTROL_NAMES, CONTROL_RANGE, JAW  # noqa: F401 (the schema the model implements)
from dubstudio.tracking import topology as topo

# When the jaw opens in speech the upper lip rises by about a third of the opening; the
# jaw control carries that co-motion so that jaw_open alone opens the mouth naturally.
UPPER_LIP_COMOTION = 1.25  # times the upper_lip_raise field per unit jaw_open
JAW_MAX_DEG = 11.0

INTERIOR_DEPTH = 0.18  # how far the mouth cavity recedes behind the lips, IOD units


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class Regions:
    """Per-vertex weights derived from a neutral shape (all in [0, 1])."""

    jaw: np.ndarray  # how much a vertex follows the jaw rotation
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    lips: np.ndarray  # lips with a soft fall-off onto the surrounding skin
    mouth_area: np.ndarray  # broader fall-off (cheeks), for width/smile
    rigid: np.ndarray  # weight of a vertex for rigid pose estimation
    mouth_center: np.ndarray
    mouth_half_width: float
    pivot: np.ndarray
    near_corner: np.ndarray  # 1 at the mouth corners, fading out over ~0.1 IOD


def _lip_line(neutral: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y of the line between the lips at each x (flat beyond the corners)."""
    up = neutral[topo.UPPER_INNER_LIP]
    lo = neutral[topo.LOWER_INNER_LIP]
    mid = (up + lo) / 2
    order = np.argsort(mid[:, 0])
    return np.interp(x, mid[order, 0], mid[order, 1])


def compute_regions(neutral: np.ndarray) -> Regions:
    v = np.asarray(neutral, dtype=np.float64)[: topo.N_LANDMARKS]
    inner = v[topo.UPPER_INNER_LIP + topo.LOWER_INNER_LIP]
    center = inner.mean(axis=0)
    half_width = float(np.linalg.norm(v[61] - v[291]) / 2)

    outer = np.concatenate([v[topo.UPPER_OUTER_LIP], v[topo.LOWER_OUTER_LIP][::-1]])[:, :2]
    poly = outer.astype(np.float32).reshape(-1, 1, 2)
    # Signed distance to the outer lip contour (positive inside), in IOD units.
    sd = np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in v[:, :2]])
    inside = sd >= -1e-6
    line_y = _lip_line(v, v[:, 0])
    below = v[:, 1] - line_y  # > 0 below the lips' meeting line

    lips = np.where(inside, 1.0, np.exp(-((sd / 0.10) ** 2)))
    upper = np.where(inside & (below < 0), 1.0, 0.0)
    lower = np.where(inside & (below >= 0), 1.0, 0.0)
    upper[topo.UPPER_INNER_LIP + topo.UPPER_OUTER_LIP] = 1.0
    lower[topo.LOWER_INNER_LIP + topo.LOWER_OUTER_LIP] = 1.0
    for c in topo.MOUTH_CORNERS:
        upper[c] = lower[c] = 0.5

    # Jaw weights: the lower lip follows the jaw fully; soft tissue below it less and less
    # (about half at the chin), and the sides of the jaw less still. The lips' meeting line
    # is the hinge between "stays" and "moves" (smoothed over a band around it).
    y_ll = v[topo.LOWER_OUTER_LIP, 1].max()
    y_chin = v[topo.CHIN, 1]
    below_lip = _smoothstep((v[:, 1] - y_ll) / max(y_chin - y_ll, 1e-6))
    lateral = 1 - 0.7 * _smoothstep((np.abs(v[:, 0] - center[0]) - 0.3) / 0.5)
    jaw = _smoothstep((below + 0.10) / 0.30) * (1 - 0.45 * below_lip) * lateral
    jaw[upper >= 1] = 0.0
    jaw[lower >= 1] = 1.0
    # Near the mouth corners upper and lower lip meet: blend every weight towards 0.5 there,
    # or the tiny corner triangles fold over when the jaw opens.
    corners = v[topo.MOUTH_CORNERS, :2]
    d_corner = np.min(np.linalg.norm(v[:, None, :2] - corners[None], axis=2), axis=1)
    near = np.exp(-((d_corner / 0.09) ** 2))
    jaw = jaw * (1 - near) + 0.5 * near
    jaw[topo.IRIS] = 0.0

    d_mouth = np.hypot((v[:, 0] - center[0]) / (1.6 * half_width), (v[:, 1] - center[1]) / 0.55)
    mouth_area = np.exp(-(d_mouth**2) * 1.5)
    rigid = (1 - jaw) * (1 - mouth_area) ** 2
    rigid[topo.IRIS] = 0.0
    # Eyelids blink: keep them out of the rigid fit.
    eyes = np.hypot(v[:, 0] - np.where(v[:, 0] < 0, -0.32, 0.32), (v[:, 1] - 0.0) / 0.6) < 0.22
    rigid[eyes] *= 0.1

    ears_y = (v[234, 1] + v[454, 1]) / 2
    ears_z = (v[234, 2] + v[454, 2]) / 2
    # A virtual pivot well behind the ear: the real jaw rotates about the condyle *and* slides
    # forward, which together move the chin mostly down; one rotation about a point further
    # back reproduces that path.
    pivot = np.array([0.0, ears_y, ears_z + 0.6])
    return Regions(jaw, upper, lower, lips, mouth_area, rigid, center, half_width, pivot, near)


def named_bases(neutral: np.ndarray, regions: Regions | None = None) -> np.ndarray:
    """Displacement fields (n_controls, 478, 3) per unit control.

    Entry JAW is zero: the jaw is a rotation (plus ``FaceModel.jaw_comotion``)."""
    v = np.asarray(neutral, dtype=np.float64)[: topo.N_LANDMARKS]
    r = regions or compute_regions(v)
    n = topo.N_LANDMARKS
    rel_x = np.clip((v[:, 0] - r.mouth_center[0]) / r.mouth_half_width, -1.3, 1.3)
    bases = np.zeros((len(CONTROL_NAMES), n, 3))

    # mouth_width: corners out (+) / in (-), fading onto the cheeks.
    bases[1, :, 0] = 0.12 * rel_x * r.mouth_area
    # lip_pucker: lips gather to the centre and push forward.
    bases[2, :, 0] = -0.10 * rel_x * r.lips
    bases[2, :, 2] = -0.10 * r.lips * (1 - 0.5 * np.abs(np.clip(rel_x, -1, 1)))
    # upper_lip_raise / lower_lip_depress: the lip moves away from the other one.
    above_lips = np.clip(1 - np.maximum(0, _lip_line(v, v[:, 0]) - v[:, 1] - 0.05) / 0.35, 0, 1)
    bases[3, :, 1] = -0.08 * np.maximum(r.upper_lip, r.lips * (r.lower_lip < 1) * above_lips * (1 - r.jaw))
    below_lips = np.clip(1 - np.maximum(0, v[:, 1] - _lip_line(v, v[:, 0]) - 0.05) / 0.35, 0, 1)
    bases[4, :, 1] = 0.08 * np.maximum(r.lower_lip, r.lips * (r.upper_lip < 1) * below_lips * r.jaw)
    # lip_press: lips thin (outer contours roll in towards the meeting line) and press back.
    line = _lip_line(v, v[:, 0])
    thickness = np.abs(v[:, 1] - line)
    bases[5, :, 1] = -0.5 * np.sign(v[:, 1] - line) * np.minimum(thickness, 0.12) * r.lips
    bases[5, :, 2] = 0.03 * r.lips
    # smile: corners up and out.
    corners = v[[61, 291]]
    dc = np.min(np.linalg.norm(v[:, None, :2] - corners[None, :, :2], axis=2), axis=1)
    g = np.exp(-((dc / 0.22) ** 2))
    bases[6, :, 0] = 0.05 * np.sign(v[:, 0] - r.mouth_center[0]) * g
    bases[6, :, 1] = -0.08 * g
    return bases


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def jaw_angle(jaw_open: float) -> float:
    return np.deg2rad(JAW_MAX_DEG) * float(jaw_open)


@dataclass
class FaceModel:
    """A per-actor model: neutral identity + named controls + optional residual basis."""

    identity: np.ndarray  # (478, 3) neutral (closed-mouth) canonical shape
    residual_basis: np.ndarray = field(default_factory=lambda: np.zeros((0, topo.N_LANDMARKS, 3)))

    def __post_init__(self) -> None:
        self.identity = np.asarray(self.identity, dtype=np.float64)
        self.regions = compute_regions(self.identity)
        self.bases = named_bases(self.identity, self.regions)
        # The corners ride at half jaw weight; the co-motion fades out there too.
        self.jaw_comotion = UPPER_LIP_COMOTION * self.bases[3] * (1 - self.regions.near_corner)[:, None]

    @property
    def n_residual(self) -> int:
        return len(self.residual_basis)

    def blend(self, controls: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """Canonical landmarks before the jaw rotation."""
        v = self.identity + controls[JAW] * self.jaw_comotion
        v = v + np.tensordot(controls[1:], self.bases[1:], axes=1)
        if residual is not None and self.n_residual:
            v = v + np.tensordot(residual, self.residual_basis, axes=1)
        return v

    def jaw_skin(self, v: np.ndarray, jaw_open: float) -> np.ndarray:
        rel = v - self.regions.pivot
        rotated = rel @ _rot_x(jaw_angle(jaw_open)).T
        return v + self.regions.jaw[:, None] * (rotated - rel)

    def landmarks(self, controls: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """(478, 3) canonical landmark positions for one frame's expression."""
        return self.jaw_skin(self.blend(controls, residual), controls[JAW])

    def vertices(self, controls: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """All model vertices: landmarks followed by the mouth-interior vertices."""
        return with_interior(self.landmarks(controls, residual))


def with_interior(landmarks: np.ndarray) -> np.ndarray:
    """Append interior vertices, interpolated between the inner lips and pushed back (+z)."""
    alpha, cols = topo.interior_weights()
    up = landmarks[np.asarray(topo.UPPER_INNER_LIP)[cols]]
    lo = landmarks[np.asarray(topo.LOWER_INNER_LIP)[cols]]
    a = alpha[:, None, None]
    interior = (1 - a) * up[None] + a * lo[None]
    depth = INTERIOR_DEPTH * np.sin(np.pi * a) * np.sin(np.pi * cols / (len(topo.UPPER_INNER_LIP) - 1))[None, :, None]
    interior = interior + depth * np.array([0.0, 0.0, 1.0])
    return np.concatenate([landmarks, interior.reshape(-1, 3)])


@dataclass
class Pose:
    """Rigid head pose: image = scale * R @ canonical + t (pixels; z relative, scaled like x)."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    def apply(self, canonical: np.ndarray) -> np.ndarray:
        return self.scale * canonical @ self.rotation.T + self.translation
