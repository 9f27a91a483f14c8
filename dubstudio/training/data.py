"""Training data for the neural renderer: per-frame crops, UV/region buffers and audio windows.

``FrameCache`` holds, for a list of frames of one tracked project and one crop resolution R,
everything a training step needs, as device-independent numpy arrays:

- ``crops``   (N, R, R, 3) uint8 RGB face crops (``extract_crop`` with the tracked box),
- ``uv``      (N, R, R, 2) float16 atlas UV of the tracked mesh (-1 on background),
- ``regions`` (N, R, R) uint8 region masks (0 none, 1 lower face, 2 mouth),
- ``mel``     (N, 80, 16) float16 log-mel window centred on each frame,
- ``has_face`` (N,) bool.

It is built once and cached in the project (``cache/frames_R/<key>/chunk_*.npz``, ChunkStore, so a
killed build resumes at the first missing chunk), keyed by the tracking stage key + R + the frame
list + a format version. ``WindowSampler`` draws windows of T consecutive frames (clamped at the
ends of the cached range) plus a random reference frame of the same actor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dubstudio.shot.tracking import tracking_of
from dubstudio.core.jobs import Progress
from dubstudio.nn.audio_features import mel_windows_for_video
from dubstudio.core.errors import ProjectError
from dubstudio.project.store import ChunkStore, Project
from dubstudio.tracking.result import Tracking

log = logging.getLogger(__name__)

FRAMES_VERSION = 1
CHUNK_FRAMES = 50


# --------------------------------------------------------------------------------- project helpers


@dataclass
class FrameCache:
    indices: np.ndarray  # (N,) int64 frame indices, in the order given
    crops: np.ndarray  # (N, R, R, 3) uint8
    uv: np.ndarray  # (N, R, R, 2) float16
    regions: np.ndarray  # (N, R, R) uint8
    mel: np.ndarray  # (N, 80, 16) float16
    has_face: np.ndarray  # (N,) bool
    resolution: int
    key: str

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def n_bytes(self) -> int:
        return sum(a.nbytes for a in (self.crops, self.uv, self.regions, self.mel))

    @classmethod
    def build(
        cls,
        project: Project,
        indices,
        resolution: int = 128,
        progress: Progress | None = None,
        tracking: Tracking | None = None,
    ) -> FrameCache:
        """Load (or compute once and cache in the project) the frames ``indices`` at ``resolution``."""
        progress = progress or Progress()
        tr, track_key = tracking_of(project)
        tracking = tracking or tr
        idx = np.asarray([int(i) for i in np.atleast_1d(indices)], np.int64)
        if len(idx) == 0:
            raise ProjectError("no frames selected for training")
        if idx.min() < 0 or idx.max() >= tracking.n_frames:
            raise ProjectError(
                f"frames {int(idx.min())}..{int(idx.max())} are outside this {tracking.n_frames}-frame shot"
            )
        key = project.stage_key(
            "frames",
            {"tracking": track_key},
            {"version": FRAMES_VERSION, "resolution": int(resolution), "indices": idx.tolist(), "chunk": CHUNK_FRAMES},
        )
        store = ChunkStore(project.cache_dir(f"frames_{int(resolution)}") / key[:16], key)
        n_chunks = (len(idx) + CHUNK_FRAMES - 1) // CHUNK_FRAMES
        missing = store.missing(n_chunks)
        if missing:
            _fill_chunks(project, tracking, idx, int(resolution), store, missing, progress)
        parts = [store.load(c) for c in range(n_chunks)]
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return cls(
            indices=idx, crops=cat["crops"], uv=cat["uv"], regions=cat["regions"], mel=cat["mel"],
            has_face=cat["has_face"].astype(bool), resolution=int(resolution), key=key,
        )

    def position(self, frame: int) -> int:
        """Position in this cache of frame index ``frame`` (KeyError if absent)."""
        hits = np.nonzero(self.indices == int(frame))[0]
        if not len(hits):
            raise KeyError(f"frame {frame} is not in this cache")
        return int(hits[0])


def _fill_chunks(project, tracking, idx, resolution, store, missing, progress) -> None:
    from dubstudio.io.video import VideoReader
    from dubstudio.rendering.crop_io import extract_crop
    from dubstudio.rendering.rasterizer import rasterize_frames

    video = project.check_video()
    mel_all = mel_windows_for_video(video, tracking.n_frames, tracking.fps)
    model = tracking.model()
    progress.stage("frames")
    total = len(idx)
    done = total - sum(len(idx[c * CHUNK_FRAMES : (c + 1) * CHUNK_FRAMES]) for c in missing)
    with VideoReader(video) as reader:
        if reader.n_frames != tracking.n_frames:
            raise ProjectError(
                f"the video has {reader.n_frames} frames but the tracking {tracking.n_frames}; track the shot again."
            )
        for c in missing:
            sel = idx[c * CHUNK_FRAMES : (c + 1) * CHUNK_FRAMES]
            crops = np.empty((len(sel), resolution, resolution, 3), np.uint8)
            for k, i in enumerate(sel):
                crops[k] = extract_crop(reader.frame(int(i)), tracking.crop[int(i)], resolution)
                done += 1
                progress.update(done, total)
            fr = rasterize_frames(tracking, sel, resolution, model=model)
            store.save(
                c,
                crops=crops,
                uv=fr.uv.numpy().astype(np.float16),
                regions=fr.regions.numpy().astype(np.uint8),
                mel=mel_all[sel].astype(np.float16),
                has_face=tracking.has_face[sel].astype(bool),
            )


# ---------------------------------------------------------------------------------------- windows


@dataclass
class WindowBatch:
    """Numpy batch of B windows of T frames (device-independent; the trainer moves it)."""

    crops: np.ndarray  # (B, T, R, R, 3) uint8
    uv: np.ndarray  # (B, T, R, R, 2) float16
    regions: np.ndarray  # (B, T, R, R) uint8
    ref: np.ndarray  # (B, R, R, 3) uint8
    mel: np.ndarray  # (B, 80, 16) float16 (the centre frame's window)
    identity: list[str]  # (B,) which texture each window uses
    frames: np.ndarray  # (B, T) frame indices


def window_positions(cache: FrameCache, p: int, window: int) -> list[int]:
    """Positions in ``cache`` of the T frames centred on position ``p``: frame indices i-h..i+h,
    each replaced by the nearest cached frame towards the centre when absent (clamp at ends)."""
    h = window // 2
    centre = int(cache.indices[p])
    lookup = {int(f): k for k, f in enumerate(cache.indices)}
    out = []
    for d in range(-h, window - h):
        j = centre + d
        while j not in lookup:
            j += 1 if d < 0 else -1
        out.append(lookup[j])
    return out


class WindowSampler:
    """Random windows (centre frames with a face) and reference frames from named FrameCaches."""

    def __init__(self, caches: dict[str, FrameCache], window: int = 3) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be odd and >= 1, got {window}")
        self.caches = caches
        self.window = window
        self.centres: dict[str, np.ndarray] = {}
        self._windows: dict[str, list[list[int]]] = {}
        for name, c in caches.items():
            pos = np.nonzero(c.has_face)[0]
            if len(pos) == 0:
                raise ProjectError(f"'{name}': none of the selected frames has a tracked face; pick another range.")
            self.centres[name] = pos
            self._windows[name] = [window_positions(c, p, window) if c.has_face[p] else [] for p in range(len(c))]

    @property
    def names(self) -> list[str]:
        return list(self.caches)

    def reference_position(self, name: str, p: int, rng: np.random.Generator) -> int:
        """A random face frame of the same actor outside the window of ``p`` (if there is one)."""
        cands = self.centres[name]
        far = cands[np.abs(self.caches[name].indices[cands] - self.caches[name].indices[p]) > self.window // 2]
        pool = far if len(far) else cands
        return int(pool[rng.integers(len(pool))])

    def sample(self, rng: np.random.Generator, names: list[str]) -> WindowBatch:
        """One window per entry of ``names`` (the identity of each batch item)."""
        crops, uv, regions, ref, mel, frames = [], [], [], [], [], []
        for name in names:
            c = self.caches[name]
            p = int(self.centres[name][rng.integers(len(self.centres[name]))])
            w = self._windows[name][p]
            r = self.reference_position(name, p, rng)
            crops.append(c.crops[w])
            uv.append(c.uv[w])
            regions.append(c.regions[w])
            ref.append(c.crops[r])
            mel.append(c.mel[p])
            frames.append(c.indices[w])
        return WindowBatch(
            crops=np.stack(crops), uv=np.stack(uv), regions=np.stack(regions), ref=np.stack(ref),
            mel=np.stack(mel), identity=list(names), frames=np.stack(frames),
        )

    def fixed(self, name: str, positions: list[int], ref_position: int) -> WindowBatch:
        """Deterministic windows centred on ``positions`` with one reference (validation, tests)."""
        c = self.caches[name]
        ws = [self._windows[name][p] or window_positions(c, p, self.window) for p in positions]
        return WindowBatch(
            crops=np.stack([c.crops[w] for w in ws]), uv=np.stack([c.uv[w] for w in ws]),
            regions=np.stack([c.regions[w] for w in ws]), ref=np.stack([c.crops[ref_position]] * len(ws)),
            mel=np.stack([c.mel[p] for p in positions]), identity=[name] * len(ws),
            frames=np.stack([c.indices[w] for w in ws]),
        )


def neutral_reference(cache: FrameCache, tracking: Tracking) -> int:
    """Position of the face frame whose tracked controls are closest to the median: a calm, typical
    frame used as the fixed reference at render time."""
    pos = np.nonzero(cache.has_face)[0]
    ctrl = tracking.controls[cache.indices[pos]]
    med = np.median(ctrl, axis=0)
    return int(pos[np.argmin(np.abs(ctrl - med).sum(axis=1))])
