"""The paper's self-reenactment protocol (Dubbing for Everyone, section 4; issue 3).

Adapt on training frames A:B (done elsewhere), then reconstruct test frames C:D from their tracked
expression (and real audio: the renderer does that) and compare with the real frames, per frame,
in crop space at the renderer's resolution:

- ``face_psnr`` / ``face_ssim``: the whole R x R face crop,
- ``mouth_psnr``: MSE over the test frame's mouth mask (lips + interior of the tracked mesh),
- ``mouth_lpips``: LPIPS (ST-LPIPS AlexNet) inside the same mask (other pixels set to grey), or
  None with a reason when LPIPS is unavailable.

Methods reported:

- ``renderer``: the renderer's raw crop;
- ``renderer_composited``: what the exported frame shows inside the box (the raw crop colour
  matched and feathered into the real crop by :mod:`dubstudio.rendering.composite`);
- ``copy`` / ``copy_warp``: the copy baseline (:mod:`dubstudio.eval.copy_baseline`) from the
  training frames, plain and mesh-warped. Its face-crop numbers are the real crop outside the
  mouth, so only its *mouth* numbers are a fair bar for the renderer.

Medians and means are returned; ``renderer_beats_copy`` compares medians with the better copy
variant (higher PSNR, lower LPIPS).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.core.errors import DubStudioError, NoFaceError
from dubstudio.eval.copy_baseline import CopyBaseline, nearest_frames
from dubstudio.eval.metrics import LpipsScorer, masked_psnr, psnr, ssim, summarise
from dubstudio.rendering.composite import CompositeSettings, Compositor, blend_crop
from dubstudio.rendering.crop_io import extract_crop
from dubstudio.rendering.render_job import render_with_masks

__all__ = ["EvalSettings", "evaluate", "METRICS"]

METRICS = ("face_psnr", "face_ssim", "mouth_psnr", "mouth_lpips")


@dataclass(frozen=True)
class EvalSettings:
    resolution: int = 256  # crop size when there is no renderer (copy baseline only)
    batch_size: int = 8
    residual_weight: float = 0.0  # copy baseline: weight of the residual coefficients in the match
    baseline_warp: bool = True  # also report the mesh-warped copy baseline
    lpips_net: str = "alex"
    lpips: bool = True
    device: str = "cpu"
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    per_frame: bool = False  # include every frame's numbers in the result


def _frame_metrics(gen: np.ndarray, real: np.ndarray, mouth: np.ndarray) -> dict:
    return {
        "face_psnr": psnr(gen, real),
        "face_ssim": ssim(gen, real),
        "mouth_psnr": masked_psnr(gen, real, mouth),
    }


def evaluate(
    tracking,
    video: str | Path,
    train: range,
    test: range,
    renderer=None,
    settings: EvalSettings | None = None,
    progress: Progress | None = None,
    lpips: LpipsScorer | None = None,
) -> dict:
    """Self-reenactment metrics of ``renderer`` (a CropRenderer, or None for the baseline only)
    and the copy baseline on ``test`` frames, copying from ``train`` frames."""
    from dubstudio.io.video import VideoReader

    settings = settings or EvalSettings()
    progress = progress or Progress()
    t0 = time.perf_counter()
    train, test = range(train.start, train.stop), range(test.start, test.stop)
    if set(train) & set(test):
        raise DubStudioError(
            f"training frames {train.start}:{train.stop} overlap test frames {test.start}:{test.stop}; "
            f"self-reenactment needs held-out test frames."
        )
    for name, rg in (("training", train), ("test", test)):
        if len(rg) == 0 or rg.start < 0 or rg.stop > tracking.n_frames:
            raise DubStudioError(f"{name} frames {rg.start}:{rg.stop} are not inside the shot (0:{tracking.n_frames}).")
    r = int(renderer.resolution) if renderer is not None else int(settings.resolution)
    face_test = [i for i in test if tracking.has_face[i]]
    if not face_test:
        raise NoFaceError(f"no test frame in {test.start}:{test.stop} has a tracked face; pick other test frames.")
    if lpips is None and settings.lpips:
        lpips = LpipsScorer(settings.lpips_net, settings.device)

    comp = Compositor(tracking, r, settings.composite)
    variants = {"copy": False, **({"copy_warp": True} if settings.baseline_warp else {})}
    methods = (["renderer", "renderer_composited"] if renderer is not None else []) + list(variants)
    per: dict[str, dict[str, list]] = {m: {k: [] for k in METRICS} for m in methods}
    frames_out: list[int] = []

    src_all, dist_all = nearest_frames(tracking, train, face_test, settings.residual_weight)
    nearest = dict(zip(face_test, src_all.tolist()))
    progress.stage("eval")
    with VideoReader(video) as reader:
        if reader.n_frames != tracking.n_frames:
            raise DubStudioError(f"the video has {reader.n_frames} frames but the tracking {tracking.n_frames}; track the shot again.")
        baselines = {name: CopyBaseline(tracking, reader, train, r, settings.residual_weight, warp) for name, warp in variants.items()}
        first = next(iter(baselines.values()))
        first.preload(sorted(set(src_all.tolist())))
        for b in baselines.values():
            b._crop_cache = first._crop_cache  # share the decoded training crops

        def flush(batch: list[tuple[int, np.ndarray]]) -> None:
            idx = [i for i, _ in batch]
            real = np.stack([c for _, c in batch])
            generated = None
            outputs: dict[str, np.ndarray] = {}
            if renderer is not None:
                raw, generated = render_with_masks(renderer, idx, None)
                outputs["renderer"] = raw
            masks = comp.masks(idx, None, generated)
            mouth = np.stack([m.mouth for m in masks])
            if renderer is not None:
                outputs["renderer_composited"] = np.stack([blend_crop(c, g, m, settings.composite) for c, g, m in zip(real, raw, masks)])
            for name, b in baselines.items():
                outputs[name] = np.stack([b.compose(i, nearest[i], c, mk) for i, c, mk in zip(idx, real, mouth)])
            for name, gen in outputs.items():
                lp = lpips.score_batch(gen, real, mouth) if lpips is not None else [None] * len(idx)
                for k in range(len(idx)):
                    fm = _frame_metrics(gen[k], real[k], mouth[k])
                    fm["mouth_lpips"] = lp[k]
                    for key in METRICS:
                        per[name][key].append(fm[key])
            frames_out.extend(idx)
            progress.update(len(frames_out), len(face_test))

        batch: list[tuple[int, np.ndarray]] = []
        face_set = set(face_test)
        for i, rgb in reader.iter_frames(test.start, test.stop):
            if i not in face_set:
                continue
            batch.append((i, extract_crop(rgb, tracking.crop[i], r)))
            if len(batch) == settings.batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)

    result = {
        "train_frames": [train.start, train.stop],
        "test_frames": [test.start, test.stop],
        "n_test": len(test),
        "n_test_with_face": len(face_test),
        "resolution": r,
        "lpips": {
            "net": settings.lpips_net,
            "available": bool(lpips is not None and lpips.available),
            "reason": None if lpips is not None and lpips.available else (lpips.reason if lpips is not None else "disabled"),
        },
        "copy_match": {
            "median_distance": float(np.median(dist_all)),
            "distinct_sources": int(len(set(src_all.tolist()))),
            "residual_weight": settings.residual_weight,
        },
        "methods": {m: {k: summarise(v) for k, v in per[m].items()} for m in methods},
        "settings": _jsonable(asdict(settings)),
    }
    if renderer is not None:
        result["renderer_beats_copy"] = _beats(result["methods"], list(variants))
    if settings.per_frame:
        result["per_frame"] = {"frames": frames_out, "copy_source": [nearest[i] for i in frames_out], **per}
    result["wall_s"] = round(time.perf_counter() - t0, 3)
    return _jsonable(result)


def _beats(methods: dict, baselines: list[str]) -> dict:
    out = {}
    for key, higher in (("mouth_psnr", True), ("mouth_lpips", False)):
        mine = methods["renderer"][key]["median"]
        theirs = [methods[b][key]["median"] for b in baselines if methods[b][key]["median"] is not None]
        if mine is None or not theirs:
            out[key] = None
            continue
        best = max(theirs) if higher else min(theirs)
        out[key] = bool(mine > best) if higher else bool(mine < best)
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x
