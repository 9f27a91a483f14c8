"""Opening a shot, Qt-free: project, video index, cached tracking, waveform (run in workers).

``open_shot`` is what the window runs in a background job when the user opens a video or a
project: it never decodes more than the first frame, so a long 1080p shot opens at once; the
waveform is computed by a second job afterwards (``load_waveform``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from dubstudio.shot.tracking import current_tracking
from dubstudio.core.jobs import Progress
from dubstudio.core.errors import ProjectError
from dubstudio.gui.model.mesh import MeshGeometry, warm_topology
from dubstudio.project.store import PROJECT_FILE, Project
from dubstudio.io.video import VideoReader
from dubstudio.core.paths import default_project_dir
from dubstudio.tracking.result import Tracking

WAVE_RATE = 16_000  # Hz, decoded for the waveform only
WAVE_BIN_S = 0.002  # one min/max pair per 2 ms: fine enough for any zoom of a timeline


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    n_frames: int
    codec: str
    duration_s: float
    has_audio: bool
    start_timecode: str | None = None  # the source timecode of frame 0 (None: the file has none)
    bit_depth: int = 8
    sar: Fraction = Fraction(1)  # pixel aspect ratio (anamorphic footage: > 1)
    variable_rate: bool = False  # frames missing from the timestamps: tracking refuses it (io.video)
    interlaced: bool = False

    @classmethod
    def of(cls, r: VideoReader) -> VideoInfo:
        from dubstudio.io.timecode import read_start_timecode

        return cls(r.path, r.width, r.height, r.fps, r.n_frames, r.codec, r.duration_s, r.has_audio,
                   read_start_timecode(r.path), int(getattr(r, "bit_depth", 8)), Fraction(getattr(r, "sar", 1)),
                   bool(getattr(r, "irregular", None)), bool(getattr(r, "interlaced", False)))

    def describe(self) -> str:
        fps = float(self.fps)
        rate = f"{fps:.3f}".rstrip("0").rstrip(".")
        return (
            f"{self.width}x{self.height}, {rate} fps, {self.n_frames} frames "
            f"({self.duration_s:.2f} s), {self.codec}{f' {self.bit_depth}-bit' if self.bit_depth > 8 else ''}"
            f"{', audio' if self.has_audio else ', no audio'}"
            + (f", TC {self.start_timecode}" if self.start_timecode else "")
            + (f", pixels {self.sar.numerator}:{self.sar.denominator}" if self.sar != 1 else "")
            + (", interlaced" if self.interlaced else "")
            + (" · VARIABLE FRAME RATE: make a constant-rate copy before tracking it" if self.variable_rate else "")
        )


@dataclass
class ShotData:
    """Result of ``open_shot``. ``reader`` is handed over to the viewer's decode thread."""

    project: Project
    info: VideoInfo
    reader: VideoReader


@dataclass
class TrackingData:
    """Result of ``load_tracking`` / ``track_shot``: what the session needs to edit a shot."""

    tracking: Tracking | None
    geometry: MeshGeometry | None
    metrics: dict
    note: str  # why there is no tracking, or ''


@dataclass(frozen=True)
class Waveform:
    """Min/max envelope of the shot's audio in ``bin_s`` bins (mono, [-1, 1])."""

    lo: np.ndarray
    hi: np.ndarray
    bin_s: float

    def decimated(self, fps: float, x0: float, x1: float, max_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Envelope bins covering frames [x0, x1] reduced to at most ~``max_bins``:
        ``(x_frames, lo, hi)`` with x at each bin's start, in frame units."""
        n = len(self.lo)
        frames_per_bin = self.bin_s * fps
        a = max(0, int(np.floor(x0 / frames_per_bin)))
        b = min(n, int(np.ceil(x1 / frames_per_bin)) + 1)
        if b <= a:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        k = max(1, int(np.ceil((b - a) / max(1, max_bins))))
        a -= a % k  # stable bin edges while panning: no shimmer
        m = (b - a) // k * k
        lo = self.lo[a : a + m].reshape(-1, k).min(axis=1)
        hi = self.hi[a : a + m].reshape(-1, k).max(axis=1)
        x = (a + np.arange(len(lo)) * k) * frames_per_bin
        return x, lo, hi


def is_project_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / PROJECT_FILE).is_file()


def open_shot(path: str | Path, progress: Progress | None = None) -> ShotData:
    """Open a project folder, or a video (creating/opening its default project in the projects
    folder: ``core.paths.default_project_dir``, the rule the CLI and batch follow).

    Fast on purpose (project file, packet index, first frame): tracking is loaded afterwards
    by ``load_tracking`` so the frame is on screen first."""
    progress = progress or Progress()
    path = Path(path).expanduser()
    progress.stage("project")
    if path.is_dir():
        project = Project.open(path)
    elif path.is_file():
        project = Project.create(default_project_dir(path), path)
    else:
        raise ProjectError(f"{path} does not exist; choose a video file or a project folder.")
    video = project.check_video()
    progress.update(1, 2)
    progress.stage("video")
    reader = VideoReader(video, cache_size=1)  # keeps the first frame it decoded while opening
    progress.update(2, 2)
    return ShotData(project, VideoInfo.of(reader), reader)


def load_tracking(project: Project, n_frames: int, progress: Progress | None = None) -> TrackingData:
    """The project's current tracking with its mesh geometry, or why there is none. Also warms
    the mesh topology, so that a tracking result computed later draws without a hiccup."""
    progress = progress or Progress()
    progress.stage("tracking")
    video = project.check_video()
    tracking, metrics, note = current_tracking(project, video)
    if tracking is not None and tracking.n_frames != n_frames:
        tracking, note = None, "the saved tracking does not match the video; track it again"
    if tracking is None:
        warm_topology()
        return TrackingData(None, None, {}, note)
    return TrackingData(tracking, MeshGeometry.build(tracking), metrics, "")


def track_shot(project: Project, progress: Progress, face: str | None = None) -> TrackingData:
    """The tracking job as the editor runs it: ``app.track.track_job`` (cached by the project)
    and the mesh geometry the viewer draws."""
    from dubstudio.app.track import TrackRequest, track_job

    r = track_job(TrackRequest(project.check_video(), project.root, face=face), progress)
    progress.stage("mesh")
    return TrackingData(r.tracking, MeshGeometry.build(r.tracking), r.metrics, "")


def load_waveform(video: Path, progress: Progress | None = None) -> Waveform | None:
    """The audio envelope of ``video``, or None when it has no audio track."""
    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import open_container

    progress = progress or Progress()
    progress.stage("waveform")
    with open_container(Path(video), "video file") as c:
        if not c.streams.audio:
            return None
    audio = load_audio(video, sr=WAVE_RATE, mono=True)
    progress.update(1, 2)
    k = int(round(WAVE_RATE * WAVE_BIN_S))
    n = len(audio) // k * k
    if n == 0:
        return Waveform(np.zeros(1, np.float32), np.zeros(1, np.float32), WAVE_BIN_S)
    blocks = audio[:n].reshape(-1, k)
    progress.update(2, 2)
    return Waveform(blocks.min(axis=1), blocks.max(axis=1), WAVE_BIN_S)
