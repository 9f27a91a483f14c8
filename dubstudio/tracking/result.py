"""The tracked shot: per-frame landmarks, pose, expression, crops; saved as one .npz."""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import atomic_save_npz
from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.tracking.face_model import FaceModel, Pose, with_interior

FORMAT_VERSION = 1


@dataclass
class Tracking:
    fps: Fraction
    width: int
    height: int
    landmarks: np.ndarray  # (N, 478, 3) float32 detected, NaN where no face
    has_face: np.ndarray  # (N,) bool
    identity: np.ndarray  # (478, 3)
    residual_basis: np.ndarray  # (K, 478, 3)
    residual_var: np.ndarray  # (K,)
    scale: np.ndarray  # (N,)
    rotation: np.ndarray  # (N, 3, 3)
    translation: np.ndarray  # (N, 3)
    controls: np.ndarray  # (N, n_controls) named controls, smoothed
    residual: np.ndarray  # (N, K)
    crop: np.ndarray  # (N, 3) centre x, centre y, side (pixels); interpolated over no-face gaps

    @property
    def n_frames(self) -> int:
        return len(self.has_face)

    def model(self) -> FaceModel:
        return FaceModel(self.identity, self.residual_basis)

    def pose(self, i: int) -> Pose:
        return Pose(float(self.scale[i]), self.rotation[i], self.translation[i])

    def landmarks_image(self, i: int, controls: np.ndarray | None = None, model: FaceModel | None = None) -> np.ndarray:
        """(478, 3) model landmarks of frame i in image pixels (tracked or given controls)."""
        m = model or self.model()
        c = self.controls[i] if controls is None else controls
        return self.pose(i).apply(m.landmarks(c, self.residual[i]))

    def vertices_image(self, i: int, controls: np.ndarray | None = None, model: FaceModel | None = None) -> np.ndarray:
        """All model vertices (with the mouth interior) of frame i in image pixels."""
        return with_interior_posed(self, i, controls, model)

    def save(self, path: str | Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("fps", "width", "height")}
        atomic_save_npz(
            path,
            format_version=np.array(FORMAT_VERSION),
            fps=np.array([self.fps.numerator, self.fps.denominator]),
            size=np.array([self.width, self.height]),
            control_names=np.array(CONTROL_NAMES),
            **arrays,
        )

    @classmethod
    def load(cls, path: str | Path) -> "Tracking":
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format_version"]) != FORMAT_VERSION:
                    raise ProjectError(f"{path} is a tracking file of another format; track the shot again.")
                kw = {f.name: z[f.name] for f in fields(cls) if f.name not in ("fps", "width", "height")}
                fps = Fraction(int(z["fps"][0]), int(z["fps"][1]))
                w, h = (int(x) for x in z["size"])
        except (OSError, KeyError, ValueError) as e:
            raise ProjectError(f"cannot read tracking {path}: {e}; track the shot again.") from e
        return cls(fps=fps, width=w, height=h, **kw)


def with_interior_posed(t: Tracking, i: int, controls: np.ndarray | None, model: FaceModel | None) -> np.ndarray:
    m = model or t.model()
    c = t.controls[i] if controls is None else controls
    return t.pose(i).apply(with_interior(m.landmarks(c, t.residual[i])))
