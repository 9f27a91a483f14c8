"""The tracking job: video -> landmarks -> identity -> shared basis -> per-frame fits -> crops.

Landmark detection is the only slow stage; it runs in chunks saved to the project cache, so a
killed run resumes at the first missing chunk. Each chunk starts a fresh FaceMesh tracker, so
a resumed run gives exactly the same landmarks as an uninterrupted one. Decoding runs in a
thread beside detection (PyAV and mediapipe both release the GIL).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import MediaError, NoFaceError
from dubstudio.project.store import ChunkStore, Project
from dubstudio.io.video import VideoReader, describe_irregular
from dubstudio.tracking import fitting, smoothing
from dubstudio.tracking import topology as topo
from dubstudio.tracking.crops import raw_crop_boxes, stabilise_crops
from dubstudio.core.controls import CONTROL_NAMES, JAW
from dubstudio.tracking.face_model import FaceModel
from dubstudio.tracking.faces import MAX_FACES, count_faces, parse_face, select_face
from dubstudio.tracking.landmarks import LandmarkDetector
from dubstudio.tracking.result import Tracking
from dubstudio.tracking.template import load_template

TRACK_VERSION = 1  # bump when the algorithm changes: cached results are then recomputed
LANDMARK_VERSION = 1


@dataclass(frozen=True)
class TrackSettings:
    chunk_frames: int = 250
    min_confidence: float = 0.5
    identity_samples: int = 40
    shared_samples: int = 150
    fit_iterations: int = 2
    mouth_smooth_frames: int = 3  # Savitzky-Golay window on mouth controls (3 = off-ish)
    pose_smooth_frames: int = 7
    crop_margin: float = 0.12
    crop_centre_smooth_s: float = 0.25
    crop_size_smooth_s: float = 1.0
    face: str | None = None  # which face to track when several show (tracking.faces.parse_face); None: automatic


def _decode_thread(reader: VideoReader, start: int, stop: int, out: queue.Queue, stop_flag: threading.Event) -> None:
    try:
        for i, rgb in reader.iter_frames(start, stop):
            if stop_flag.is_set():
                break
            out.put((i, rgb))
        out.put(None)
    except BaseException as e:  # handed to the consumer, which re-raises it
        out.put(e)


def _unsqueeze(rgb: np.ndarray, sar: float) -> np.ndarray:
    """An anamorphic frame resampled to square pixels (its displayed proportions)."""
    import cv2

    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(w * sar)), h), interpolation=cv2.INTER_LINEAR if sar > 1 else cv2.INTER_AREA)


def detect_landmarks(video: Path, store: ChunkStore, settings: TrackSettings, progress: Progress, faces: int = 1) -> np.ndarray:
    """(N, 478, 3) float32 landmarks, NaN where no face; resumable by chunk. With ``faces`` > 1:
    (N, faces, 478, 3), every face found on each frame (NaN-padded).

    Anamorphic footage (pixel aspect ``sar`` != 1) is unsqueezed for the detector, which expects
    faces in their true proportions (a 2x squeeze lost a face on 11 of 30 frames), and the points
    come back in stored pixels: x and depth divided by ``sar``, a scaling a turn of the head
    (yaw) commutes with, so the face model's fit absorbs it into the actor's shape."""
    with VideoReader(video) as reader:
        n = reader.n_frames
        sar = float(reader.sar)
        n_chunks = (n + settings.chunk_frames - 1) // settings.chunk_frames
        done_frames = sum(min(settings.chunk_frames, n - c * settings.chunk_frames) for c in range(n_chunks) if store.has(c))
        progress.stage("landmarks")
        for c in store.missing(n_chunks):
            a, b = c * settings.chunk_frames, min(n, (c + 1) * settings.chunk_frames)
            lms = np.full((b - a, faces, topo.N_LANDMARKS, 3), np.nan, np.float32)
            q: queue.Queue = queue.Queue(maxsize=8)
            flag = threading.Event()
            th = threading.Thread(target=_decode_thread, args=(reader, a, b, q, flag), daemon=True)
            th.start()
            try:
                with LandmarkDetector(video=True, min_confidence=settings.min_confidence, max_faces=faces) as det:
                    while True:
                        item = q.get()
                        if item is None:
                            break
                        if isinstance(item, BaseException):
                            raise item
                        i, rgb = item
                        for k, pts in enumerate(det.detect_all(rgb if sar == 1.0 else _unsqueeze(rgb, sar))):
                            if sar != 1.0:
                                pts[:, 0] /= sar
                                pts[:, 2] /= sar
                            lms[i - a, k] = pts
                        done_frames += 1
                        progress.update(done_frames, n)
            finally:
                flag.set()
                while th.is_alive():  # unblock a producer waiting on a full queue
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        th.join(0.05)
            store.save(c, landmarks=lms)
        out = np.concatenate([store.load(c)["landmarks"] for c in range(n_chunks)])
        return out[:, 0] if faces == 1 else out


def fit_shot(landmarks: np.ndarray, fps: float, settings: TrackSettings, progress: Progress) -> dict:
    """Stages 1-3 of the fit plus smoothing and crops; returns Tracking fields."""
    n = len(landmarks)
    has_face = ~np.isnan(landmarks[:, 0, 0])
    face_idx = np.flatnonzero(has_face)
    if len(face_idx) == 0:
        raise NoFaceError("no face was found in any frame; check that the shot shows a face to camera.")
    lms = landmarks.astype(np.float64)

    progress.stage("identity")
    pick = face_idx[np.linspace(0, len(face_idx) - 1, min(settings.identity_samples, len(face_idx))).astype(int)]
    identity = fitting.solve_identity([lms[i] for i in pick], load_template().vertices)

    progress.stage("shared")
    pick = face_idx[np.linspace(0, len(face_idx) - 1, min(settings.shared_samples, len(face_idx))).astype(int)]
    basis, var = fitting.solve_residual_basis(FaceModel(identity), [lms[i] for i in pick])
    model = FaceModel(identity, basis)
    fitter = fitting.Fitter(model, var)

    progress.stage("fit")
    k = model.n_residual
    scale = np.ones(n)
    rotation = np.tile(np.eye(3), (n, 1, 1))
    translation = np.zeros((n, 3))
    controls = np.zeros((n, len(CONTROL_NAMES)))
    residual = np.zeros((n, k))
    prev = None
    for j, i in enumerate(face_idx):
        if prev is not None and i > 0 and not has_face[i - 1]:
            prev = None  # after a gap the face may be anywhere: no warm start
        prev = fitter.fit(lms[i], prev, iters=settings.fit_iterations)
        scale[i], rotation[i], translation[i] = prev.pose.scale, prev.pose.rotation, prev.pose.translation
        controls[i], residual[i] = prev.controls, prev.residual
        if j % 25 == 0:
            progress.update(j + 1, len(face_idx))

    progress.stage("smooth")
    controls = smoothing.savgol(controls, has_face, settings.mouth_smooth_frames)
    residual = smoothing.savgol(residual, has_face, settings.mouth_smooth_frames)
    scale = smoothing.savgol(scale, has_face, settings.pose_smooth_frames)
    translation = smoothing.savgol(translation, has_face, settings.pose_smooth_frames)
    rotation = smoothing.smooth_rotations(rotation, has_face, settings.pose_smooth_frames)

    progress.stage("crops")
    from dubstudio.tracking.face_model import Pose

    poses = [Pose(scale[i], rotation[i], translation[i]) if has_face[i] else None for i in range(n)]
    raw = raw_crop_boxes(model, poses, has_face, settings.crop_margin)
    crop = stabilise_crops(raw, has_face, fps, settings.crop_centre_smooth_s, settings.crop_size_smooth_s)
    return dict(
        landmarks=landmarks.astype(np.float32), has_face=has_face, identity=identity,
        residual_basis=basis, residual_var=var, scale=scale, rotation=rotation,
        translation=translation, controls=controls, residual=residual, crop=crop,
    )


def inner_lip_opening(landmarks: np.ndarray) -> np.ndarray:
    """Measured inner-lip opening per frame, in inter-ocular distances (mean of 3 central pairs)."""
    pairs = [(82, 87), (13, 14), (312, 317)]
    gaps = np.mean([np.linalg.norm(landmarks[:, a, :2] - landmarks[:, b, :2], axis=1) for a, b in pairs], axis=0)
    return gaps / interocular(landmarks)


def interocular(landmarks: np.ndarray) -> np.ndarray:
    a, b = topo.OUTER_EYE_CORNERS
    return np.linalg.norm(landmarks[:, a, :2] - landmarks[:, b, :2], axis=1)


def tracking_metrics(t: Tracking) -> dict:
    """Quality numbers of a tracked shot (see the issue: landmark_rms_iod, jaw_lip_corr, ...)."""
    idx = np.flatnonzero(t.has_face)
    out = {"frames": int(t.n_frames), "frames_with_face": int(len(idx))}
    if len(idx) == 0:
        return out
    model = t.model()
    det = t.landmarks[idx].astype(np.float64)
    pred = np.stack([t.landmarks_image(i, model=model) for i in idx])
    rms = np.sqrt(np.mean(np.sum((pred[:, :, :2] - det[:, :, :2]) ** 2, axis=2), axis=1)) / interocular(det)
    opening = inner_lip_opening(det)
    jaw = t.controls[idx, JAW]
    corr = float(np.corrcoef(jaw, opening)[0, 1]) if len(idx) > 2 and jaw.std() > 0 and opening.std() > 0 else float("nan")
    size = t.crop[idx, 2]
    out.update(
        landmark_rms_iod=float(np.mean(rms)),
        landmark_rms_iod_p95=float(np.percentile(rms, 95)),
        jaw_lip_corr=corr,
        crop_size_cv=float(size.std() / size.mean()),
        crop_size_px=float(np.median(size)),
        residual_components=int(t.residual_basis.shape[0]),
    )
    return out


def chosen_face(project: Project, settings: TrackSettings) -> str | None:
    """The face to track: ``settings.face`` when given ("auto" returns to the automatic choice),
    else the one the project was last tracked with, so that re-tracking (or the editor opening the
    shot) keeps the actor an editor picked."""
    face = settings.face
    if face is None:
        face = (project.stage_record("track") or {}).get("metrics", {}).get("face_spec")
    face = None if face is None else str(face).strip()
    return None if face in (None, "", "auto") else face


def track_key(project: Project, video: Path, settings: TrackSettings = TrackSettings()) -> str:
    """The tracking stage's cache key: the video's content, the settings and the version."""
    d = asdict(settings)
    d["face"] = chosen_face(project, settings)
    if d["face"] is None:  # added later: the automatic choice keeps older runs' keys
        del d["face"]
    return project.stage_key("track", {"video": video}, {"version": TRACK_VERSION, **d, **_squeeze(video)})


def _squeeze(video: Path) -> dict:
    """Anamorphic shots are detected unsqueezed (since the ninth session): their older caches are stale."""
    from dubstudio.io.video import sample_aspect

    sar = sample_aspect(video)
    return {"unsqueezed_sar": str(sar)} if sar != 1 else {}


def track(video: str | Path, project: Project, settings: TrackSettings = TrackSettings(), progress: Progress | None = None, force: bool = False) -> tuple[Tracking, dict]:
    """Track ``video`` into ``project`` (cached: unchanged inputs and settings return at once)."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    video = Path(video)
    key = track_key(project, video, settings)
    if not force and project.stage_is_current("track", key):
        rec = project.stage_record("track")
        return Tracking.load(project.path(rec["outputs"]["tracking"])), dict(rec["metrics"], cached=True)

    with VideoReader(video) as reader:  # never a silent retime: a variable-rate file is refused before any work
        if reader.irregular:
            raise MediaError(describe_irregular(video.name, reader.irregular))
    face = chosen_face(project, settings)
    choice = parse_face(face)  # a wrong --face fails before any work
    faces = MAX_FACES if choice is not None else 1  # every face is found once; choosing another is then instant
    many = {"faces": faces} if faces > 1 else {}
    lm_key = project.stage_key("landmarks", {"video": video}, {"version": LANDMARK_VERSION, "chunk": settings.chunk_frames,
                                                             "conf": settings.min_confidence, **_squeeze(video), **many})
    store = ChunkStore(project.cache_dir("landmarks" if faces == 1 else "landmarks_all"), lm_key)
    landmarks = detect_landmarks(video, store, settings, progress, faces)
    if choice is not None:
        per_frame = [[f for f in frame if not np.isnan(f[0, 0])] for frame in landmarks]
        landmarks, chosen_on = select_face(per_frame, choice)
    with VideoReader(video) as reader:
        fps, w, h = reader.fps, reader.width, reader.height
    fields = fit_shot(landmarks, float(fps), settings, progress)
    tracking = Tracking(fps=fps, width=w, height=h, **fields)
    progress.stage("save")
    out_rel = "cache/track/tracking.npz"
    project.cache_dir("track")
    tracking.save(project.path(out_rel))
    metrics = tracking_metrics(tracking)
    progress.stage("faces")
    if choice is not None:
        metrics["faces_seen"] = max(len(f) for f in per_frame)
        metrics["face"] = choice.describe() + ("" if choice.frame is not None else f" (on frame {chosen_on})")
        metrics["face_spec"] = face
    else:
        metrics["faces_seen"] = max(1, count_faces(video, min_confidence=settings.min_confidence))
        metrics["face"] = "automatic"
    metrics["tracking_fps"] = metrics["frames"] / (time.perf_counter() - t0)
    metrics["cached"] = False
    project.record_stage("track", key, {"tracking": out_rel}, metrics)
    return tracking, metrics
