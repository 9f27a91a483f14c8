"""Dense 478-point face landmarks from mediapipe FaceMesh (bundled models, works offline)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

import numpy as np

from dubstudio.tracking.topology import N_LANDMARKS

# mediapipe/TFLite log chatter goes to stderr before any Python logging is set up.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# What mediapipe 0.10's native code prints while a graph starts (absl logging ignores the two
# variables above): dropped, so that an error after tracking is still one line. Anything else
# printed meanwhile is passed on.
CHATTER = re.compile(rb"^(W0000 |I0000 |E0000 .*(feedback|NORM_RECT)|INFO: Created TensorFlow Lite|"
                     rb"WARNING: All log messages before absl::InitializeLog)")
_FD_LOCK = threading.Lock()


@contextlib.contextmanager
def native_chatter_dropped() -> Iterator[None]:
    """While a mediapipe graph starts, file descriptor 2 goes to a scratch file; the lines that
    are not mediapipe's start-up chatter are written back to stderr afterwards."""
    with _FD_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no real stderr (an embedding host): nothing to filter
            yield
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                kept = b"".join(line for line in tmp.read().splitlines(keepends=True) if not CHATTER.match(line))
                if kept:
                    os.write(2, kept)


class LandmarkDetector:
    """Per-frame landmarks in pixels: x, y in the image, z relative depth scaled like x.

    ``video=True`` uses FaceMesh's tracking mode (the detector runs only when the face is
    lost), which is both faster and steadier on a shot. Call ``reset()`` at a cut.
    """

    def __init__(self, video: bool = True, min_confidence: float = 0.5, max_faces: int = 1) -> None:
        self.video = video
        self.min_confidence = min_confidence
        self.max_faces = int(max_faces)
        self._mesh = None

    def _open(self):
        import mediapipe as mp

        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not self.video,
            refine_landmarks=True,
            max_num_faces=self.max_faces,
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
        """(478, 3) float32 landmarks of the (first) face, or None when no face is found."""
        faces = self.detect_all(rgb)
        return faces[0] if faces else None

    def detect_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """(478, 3) float32 landmarks of each face found (up to ``max_faces``), in pixels."""
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        if self._mesh is None:  # the graph starts: its native log lines are dropped
            with native_chatter_dropped():
                self._mesh = self._open()
                result = self._mesh.process(rgb)
        else:
            result = self._mesh.process(rgb)
        out = []
        for face in result.multi_face_landmarks or []:
            lm = face.landmark
            if len(lm) != N_LANDMARKS:
                continue
            pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float32)
            pts *= np.array([w, h, w], dtype=np.float32)
            if not any(_same_face(pts, q) for q in out):  # the multi-face mesh can find one face twice
                out.append(pts)
        return out


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Two detections of one face: centres closer than a third of the face's width."""
    width = float(np.ptp(a[:, 0]))
    return float(np.linalg.norm(a[:, :2].mean(axis=0) - b[:, :2].mean(axis=0))) < width / 3
