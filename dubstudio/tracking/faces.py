"""Shots with more than one face: how many there are, which one to dub, and following that person.

By default the tracker follows the one face mediapipe's FaceMesh picks (the most prominent, and
the same person throughout), as before; ``count_faces`` looks at a few frames with a multi-face
mesh so a shot with several faces says so. A face is chosen with ``--face`` (or a click in the
editor): ``1`` is the second face from the left, ``640,360`` the face nearest to that pixel,
both taken on the first frame that shows them all. The chosen person is then followed by who
they are, not by where they stand: on every frame the faces are matched to everyone seen on the
first one by shape (eyes, brows, nose and outline in 3D, after the head's pose is taken out; the
mouth and jaw left out, since they move), jointly, and position only breaks near ties. So two
people who trade places at a cut are not swapped. A frame where the chosen face is not found has no face (it
passes through untouched).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dubstudio.core.errors import DubStudioError

MAX_FACES = 4
# points that keep their shape while a person speaks: the outline above the jaw, brows, eyes,
# nose (mediapipe FaceMesh indices)
STABLE = np.array(sorted({
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 93, 234, 127, 162, 21, 54, 103, 67, 109,  # upper outline
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows
    33, 133, 159, 145, 362, 263, 386, 374, 468, 473,  # eyes
    1, 2, 4, 5, 6, 168, 195, 197, 98, 327, 129, 358,  # nose
}))
# a face further than this from a person's shape (after pose) is not that person. The gap alone
# does not tell two people apart (benchmarks/faces_bench.py: one person across 40 frames up to 0.08,
# two people as close as 0.04); the joint assignment over everyone on the choice frame does (97.5-100 %
# of frames on the right person over six pairs of clips). This only drops a face that fits no one.
MAX_SHAPE_GAP = 0.12
POSITION_WEIGHT = 0.01


@dataclass(frozen=True)
class FaceChoice:
    index: int | None = None  # faces ordered left to right
    point: tuple[float, float] | None = None  # pixel: the face nearest to it
    frame: int | None = None  # on this frame (None: the first frame that shows enough faces)

    def describe(self) -> str:
        what = f"face {self.index} from the left" if self.index is not None else f"the face at {self.point[0]:g},{self.point[1]:g}"
        return what + (f" on frame {self.frame}" if self.frame is not None else "")


def parse_face(spec: str | None) -> FaceChoice | None:
    """``--face``: an index (0 = the leftmost face) or a pixel position ``X,Y``, optionally on a
    frame (``X,Y@120``: where the editor's click was); None or "auto": automatic."""
    if spec is None or str(spec).strip() in ("", "auto"):
        return None
    text = str(spec).strip()
    try:
        what, _, at = text.partition("@")
        frame = int(at) if at else None
        if frame is not None and frame < 0:
            raise ValueError
        if "," in what:
            x, y = (float(v) for v in what.split(","))
            if not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError
            return FaceChoice(point=(x, y), frame=frame)
        i = int(what)
        if not 0 <= i < MAX_FACES:
            raise ValueError
        return FaceChoice(index=i, frame=frame)
    except ValueError:
        raise DubStudioError(f"--face {text!r}: give a face number from the left (0-{MAX_FACES - 1}) or a pixel "
                             f"position X,Y on the face, optionally @FRAME.") from None


def select_face(faces: list[list[np.ndarray]], choice: FaceChoice) -> tuple[np.ndarray, int]:
    """(N, 478, 3) landmarks of the chosen person on each frame (NaN where they are not found), and
    the frame the choice was made on. ``faces``: every face of every frame. The person is followed
    forwards and backwards from that frame."""
    n = len(faces)
    need = (choice.index or 0) + 1
    if choice.frame is not None:
        if not 0 <= choice.frame < n:
            raise DubStudioError(f"--face ...@{choice.frame}: the shot has frames 0-{n - 1}.")
        start = choice.frame
        if len(faces[start]) < need:
            raise DubStudioError(f"frame {start} shows {len(faces[start])} face(s); choose a face that is on it.")
    else:
        start = next((i for i, fs in enumerate(faces) if len(fs) >= need), None)
        if start is None:
            most = max((len(fs) for fs in faces), default=0)
            raise DubStudioError(f"no frame shows {need} faces (at most {most}); choose a face number below {most}.")
    out = np.full((n, len(faces[start][0]), 3), np.nan, np.float32)
    for order in (range(start, n), range(start, -1, -1)):
        follower = FaceFollower(choice)
        for i in order:
            pts = follower.pick(faces[i])
            if pts is not None:
                out[i] = pts
    return out, start


def signature(lms: np.ndarray) -> np.ndarray:
    """The stable points of one face in 3D (mediapipe's depth), centred and scaled to unit size;
    ``shape_gap`` removes the head's rotation."""
    p = np.asarray(lms, np.float64)[STABLE, :3]
    p = p - p.mean(axis=0)
    return p / (np.sqrt((p ** 2).sum(axis=1).mean()) + 1e-9)


def shape_gap(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance of two signatures after the rotation that best aligns them (Procrustes):
    what is left is the shape of the face, not the pose."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.sqrt(((a @ r - b) ** 2).sum(axis=1).mean()))


def centre(lms: np.ndarray) -> np.ndarray:
    return np.asarray(lms, np.float64)[:, :2].mean(axis=0)


def size(lms: np.ndarray) -> float:
    p = np.asarray(lms, np.float64)[:, :2]
    return float(np.linalg.norm(p.max(axis=0) - p.min(axis=0)))


class _Person:
    def __init__(self, lms: np.ndarray) -> None:
        self.ref = signature(lms)
        self.n = 1
        self.last = centre(lms)
        self.size = size(lms)

    def cost(self, lms: np.ndarray) -> float:
        """Shape first; a jump across the frame adds a little (position only breaks near ties)."""
        move = float(np.linalg.norm(centre(lms) - self.last)) / max(self.size, 1.0)
        return shape_gap(signature(lms), self.ref) + POSITION_WEIGHT * min(move, 2.0)

    def add(self, lms: np.ndarray) -> None:
        self.ref = (self.ref * self.n + signature(lms)) / (self.n + 1)
        self.n = min(self.n + 1, 50)
        self.last, self.size = centre(lms), size(lms)


class FaceFollower:
    """Picks the chosen person among each frame's faces (frames in order).

    Everyone on the frame where the choice is made becomes a known person; on every later frame
    the faces are matched to the known people jointly (the assignment with the least total shape
    difference), so a person the signature tells apart well helps place the other one. The chosen
    person's face is the one matched to them; none when they are not on the frame."""

    def __init__(self, choice: FaceChoice) -> None:
        self.choice = choice
        self.people: list[_Person] = []
        self.chosen = -1

    @property
    def ref(self) -> np.ndarray | None:  # started (a resumed run re-feeds its last chunk until then)
        return self.people[self.chosen].ref if self.people else None

    def pick(self, faces: list[np.ndarray]) -> np.ndarray | None:
        if not faces:
            return None
        if not self.people:
            return self._start(faces)
        assigned = self._assign(faces)
        for person, face in assigned.items():
            self.people[person].add(face)
        return assigned.get(self.chosen)

    def _start(self, faces: list[np.ndarray]) -> np.ndarray | None:
        c = self.choice
        ordered = sorted(faces, key=lambda f: centre(f)[0])
        if c.index is not None:
            if len(ordered) <= c.index:
                return None  # wait for a frame that shows that many faces
            pick = c.index
        else:
            pt = np.asarray(c.point, np.float64)
            pick = int(np.argmin([np.linalg.norm(centre(f) - pt) for f in ordered]))
        self.people = [_Person(f) for f in ordered]
        self.chosen = pick
        return ordered[pick]

    def _assign(self, faces: list[np.ndarray]) -> dict[int, np.ndarray]:
        """person -> face, minimising the total cost over every one-to-one assignment (at most
        MAX_FACES each way); a match much worse than a same-person one is left out."""
        cost = np.array([[p.cost(f) for f in faces] for p in self.people])
        best, best_total = {}, np.inf
        n_people, n_faces = cost.shape
        k = min(n_people, n_faces)
        for people in itertools.permutations(range(n_people), k):
            for faces_idx in itertools.permutations(range(n_faces), k):
                total = sum(cost[p, f] for p, f in zip(people, faces_idx, strict=True))
                if total < best_total:
                    best_total, best = total, dict(zip(people, faces_idx, strict=True))
        return {p: faces[f] for p, f in best.items() if cost[p, f] <= MAX_SHAPE_GAP}


def count_faces(video: Path, samples: int = 8, min_confidence: float = 0.5, first: int = 0, stop: int | None = None) -> int:
    """The most faces seen on ``samples`` frames spread over the shot, or over its frames
    ``first:stop`` (a clip of a longer source), with a multi-face mesh."""
    from dubstudio.io.video import VideoReader
    from dubstudio.tracking.landmarks import LandmarkDetector

    with VideoReader(video) as reader:
        stop = reader.n_frames if stop is None else min(stop, reader.n_frames)
        first = max(0, min(first, stop - 1))
        n = stop - first
        idx = first + np.unique(np.linspace(0, n - 1, min(samples, n)).astype(int))
        most = 0
        with LandmarkDetector(video=False, min_confidence=min_confidence, max_faces=MAX_FACES) as det:
            for i in idx:
                most = max(most, len(det.detect_all(reader.frame(int(i)))))
    return most


__all__ = ["FaceChoice", "FaceFollower", "MAX_FACES", "count_faces", "parse_face", "signature"]
