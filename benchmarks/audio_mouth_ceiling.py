"""How much of a real speaker's mouth their own sound explains: the ceiling of any audio-driven dub
on the speaker-sync measure (issue 22).

    .venv/bin/python benchmarks/audio_mouth_ceiling.py --clips talk_a,talk_b,talk_c,talk_long,dubber_a,dubber_b,talk_d \
        [--json OUT]

For each clip of ../shared/data/media: the mouth opening per frame with the measure of
`../shared/tools/mouth_vs_speaker.py` (its own code, imported), and the clip's own audio as 40 log-mel
bands per frame with +-8 frames of context. Then Pearson r between the mouth and:

- ``envelope``: the 1-3 kHz loudness envelope at lags -2..+6 (> 0: the mouth leads the sound);
- ``ridge_within``: a linear map (ridge regression) fitted on one half of the clip and scored on the
  other half, both ways, averaged: the same voice, the same recording, the same person's mouth, so an
  optimistic bound for a model trained on the shot alone;
- ``ridge_others``: the same map fitted on all the other clips and scored on this one: a
  person-generic linear model that has not heard this voice;
- ``silent_variance_share``: the share of the mouth's variance (about its mean) in frames where the clip is silent (a pause of
  0.2 s or more): mouth motion no sound can predict (a smile, a breath, a held open mouth).

No weights are trained or kept; the fits live in memory. A speaker whose sound trails their picture
is corrected (talk_c: 6 frames, as in the speaker-sync bench).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT.parent / "shared" / "tools" / "mouth_vs_speaker.py"
SPEAKER_AV_OFFSET = {"talk_c": 6}
CONTEXT = 8  # mel frames either side (+-0.32 s at 25 fps)
RIDGE = 300.0


def _z(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64).copy()
    v[~np.isfinite(v)] = np.nanmean(v)
    return (v - v.mean()) / (v.std() + 1e-9)


def _mel(path: Path, n: int, fps: float, k: int) -> np.ndarray:
    import librosa

    from dubstudio.io.audio import load_audio

    sr = 16000
    y = load_audio(path, sr=sr)
    m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=int(round(sr / fps)), n_mels=40)
    m = np.log(m + 1e-6).T
    m = (m - m.mean(0)) / (m.std(0) + 1e-6)
    m = m[k:]  # the sound trails the picture by k frames: sound frame i + k goes with picture frame i
    if len(m) < n:
        m = np.pad(m, ((0, n - len(m)), (0, 0)), mode="edge")
    m = m[:n]
    idx = np.clip(np.arange(n)[:, None] + np.arange(-CONTEXT, CONTEXT + 1)[None, :], 0, n - 1)
    return m[idx].reshape(n, -1)


def _ridge(x: np.ndarray, y: np.ndarray):
    xm, ym = x.mean(0), y.mean()
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + RIDGE * np.eye(x.shape[1]), xc.T @ (y - ym))
    return lambda z: (z - xm) @ w + ym


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def _lag_r(mouth: np.ndarray, env: np.ndarray, lag: int) -> float:
    """r of mouth[i] against env[i + lag] (lag > 0: the mouth leads the sound)."""
    n = len(mouth)
    x, y = (mouth[: n - lag], env[lag:]) if lag >= 0 else (mouth[-lag:], env[: n + lag])
    return _r(x, y)


TRUTH_CONTEXT = 2  # mel frames either side of each lag in the sync profile
TRUTH_MIN_R = 0.4  # both halves' held-out r at the peak: the speaker's sound clearly predicts their mouth


def speaker_truth(mouth: np.ndarray, audio: np.ndarray, fps: float, reach: tuple[int, int] = (-10, 12)) -> dict:
    """Is a clip ground truth for the speaker-sync measure, and at what offset?

    The clip's own mouth (the tool's measure) against its own sound: a ridge map from 40 log-mel
    bands (+-TRUTH_CONTEXT frames) around each lag, fitted on one half and scored on the other,
    both ways. The peak lag is how many frames the sound trails the picture (a mouth leading its
    sound a little is part of it: in-sync clips peak at 0-2); a speaker whose sound predicts their
    mouth on both halves at r >= TRUTH_MIN_R is ground truth, at that offset. Independent of
    DubStudio's models and tracking (the tool's mouth, librosa's mel)."""
    import librosa

    y = _z(mouth)
    n = len(y)
    m = librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=1024, hop_length=int(round(16000 / fps)), n_mels=40)
    m = np.log(m + 1e-6).T
    m = (m - m.mean(0)) / (m.std(0) + 1e-6)
    profile = {}
    h = n // 2
    for lag in range(reach[0], reach[1] + 1):
        idx = np.clip(np.arange(n)[:, None] + lag + np.arange(-TRUTH_CONTEXT, TRUTH_CONTEXT + 1)[None, :], 0, len(m) - 1)
        x = m[idx].reshape(n, -1)
        rs = []
        for tr, te in ((slice(0, h), slice(h, n)), (slice(h, n), slice(0, h))):
            mu = x[tr].mean(0)
            xt = x[tr] - mu
            w = np.linalg.solve(xt.T @ xt + len(xt) * np.eye(x.shape[1]), xt.T @ (y[tr] - y[tr].mean()))
            rs.append(float(np.corrcoef((x[te] - mu) @ w, y[te])[0, 1]))
        profile[lag] = (float(np.mean(rs)), min(rs))
    peak = max(profile, key=lambda k: profile[k][0])
    return {"offset_frames": peak, "r": round(profile[peak][0], 3), "r_worse_half": round(profile[peak][1], 3),
            "r_at_0": round(profile[0][0], 3), "ground_truth": profile[peak][1] >= TRUTH_MIN_R,
            "profile": {k: round(v[0], 3) for k, v in profile.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="talk_a,talk_b,talk_c,talk_long,dubber_a,dubber_b,talk_d")
    ap.add_argument("--json")
    args = ap.parse_args()
    sys.path.insert(0, str(TOOL.parent))
    from mouth_vs_speaker import mouth

    from dubstudio.core.paths import media_dir
    from dubstudio.driving.a2e_data import silence_mask
    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import VideoReader
    from dubstudio.nn.audio_features import speech_envelope

    media = media_dir()
    data = {}
    for c in args.clips.split(","):
        path = media / f"{c}.mp4"
        with VideoReader(path) as r:
            fps = r.fps
        y = _z(mouth(str(path)))
        n, k = len(y), SPEAKER_AV_OFFSET.get(c, 0)
        a = load_audio(path, sr=16000)
        env = np.log(speech_envelope(a, n + k, fps, band=(1000.0, 3000.0)).astype(np.float64) + 1e-6)[k:]
        silent = silence_mask(a, n + k, fps, min_run_s=0.2)[0][k:]
        data[c] = {"x": _mel(path, n, float(fps), k), "y": y, "env": env, "silent": silent,
                   "truth": speaker_truth(y, a, float(fps))}
    rows = {}
    for c, d in data.items():
        y, x, h = d["y"], d["x"], len(d["y"]) // 2
        within = [_r(_ridge(x[a], y[a])(x[b]), y[b]) for a, b in ((slice(0, h), slice(h, None)), (slice(h, None), slice(0, h)))]
        others = [o for o in data if o != c]
        fit = _ridge(np.concatenate([data[o]["x"] for o in others]), np.concatenate([data[o]["y"] for o in others]))
        sil = d["silent"]
        rows[c] = {
            "frames": len(y),
            "envelope_r_by_lag": {lag: _lag_r(y, d["env"], lag) for lag in range(-2, 7)},
            "ridge_within": round(float(np.mean(within)), 3),
            "ridge_others": _r(fit(x), y),
            "silent_frames": int(sil.sum()),
            "silent_variance_share": round(float((y[sil] ** 2).sum() / (y**2).sum()), 3) if sil.any() else 0.0,
            "truth": d["truth"],
        }
        print(c, json.dumps(rows[c]), flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "clips": rows,
              "median_ridge_within": round(float(np.median([r["ridge_within"] for r in rows.values()])), 3),
              "median_ridge_others": round(float(np.median([r["ridge_others"] for r in rows.values()])), 3)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
