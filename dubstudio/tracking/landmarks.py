"""Dense 478-point face landmarks from mediapipe FaceMesh (bundled models, works offline)."""

from __future__ import annotations

import os

import numpy as np

from dubstudio.tracking.topology import N_LANDMARKS

# mediapipe/TFLite log chatter goes to stderr before any Python logging is set up.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class LandmarkDetector:
    """Per-frame landmarks in pixels: x, y in the image, z relative depth scaled like x.

    ``video=True`` uses FaceMesh's tracking mode (the detector runs only when the face is
    lost), which is both faster and steadier on a shot. Call ``reset()`` at a cut.
    """

    def __init__(self, video: bool = True, min_confidence: float = 0.5) -> None:
        self.video = video
        self.min_confidence = min_confidence
        self._mesh = None

    def _open(self):
        import mediapipe as mp

        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not self.video,
            refine_landmarks=True,
            max_num_faces=1,
            min_detection_confidence=self.min_confidence,
            min_tracking_confidence=self.min_confidence,
        )

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) float32 landmarks, or None when no face is found."""
        if self._mesh is None:
            self._mesh = self._open()
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        if len(lm) != N_LANDMARKS:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float32)
        pts *= np.array([w, h, w], dtype=np.float32)
        return pts
