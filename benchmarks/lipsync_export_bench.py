"""Issue-4 lip-sync benchmark on finished exports (no downloaded weights needed).

    .venv/bin/python benchmarks/lipsync_export_bench.py [--cases talk_c+speech_en,talk_b+speech_de,talk_a+dubber_a,talk_c+own_audio]
        [--work /tmp/lipsync] [--steps 600] [--prior FILE] [--generic-dir DIR [--choose] | --no-generic] [--threads 1]

For each case: track the shot, adapt its neural renderer (full mode on all its frames, from
--prior when given), drive the mouth from the dubbed audio (person-generic audio-to-expression
model trained on the *other* clips, adapted to the actor on the shot's own audio) or from the
dubber's video (``--no-generic``: no generic model, as on a fresh install: the dub from audio fits
a small model on the shot alone, the dubber's sync is checked against its own sound), export an H.264 mp4 with the dubbed audio muxed, verify it with ffprobe, then
**re-track the exported video** and compare its mouth opening (jaw_open) with the dubbed audio's
speech envelope (RMS per frame of the 1-3 kHz band, the primary measure; also broadband RMS and
broadband dB): Pearson r at the best lag within +-10 frames (and the best lag of each half)
(lag > 0: the mouth is late), r at lag 0, and the mean mouth opening in silent stretches; and the
correlation of the re-tracked jaw with the driven one (how faithfully render + export carry it). The same numbers for the original shot
against its own audio are the reference: the dub should be at least as well synchronised, with
|lag| <= 1 frame. Also: export wall time (frames/s), and a contact sheet (original | dubbed face
crops at the strongest speech frames and in silences) per case under --work/sheets/.

Prints one JSON object; intermediate results (projects, renderers, exports) are cached in --work.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from dubstudio.project.store import Project
from dubstudio.core.paths import media_dir

CASES = {
    # the first 20 s of speech_en after its ~3 s of leading noise, on the 20 s talk_c
    "talk_c+speech_en": {"clip": "talk_c", "audio": "speech_en.wav", "start_s": 3.0, "duration_s": 20.0, "policy": "pad"},
    # 9.3 s of German (1 s of leading silence) on the 8.1 s talk_b: the end is trimmed, by flag
    "talk_b+speech_de": {"clip": "talk_b", "audio": "speech_de.wav", "start_s": 0.0, "duration_s": None, "policy": "trim"},
    # the dubbing actor's own video (4.7 s) drives talk_a (5.0 s): its audio is padded
    "talk_a+dubber_a": {"clip": "talk_a", "dubber": "dubber_a.mp4", "policy": "pad"},
    # control: talk_c re-dubbed from its *own* audio by the same models. The measure depends on
    # the audio (how much of its syllable structure the envelope shows), so this separates "the
    # dubbed line is hard to read" from "the pipeline lip-syncs badly".
    "talk_c+own_audio": {"clip": "talk_c", "audio": "talk_c.mp4", "start_s": 0.0, "duration_s": None, "policy": "trim"},
}
TALK = ["talk_a", "talk_b", "talk_c", "talk_d", "talk_e", "talk_long"]


def tracked(work: Path, clip: str, video: Path | None = None) -> Project:
    from dubstudio.tracking.track import track

    root = work / "projects" / clip
    video = video or media_dir() / f"{clip}.mp4"
    p = Project.open(root) if (root / "project.json").is_file() else Project.create(root, video)
    track(video, p)  # cached while the video and settings are unchanged (a new export re-tracks)
    return p


def generic_for(work: Path, clip: str, generic_dir: Path | None) -> Path:
    """A person-generic audio-to-expression model trained on every talk clip but ``clip``."""
    from dubstudio.driving.audio2expr_train import train_generic

    others = [c for c in TALK if c != clip]
    name = f"generic_{'+'.join(c.removeprefix('talk_') for c in others)}_1500.pt"
    for d in (generic_dir, work):
        if d is not None and (d / name).is_file():
            return d / name
    out = work / name
    train_generic([tracked(work, c) for c in others], out)
    return out


def dubbed_audio_file(work: Path, case: str, spec: dict) -> Path:
    """The case's dialogue as a WAV (the chosen stretch of the source file)."""
    import soundfile as sf

    from dubstudio.io.audio import load_audio

    out = work / "audio" / f"{case}.wav"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        a = load_audio(media_dir() / spec["audio"], sr=48000, mono=False, start_s=spec["start_s"], duration_s=spec["duration_s"])
        sf.write(out, a.T, 48000, subtype="PCM_24")
    return out


F2_BAND = (1000.0, 3000.0)  # the speech envelope the measure uses (see speech_envelope)


def lipsync(jaw: np.ndarray, audio16k: np.ndarray, fps: Fraction, valid: np.ndarray) -> dict:
    from dubstudio.driving.audio2expr_train import lag_correlation, silence_mask
    from dubstudio.nn.audio_features import speech_envelope
    from dubstudio.tracking.mouth_motion import closed_threshold, closure_events, jitter

    n = len(jaw)
    env = speech_envelope(audio16k, n, fps)
    f2 = speech_envelope(audio16k, n, fps, band=F2_BAND)
    silent, _ = silence_mask(audio16k, n, fps, min_run_s=0.3, margin_s=0.08)
    v = valid.astype(bool)
    out: dict = {}
    # the primary measure: the 1-3 kHz envelope; then the broadband RMS and the same in dB (the
    # linear RMS is dominated by the loudest syllables, the log weighs every syllable alike)
    for key, e in (("f2", f2), ("rms", env), ("db", np.log10(env.astype(np.float64) + 1e-4))):
        lag, r_best, r0 = lag_correlation(jaw[v], e[v], 10)
        half = len(jaw) // 2  # the best lag of each half: a lag that moves between halves is noise
        halves = [lag_correlation(jaw[sl][v[sl]], e[sl][v[sl]], 10)[0] for sl in (slice(0, half), slice(half, None))]
        out[key] = {"r_best": round(r_best, 3), "best_lag": int(lag), "r_lag0": round(r0, 3), "best_lag_halves": halves}
    sil = silent & v
    # in-speech closures (mostly bilabials) per second of speech, on the curve's own closed level
    # (eval.mouth_motion), and shake; a dub has no tracked reference for its audio: compare rates
    thr = closed_threshold(jaw[v], silent[v])
    speech_s = float((~silent & v).sum() / fps)
    closures = closure_events(np.where(v, jaw, np.inf), silent, thr, float(fps))
    out["closures_per_speech_s"] = round(len(closures) / speech_s, 2) if speech_s else None
    out["jitter"] = round(jitter(jaw[v]), 4)
    return {
        **out,
        "silent_frames": int(sil.sum()), "speech_frames": int((~silent & v).sum()),
        "jaw_silent_mean": round(float(jaw[sil].mean()), 3) if sil.any() else None,
        "jaw_speech_mean": round(float(jaw[~silent & v].mean()), 3) if (~silent & v).any() else None,
        "_env": f2, "_silent": silent,
    }


def contact_sheet(original: Path, export: Path, tracking, env: np.ndarray, silent: np.ndarray, out: Path, k: int = 4) -> Path:
    """Rows: original | dubbed face crops; columns: the k loudest frames, then k silent ones."""
    import cv2

    from dubstudio.io.video import VideoReader

    face = tracking.has_face
    loud = [int(i) for i in np.argsort(-np.where(face & ~silent, env, -1))[: k * 6]]
    picks: list[int] = []
    for i in loud:  # spread the picks out in time
        if all(abs(i - j) > 5 for j in picks):
            picks.append(i)
        if len(picks) == k:
            break
    quiet = np.flatnonzero(face & silent)
    picks += [int(quiet[j]) for j in np.linspace(0, len(quiet) - 1, min(k, len(quiet))).astype(int)] if len(quiet) else []
    tiles = []
    for path in (original, export):
        row = []
        with VideoReader(path) as r:
            for i in picks:
                cx, cy, side = tracking.crop[i]
                x0, y0, x1, y1 = [int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)]
                img = r.frame(i)
                h, w = img.shape[:2]
                crop = img[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
                crop = cv2.resize(crop, (192, 192), interpolation=cv2.INTER_AREA)
                cv2.putText(crop, f"{i}{' sil' if silent[i] else ''}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
                row.append(crop)
        tiles.append(np.concatenate(row, axis=1))
    sheet = np.concatenate(tiles, axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def run_case(work: Path, case: str, spec: dict, steps: int, prior: Path | None, generic_dir: Path | None, detail: float | None = None,
             suffix: str = "", use_generic: bool = True, choose: bool = False, mouth_detail: tuple[str, ...] = ("on",)) -> dict:
    from dubstudio.driving.audio2expr_train import drive_project_from_audio
    from dubstudio.app.dub import apply_dub
    from dubstudio.driving.dub import drive_from_dubber
    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.shot.curves import load_curves
    from dubstudio.shot.tracking import load_tracking
    from dubstudio.training.trainer import adapt

    clip = spec["clip"]
    p = tracked(work, f"{clip}")
    t = load_tracking(p)
    res: dict = {"case": case, "clip": clip, "frames": t.n_frames, "fps": str(t.fps)}

    t0 = time.perf_counter()
    ad = adapt(p, "full", steps, prior=str(prior) if prior else None)
    res["adapt"] = {"steps": ad.steps, "wall_s": round(ad.wall_s, 1), "cached": ad.cached, "prior": str(prior) if prior else None}

    t0 = time.perf_counter()
    if "dubber" in spec:
        dubber = media_dir() / spec["dubber"]
        # the dubber clip's own audio/picture offset is checked with a generic audio model that
        # never saw the dubber (nor the actor)
        g = generic_for(work, clip, generic_dir) if use_generic else None
        d = drive_from_dubber(p, dubber, sync="auto", generic=g)
        apply_dub(p, d)  # as `dubstudio dub --dubber` does
        audio_path = dubber
        res["drive"] = {"source": spec["dubber"], "driven_frames": d.driven_frames, "generic": g.name if g else None,
                        **{k: d.details[k] for k in ("map", "av_sync") if k in d.details}}
    else:
        audio_path = dubbed_audio_file(work, case, spec)
        g = generic_for(work, clip, generic_dir) if use_generic else None
        d = drive_project_from_audio(p, audio_path, generic=g, choose=choose)
        curves = load_curves(p)
        d.edit.apply(curves)
        CurveStore(p).save(curves)
        res["drive"] = {"source": spec["audio"], "audio_start_s": spec["start_s"], "generic": g.name if g else None,
                        "audio_frames": d.audio_frames, "av_offset": d.adaptation["metrics"].get("av_offset"),
                        "sync": d.adaptation.get("sync"), "range": d.adaptation.get("range"), "choice": d.adaptation.get("choice"),
                        "mode": d.adaptation.get("mode")}
    res["drive"]["wall_s"] = round(time.perf_counter() - t0, 1)

    exports = {}
    for md in mouth_detail:
        tag = suffix + ("" if len(mouth_detail) == 1 else f"_detail-{md}")
        r = res if len(mouth_detail) == 1 else res.setdefault("mouth_detail", {}).setdefault(md, {})
        exports[md] = _export_and_measure(work, case, spec, p, t, ad, audio_path, detail, tag, md == "on", r)
    if len(mouth_detail) > 1:
        res["open_sheet"] = str(open_sheet(p.check_video(), exports, _final_jaw(p, t), t, work / "sheets" / f"{case}{suffix}_open.png"))
    return res


def _export_and_measure(work: Path, case: str, spec: dict, p: Project, t, ad, audio_path: Path, detail, suffix: str,
                        mouth_detail: bool, res: dict) -> Path:
    from dubstudio.driving.audio2expr_train import as_audio
    from dubstudio.export.audio_track import AudioRequest
    from dubstudio.export.job import ExportSettings, export_shot
    from dubstudio.export.mark import detect
    from dubstudio.export.verify import check
    from dubstudio.rendering.composite import CompositeSettings
    from dubstudio.rendering.render_job import RenderSettings
    from dubstudio.shot.tracking import load_tracking
    from dubstudio.app.renderer import RendererChoice, open_renderer
    from dubstudio.core.controls import JAW
    from dubstudio.shot import Shot

    out = work / "exports" / f"{case}{suffix}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    # opened as the export job opens it (with the detail: references from the whole shot)
    renderer, _ = open_renderer(Shot.open(p.root), RendererChoice(checkpoint=Path(ad.path), device="cpu", mouth_detail=mouth_detail))
    render = RenderSettings() if detail is None else RenderSettings(composite=CompositeSettings(detail=detail))
    settings = ExportSettings(audio=AudioRequest(mode="file", path=audio_path, offset_s=0.0, policy=spec["policy"]), render=render)
    t0 = time.perf_counter()
    ex = export_shot(p, renderer, out, settings)
    wall = time.perf_counter() - t0
    res["export"] = {"wall_s": round(wall, 1), "frames_per_s": round(t.n_frames / wall, 2), "detail": settings.render.composite.detail,
                     "watermark_frames": ex.get("frames_watermarked") if isinstance(ex, dict) else None,
                     "audio": ex.get("audio") if isinstance(ex, dict) else None}
    res["ffprobe"] = check(out, t.n_frames, t.fps, audio=True, video_codec="h264", audio_codec="aac")
    res["watermark"] = detect(out)

    # re-track the export; compare with the dubbed audio as muxed (16 kHz mono from the file itself)
    rp = tracked(work, f"retrack_{case}{suffix}", out)
    rt = load_tracking(rp)
    dub_audio = as_audio(out)
    ls = lipsync(rt.controls[:, JAW], dub_audio, rt.fps, rt.has_face)
    ref = lipsync(t.controls[:, JAW], as_audio(p.check_video()), t.fps, t.has_face)
    res["dubbed"] = {k: v for k, v in ls.items() if not k.startswith("_")}
    res["original"] = {k: v for k, v in ref.items() if not k.startswith("_")}
    res["driven_vs_retracked_jaw_r"] = round(float(np.corrcoef(_final_jaw(p, t), rt.controls[:, JAW])[0, 1]), 3)
    if "dubber" in spec:  # the dubbing actor's own mouth against their own audio: the best a retarget can carry
        dp = Project.open(p.path(f"dubbers/{Path(spec['dubber']).stem}"))
        dt = load_tracking(dp)
        src = lipsync(dt.controls[:, JAW], as_audio(dp.check_video()), dt.fps, dt.has_face)
        res["dubber_own"] = {k: v for k, v in src.items() if not k.startswith("_")}
    res["sheet"] = str(contact_sheet(p.check_video(), out, t, ls["_env"], ls["_silent"], work / "sheets" / f"{case}{suffix}.png"))
    return out


def open_sheet(original: Path, exports: dict, jaw: np.ndarray, tracking, out: Path, k: int = 5) -> Path:
    """The k most open driven frames: original | each export (mouth box, 2x), one row per frame."""
    import cv2

    from dubstudio.io.video import VideoReader

    idx = [int(i) for i in np.argsort(-np.where(tracking.has_face, jaw, -np.inf))[:k]]
    rows = []
    for i in sorted(idx):
        cx, cy, s = (float(v) for v in tracking.crop[i][:3])
        x0, y0, w = int(cx - 0.25 * s), int(cy + 0.02 * s), int(0.5 * s)
        cells = []
        for path in (original, *exports.values()):
            with VideoReader(path) as rd:
                f = rd.frame(i)
            cells.append(cv2.resize(f[y0 : y0 + w // 2, x0 : x0 + w], (512, 256), interpolation=cv2.INTER_LANCZOS4))
        rows.append(np.concatenate(cells, axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return out


def _final_jaw(p: Project, t) -> np.ndarray:
    from dubstudio.shot.curves import final_controls
    from dubstudio.core.controls import JAW

    c, _ = final_controls(p, t)
    return (t.controls if c is None else c)[:, JAW]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--work", type=Path, default=Path("/tmp/lipsync"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--prior", type=Path)
    ap.add_argument("--generic-dir", type=Path, help="folder with cached generic models (generic_<clips>_1500.pt)")
    ap.add_argument("--no-generic", action="store_true", help="no generic audio model (a fresh install): per-shot models only")
    ap.add_argument("--choose", action="store_true", help="as `dub --audio-model auto` with a generic installed: the generic or "
                    "the shot's own model, whichever fits the actor's held-out speech better")
    ap.add_argument("--seed-projects", type=Path, help="copy tracked projects from here (folders named by clip) on first use")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--detail", type=float, help="the composite's detail pass, 0..1 (default: the product's default)")
    ap.add_argument("--mouth-detail", default="on", help="on, off, or off,on: both exports of one dub, measured "
                    "alike, and a sheet of the most open frames (original | off | on)")
    ap.add_argument("--exports-suffix", default="", help="added to export/re-track names, to keep two variants apart")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.seed_projects:
        for d in args.seed_projects.iterdir():
            dst = args.work / "projects" / d.name
            if d.is_dir() and not dst.exists():
                shutil.copytree(d, dst, ignore=shutil.ignore_patterns("adapt"))
    rows = []
    for case in args.cases.split(","):
        r = run_case(args.work, case, CASES[case], args.steps, args.prior, args.generic_dir, args.detail, args.exports_suffix,
                     use_generic=not args.no_generic, choose=args.choose, mouth_detail=tuple(args.mouth_detail.split(",")))
        print(json.dumps(r), file=sys.stderr)
        rows.append(r)
    print(json.dumps({"bench": "lipsync_export", "machine": f"{platform.machine()} {os.cpu_count()} cores",
                      "threads": args.threads, "steps": args.steps, "generic": not args.no_generic, "choose": args.choose, "cases": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
