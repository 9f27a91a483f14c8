"""Audio-to-expression inference: any audio -> named control curves at a shot's frame rate,
and ``dubstudio dub --audio`` (adapt, predict, put the result as the driven curve layer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.driving.a2e_actor import ActorAdaptation, AdaptConfig, adapt_actor, adapt_project
from dubstudio.driving.a2e_data import Audio2ExprError, _fps, as_audio, audio_windows, clip_from_project
from dubstudio.driving.a2e_generic import TRAIN_VERSION, _generic, _jsonable, _run
from dubstudio.nn.audio_features import SAMPLE_RATE
from dubstudio.core.edits import SetDriven
from dubstudio.core.retime import in_frames
from dubstudio.core.errors import MediaError
from dubstudio.project.store import Project
from dubstudio.tracking.result import Tracking
from dubstudio.core.controls import CONTROL_NAMES, CONTROL_RANGE, JAW

RANGE_GAIN_LIMITS = (1.0, 2.0)  # only ever opens more: shrinking measured worse (decisions.md)
SYNC_MAX_S, SYNC_MIN_GAIN = 0.4, 0.1
# a jaw that moves less than this (std, inter-ocular units; speech moves it 0.1-0.19 in the media
# clips) has no timing to check: a still mouth's tracking drift can correlate with a line's
# loudness at any lag (the built-in sample: r 0.32 at -6 frames with a jaw std of 0.008)
SYNC_MIN_MOTION = 0.02


def predict_curves(
    audio: str | Path | np.ndarray,
    n_frames: int,
    fps: Any,
    generic: Any = None,
    actor_layer: ActorAdaptation | str | Path | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    smooth_s: float = 0.03,
    offset_s: float = 0.0,
) -> np.ndarray:
    """(n_frames, 7) named controls for ``audio`` at ``fps`` (frame i at time i / fps + offset_s).

    ``generic``: checkpoint path or GenericModel; ``actor_layer``: an ActorAdaptation (or its
    file). A ``scratch`` adaptation carries its own model and needs no generic. Frames past the
    end of the audio are silence (mouth closed). Zero-phase Gaussian smoothing of ``smooth_s``
    seconds (sigma); values are clipped to the controls' ranges.
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be > 0, got {n_frames}")
    fps = _fps(fps)
    a = as_audio(audio, sample_rate)
    if offset_s:
        k = int(round(abs(offset_s) * SAMPLE_RATE))
        a = a[k:] if offset_s > 0 else np.concatenate([np.zeros(k, np.float32), a])
        if len(a) == 0:
            raise MediaError(f"the audio ends before offset {offset_s:.2f} s; use a smaller offset.")
    ad = ActorAdaptation.load(actor_layer) if isinstance(actor_layer, (str, Path)) else actor_layer
    windows = audio_windows(a, n_frames, fps)
    if ad is not None and ad.mode == "scratch":
        raw = _run(ad.model, windows)
    else:
        g = _generic(generic)
        if g is None:
            raise Audio2ExprError(
                "no audio-to-expression model: give a generic model (`dubstudio audio2expr train`) or an "
                "actor adaptation trained on the shot (adapt_project)."
            )
        raw = g.predict(windows)
    y = ad.apply(raw) if ad is not None else raw.astype(np.float64)
    if smooth_s > 0:
        from scipy.ndimage import gaussian_filter1d

        y = gaussian_filter1d(y, sigma=float(smooth_s * fps), axis=0, mode="nearest")
    lo = np.array([CONTROL_RANGE[n][0] for n in CONTROL_NAMES])
    hi = np.array([CONTROL_RANGE[n][1] for n in CONTROL_NAMES])
    return np.clip(y, lo, hi)


CHOICE_STAGE = "audio2expr_choice"
CHOICE_FIT = 0.6  # fraction of the shot both candidates are fitted on; the rest scores them
CHOICE_MARGIN = 0.05  # the shot's own model must predict the held-out mouth this much better


def choose_audio_model(project: Any, generic: Any, config: AdaptConfig = AdaptConfig(), progress: Progress | None = None) -> dict:
    """Which model drives this actor: the generic one adapted to them, or one trained on the shot
    alone. Both are fitted on the first CHOICE_FIT of the shot and predict the rest from the
    actor's own voice, each at the audio/picture sync it found; the shot's own model is taken
    when its r at lag 0 beats the generic's by CHOICE_MARGIN (the generic has heard more voices,
    so it keeps ties). On talk_c (20 s; its sound realigned) the shot's own scored 0.72 against
    0.45 and drove the English line at 0.63 against 0.35; on the 8 s talk_b 0.11 against 0.17,
    where the generic kept time and the shot's own did not. Cached in the project by content.
    Returns {"model": "generic" | "shot", "r_generic", "r_shot", "fit_frames", "held_frames"}."""
    p = project if isinstance(project, Project) else Project.open(project)
    g = _generic(generic)
    src = clip_from_project(p)
    key = p.stage_key(CHOICE_STAGE, {"tracking": Path(src.tracking), "video": Path(src.audio), "generic": g.fingerprint},
                      {"version": 1, "train_version": TRAIN_VERSION, "fit": CHOICE_FIT, "margin": CHOICE_MARGIN,
                       **_jsonable(asdict(config))})
    if p.stage_is_current(CHOICE_STAGE, key):
        return dict(p.stage_record(CHOICE_STAGE).get("metrics") or {})
    progress = progress or Progress()
    t = Tracking.load(src.tracking)
    audio = as_audio(src.audio)
    cut = int(CHOICE_FIT * t.n_frames)
    held = np.asarray(t.has_face, bool).copy()
    held[:cut] = False
    scores = {}
    for name, model in (("generic", g), ("shot", None)):
        progress.stage(f"audio2expr: which model fits this actor ({name})")
        ad = adapt_actor(replace(src, stop=cut), model, config, progress)
        off = float((ad.metrics.get("av_offset") or {}).get("seconds", 0.0))
        jaw = predict_curves(audio, t.n_frames, t.fps, model, ad, offset_s=off)[:, JAW]
        ok = held.sum() >= 10 and jaw[held].std() > 1e-9 and t.controls[held, JAW].std() > 1e-9
        scores[name] = round(float(np.corrcoef(jaw[held], t.controls[held, JAW])[0, 1]), 3) if ok else float("nan")
    shot_wins = np.isfinite(scores["shot"]) and (not np.isfinite(scores["generic"]) or scores["shot"] >= scores["generic"] + CHOICE_MARGIN)
    out = {"model": "shot" if shot_wins else "generic", "r_generic": scores["generic"], "r_shot": scores["shot"],
           "fit_frames": cut, "held_frames": int(held.sum())}
    p.record_stage(CHOICE_STAGE, key, {}, out)
    return out


@dataclass
class AudioDrive:
    """Result of driving a project's curves from audio."""

    edit: Any  # core.edits.SetDriven over the whole shot, not applied
    values: np.ndarray  # (n_frames, 7)
    adaptation: dict  # ActorAdaptation.metadata()
    audio_frames: int  # frames of the shot covered by the audio (the rest: silence, mouth closed)
    n_frames: int


def drive_project_from_audio(
    project: Any,
    audio: str | Path,
    generic: Any = None,
    *,
    controls: Sequence[str] = CONTROL_NAMES,
    offset_s: float = 0.0,
    config: AdaptConfig = AdaptConfig(),
    progress: Progress | None = None,
    match_range: bool = True,
    check_sync: bool = True,
    choose: bool = False,
    close_pauses: bool = True,
    script: Any = None,
) -> AudioDrive:
    """``dubstudio dub --audio``: adapt (cached), predict at the shot's fps and length, check the
    mouth's timing against the dialogue (``align_to_dialogue``), keep the actor's range of jaw
    motion (``match_jaw_range``), close the mouth in the line's pauses (``close_in_pauses``), and put the result as the driven layer of
    ``controls`` (tracked curves and keys are kept; the user can reset any range): the edit is
    returned, not applied (``app.dub`` applies it). ``choose``: with a generic model, use it or a
    model trained on the shot alone, whichever predicts the actor's own held-out mouth better
    (``choose_audio_model``). ``script``: the line's text aligned to ``audio``
    (``script_align.AlignedScript``, in the file's time), blended in before the checks."""
    p = project if isinstance(project, Project) else Project.open(project)
    g = _generic(generic)
    choice = None
    if choose and g is not None:
        try:
            choice = choose_audio_model(p, g, config, progress)
        except MediaError:
            choice = None  # a shot without usable sound: the generic's offset-only path below
        if choice and choice["model"] == "shot":
            g = None
    ad = adapt_project(p, g, config, progress)
    src = clip_from_project(p)
    t = Tracking.load(src.tracking)
    file_offset = offset_s
    a, offset_s = _heard_span(audio, offset_s, float(t.n_frames / _fps(t.fps)))
    values = predict_curves(a, t.n_frames, t.fps, g, ad, offset_s=offset_s)
    meta = ad.metadata()
    if choice:
        meta["choice"] = choice
    if script is not None:
        from dubstudio.driving.script_align import blend_script

        values, meta["script"] = blend_script(values, script, float(_fps(t.fps)), file_offset)
    heard = _shifted(a, offset_s)
    if check_sync:
        values, meta["sync"] = align_to_dialogue(values, heard, t)
    if match_range:
        values, meta["range"] = match_jaw_range(values, heard, t, src.audio)
    if close_pauses:
        values, meta["pauses"] = close_in_pauses(values, heard, t.fps)
    idx = [CONTROL_NAMES.index(c) for c in controls]
    words = in_frames((meta.get("script") or {}).get("words"), float(_fps(t.fps)))  # recorded in shot seconds
    edit = SetDriven(list(controls), values[:, idx], 0, 1.0, source=f"audio:{Path(audio).name}", words=words)
    covered = min(t.n_frames, int((len(a) / SAMPLE_RATE - offset_s) * t.fps))
    return AudioDrive(edit, values, meta, max(0, covered), t.n_frames)


CONTEXT_S = 1.0  # audio kept either side of what the shot hears: the model's receptive field and mel window


def _heard_span(audio: Any, offset_s: float, shot_s: float) -> tuple[np.ndarray, float]:
    """The audio to drive from and its offset (``predict_curves``' convention). A file running well
    past what the shot hears (a reel's stem placed by timecode) is decoded only around that span,
    with its own gain normalisation: a 20 min stem decoded whole took 1.2 GB to dub an 8 s shot."""
    if isinstance(audio, (str, Path)):
        from dubstudio.io.audio import STEM_MARGIN_S
        from dubstudio.io.audio import audio_info, load_audio

        total = audio_info(audio).duration_s
        first = max(0.0, offset_s - CONTEXT_S)
        span = offset_s + shot_s + CONTEXT_S - first
        if total and total - first > span + STEM_MARGIN_S:
            a = as_audio(load_audio(audio, sr=SAMPLE_RATE, start_s=first, duration_s=span))
            return a, offset_s - first
    return as_audio(audio), offset_s


def _shifted(a: np.ndarray, offset_s: float) -> np.ndarray:
    """The audio as shot frame 0 hears it (``predict_curves``' offset convention)."""
    k = int(round(abs(offset_s) * SAMPLE_RATE))
    if not offset_s:
        return a
    return a[k:] if offset_s > 0 else np.concatenate([np.zeros(k, np.float32), a])


def align_to_dialogue(values: np.ndarray, audio: np.ndarray, tracking: Any, max_s: float = SYNC_MAX_S) -> tuple[np.ndarray, dict]:
    """The driven curves moved in time when their jaw clearly trails or leads the dialogue's
    sound (its 1-3 kHz envelope, where the mouth's opening shows; within ``max_s``).

    A model trained on one shot learns that shot's own audio/picture offset: with no generic
    model, the per-actor model of talk_b (whose sound runs ~4 frames off its picture) drove a
    German line 7 frames late, talk_e's a Mandarin line 3. Viewers judge sync by the mouth
    opening with the sound, so a clear lag is removed: at least 2 frames, r better than at lag 0
    by ``SYNC_MIN_GAIN``, and each half of the line peaking within a frame of it (a local peak
    above the half's r at lag 0 and at least half the whole line's: on a few seconds of speech a
    half's highest r can sit at the search's edge, where little overlaps). The natural lead of about a frame is left alone. The dubber path runs the same
    check on the retargeted mouth against the dubber's own sound."""
    from dubstudio.driving.a2e_actor import _shift, lag_correlation, lag_profile
    from dubstudio.nn.audio_features import speech_envelope
    from dubstudio.core.controls import JAW

    n = len(values)
    fps = _fps(tracking.fps)
    env = speech_envelope(audio, n, fps, band=(1000.0, 3000.0))
    covered = min(n, int(len(audio) / SAMPLE_RATE * float(fps)))
    ok = np.asarray(tracking.has_face, bool).copy()
    ok[covered:] = False
    info = {"moved_frames": 0, "applied": False}
    max_lag = int(max_s * float(fps))
    if ok.sum() < 4 * max(max_lag, 1) or env[ok].std() < 1e-9:
        return values, info | {"reason": "too little dialogue to check"}
    jaw, e = values[ok, JAW], env[ok]
    if jaw.std() < SYNC_MIN_MOTION:
        return values, info | {"reason": "the mouth barely moves: no timing to check"}
    lag, r, r0 = lag_correlation(jaw, e, max_lag)
    half = len(jaw) // 2  # a lag both halves of the line agree on, not a fluke of one stretch
    profiles = [lag_profile(jaw[sl], e[sl], max_lag) for sl in (slice(0, half), slice(half, None))]
    halves = [int(np.nanargmax(pr)) - max_lag if np.isfinite(pr).any() else None for pr in profiles]
    agree = all(_peak_near(pr, lag + max_lag, floor=max(r / 2, pr[max_lag] if np.isfinite(pr[max_lag]) else -1.0))
                for pr in profiles)
    info |= {"lag_best": int(lag), "lag_halves": halves, "halves_agree": agree, "r_best": round(r, 3), "r_lag0": round(r0, 3)}
    if abs(lag) < 2 or not np.isfinite(r0) or r - r0 < SYNC_MIN_GAIN or not agree:
        return values, info
    # moved_frames < 0: the mouth now moves earlier
    return _shift(values, int(lag)), info | {"moved_frames": int(-lag), "seconds": round(-lag / float(fps), 3), "applied": True}


def _peak_near(profile: np.ndarray, i: int, tol: int = 1, floor: float = -1.0) -> bool:
    """Whether ``profile`` (r per lag) has a local maximum above ``floor`` within ``tol`` entries
    of index ``i``."""
    n = len(profile)
    for j in range(max(0, i - tol), min(n, i + tol + 1)):
        v = profile[j]
        if not np.isfinite(v) or v <= floor:
            continue
        nb = [profile[k] for k in (j - 1, j + 1) if 0 <= k < n and np.isfinite(profile[k])]
        if all(v >= w for w in nb):
            return True
    return False


def match_jaw_range(values: np.ndarray, audio: np.ndarray, tracking: Any, own_audio: Any = None,
                    limits: tuple[float, float] = RANGE_GAIN_LIMITS) -> tuple[np.ndarray, dict]:
    """The driven jaw's opening (values above 0, lips together) scaled so that its wide opening
    (95th percentile) while the new dialogue is spoken matches the actor's own while they speak
    in the shot. Closed and pressed lips (<= 0), and pauses in the line, are left as predicted.

    A regression model's output shrinks where it is unsure (a voice, language or recording it
    did not learn from: the model trained on the shot alone opened the jaw 0.61-0.66 of the
    actor's range on Japanese and Mandarin lines). A dubbed line is the same actor in the same
    scene, so their own range of motion is the reference. The gain is clamped to ``limits``:
    it only ever opens more (scaling an overshooting line down, 1.87x the actor's range on talk_c
    + English, measured worse: the renderer and the tracker already compress wide openings)."""
    from dubstudio.driving.a2e_data import silence_mask
    from dubstudio.core.controls import JAW

    n = len(values)
    silent, db = silence_mask(audio, n, tracking.fps)
    speech = ~silent & (db > -60.0)  # the mask's thresholds are relative: digital silence is not speech
    own_ok = np.asarray(tracking.has_face, bool).copy()
    try:
        if own_audio is not None:
            own_ok &= ~silence_mask(as_audio(own_audio), tracking.n_frames, tracking.fps)[0]
    except MediaError:
        pass  # a shot without usable sound: its whole tracked range is the reference
    info = {"gain": 1.0, "applied": False}
    if speech.sum() < 10 or own_ok.sum() < 10:
        return values, info | {"reason": "too little speech to compare"}
    own = float(np.percentile(tracking.controls[own_ok, JAW], 95))
    dub = float(np.percentile(values[speech, JAW], 95))
    if own < 1e-3 or dub < 1e-3:
        return values, info | {"reason": "the jaw does not open"}
    gain = float(np.clip(own / dub, *limits))
    # only while the line is spoken (eased over a few frames): a mouth the model leaves ajar in a
    # pause is not opened further
    from scipy.ndimage import gaussian_filter1d

    w = gaussian_filter1d(np.convolve(speech.astype(np.float64), np.ones(5), mode="same").clip(0, 1), 1.5)
    out = values.copy()
    lo, hi = CONTROL_RANGE[CONTROL_NAMES[JAW]]
    jaw = values[:, JAW]
    out[:, JAW] = np.clip(np.where(jaw > 0, jaw * (1.0 + (gain - 1.0) * w), jaw), lo, hi)
    return out, {"gain": round(gain, 3), "applied": True, "actor_opening": round(own, 3), "driven_opening": round(dub, 3)}


PAUSE_MIN_S = 0.2  # shorter silences are stop closures and breaths inside a phrase: the model's
PAUSE_CLOSE_AFTER_S = 0.04  # the lips close just after the sound stops ...
PAUSE_OPEN_BEFORE_S = 0.12  # ... and part before it starts (visual speech leads the sound)
PAUSE_EASE = 2  # frames


def close_in_pauses(values: np.ndarray, audio: np.ndarray, fps: Any) -> tuple[np.ndarray, dict]:
    """Every control eased to the actor's rest (0: lips together) in the line's pauses.

    A regression model trained on a few seconds of one voice leaves the mouth ajar where nobody
    speaks (the shot's own model: a jaw median of 0.05-0.12 in the silent frames of talk_b's,
    talk_long's and dubber_b's lines, against the actor's own rest of 0.015-0.03; a real speaker's
    mouth is closed there). A pause is a silent run of at least ``PAUSE_MIN_S`` (``silence_mask``'s
    relative thresholds); the mouth closes ``PAUSE_CLOSE_AFTER_S`` after the sound stops and starts
    to open ``PAUSE_OPEN_BEFORE_S`` before it starts again, over ``PAUSE_EASE`` frames."""
    from dubstudio.driving.a2e_data import _runs, eased, silence_mask

    fps = _fps(fps)
    n = len(values)
    silent, db = silence_mask(audio, n, fps, min_run_s=PAUSE_MIN_S)
    if not silent.any() or (~silent).sum() == 0 or db.max() <= -60.0:
        return values, {"frames": 0}
    after, before = int(round(PAUSE_CLOSE_AFTER_S * float(fps))), int(round(PAUSE_OPEN_BEFORE_S * float(fps)))
    closed = np.zeros(n, np.float64)
    for a, b in _runs(silent):
        lo, hi = (a + after if a > 0 else a), (b - before if b < n else b)
        closed[lo:max(lo, hi)] = 1.0
    w = eased(closed, PAUSE_EASE)
    return values * (1.0 - w)[:, None], {"frames": int((w >= 1.0).sum()), "runs": len(_runs(closed > 0))}
