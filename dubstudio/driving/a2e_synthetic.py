"""The built-in person-generic audio model, trained on speech DubStudio synthesises itself.

No talking-face data can ship with DubStudio, but speech with known phones can be made: espeak-ng
(``speech_synth``) speaks made-up words in 22 languages written in Latin script, with 16 voices,
at random rates and pitches, and each line's phones give its mouth curves (``phone_targets``). The
model learns sound -> mouth from that, as ``train_generic`` does from tracked clips, and a dub
then adapts it to the actor on the shot's own audio as it adapts any generic model. Measured
against real speakers' mouths it beats a model trained on the shot alone (BENCHMARKS.md, issue
22); the weights in ``resources/models`` are this module's output (`dubstudio audio2expr train
--synthetic`), trained on nothing but the synthesised lines.
"""

from __future__ import annotations

import random
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from dubstudio.core.jobs import Progress
from dubstudio.driving.a2e_data import ClipData, audio_windows, closure_frames, normalise_gain, silence_mask
from dubstudio.driving.a2e_generic import TrainConfig, TrainResult, fit_generic
from dubstudio.driving.audio2expr import Audio2ExprConfig
from dubstudio.driving.phone_targets import LEAD_S, phone_curves
from dubstudio.driving.speech_synth import SpeechSynthError, synthesise
from dubstudio.nn.audio_features import SAMPLE_RATE

# espeak-ng languages that read Latin-script made-up words by their own spelling rules
LANGUAGES = ("en", "en-us", "de", "es", "fr", "it", "pt", "nl", "pl", "cs", "sv", "fi", "hu", "tr", "id", "ro", "hr",
             "sk", "da", "nb", "ca", "eu")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+klatt",
            "+klatt2", "+klatt3")
_ONSETS = ("", "", "b", "p", "m", "f", "v", "t", "d", "n", "s", "z", "l", "r", "k", "g", "h", "w", "j", "ch", "sh",
           "st", "pr", "bl", "tr", "gr", "pl", "fr", "m", "p", "b")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "au", "ei", "ou", "ee", "oo", "ia", "ie", "ea", "a", "o", "e")
_CODAS = ("", "", "", "n", "m", "s", "t", "r", "l", "k", "p", "nd", "st", "ng")
FPS = Fraction(25)
OTHER_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(30))  # each line also at one of these
# augmentation that carries the synthetic voices towards real recordings (formant warp, masks)
SYNTH_TRAIN = TrainConfig(steps=1500, fps_variants=(), warp=0.1, freq_masks=2, log_every=100, threads=None)
UTTERANCES = 600


def _sentence(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(4, 14)):
        words.append("".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.randint(1, 3))))
        if rng.random() < 0.12:
            words[-1] += ","
    return " ".join(words) + rng.choice((".", ".", "?", "!"))


def synthetic_clips(utterances: int = UTTERANCES, seed: int = 1, lead_s: float = LEAD_S,
                    progress: Progress | None = None) -> list[ClipData]:
    """Training clips of synthesised lines: each at 25 fps and at one other common rate."""
    import soxr

    rng = random.Random(seed)
    clips: list[ClipData] = []
    for i in range(utterances):
        voice = rng.choice(LANGUAGES) + rng.choice(VARIANTS)
        text = " ".join(_sentence(rng) for _ in range(rng.randint(1, 2)))
        line = synthesise(text, voice, rate=rng.randint(120, 230), pitch=rng.randint(20, 85), pitch_range=rng.randint(20, 90))
        other = rng.choice(OTHER_RATES)
        if len(line.audio) < line.sample_rate // 2:
            continue
        audio = soxr.resample(line.audio, line.sample_rate, SAMPLE_RATE).astype(np.float32)
        for fps in (FPS, other):
            n = int(line.duration_s * fps)
            controls = phone_curves(line.phones, line.duration_s, n, float(fps), lead_s).astype(np.float32)
            silent, _ = silence_mask(normalise_gain(audio)[0], n, fps, min_run_s=0.2, margin_s=0.08)
            valid = np.ones(n, bool)
            clips.append(ClipData(voice, fps, audio_windows(audio, n, fps), controls, valid, silent,
                                  closure_frames(controls[:, 0], valid, silent, fps)))
        if progress:
            progress.update(i + 1, utterances)
    if not clips:
        raise SpeechSynthError("espeak-ng produced no usable lines.")
    return clips


def train_synthetic(out: str | Path, utterances: int = UTTERANCES, config: TrainConfig = SYNTH_TRAIN, seed: int = 1,
                    model_config: Audio2ExprConfig = Audio2ExprConfig(), progress: Progress | None = None,
                    resume: bool = True) -> TrainResult:
    """Train the generic model on ``utterances`` synthesised lines and write ``out`` (as
    ``train_generic`` does: resumable, atomic, with a JSON copy of the settings)."""
    progress = progress or Progress()
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        progress.stage("audio2expr: synthesising speech")
        clips = synthetic_clips(utterances, seed, progress=progress)
        native = [c for c in clips if c.fps == FPS]
        info = [{"name": "synthetic speech (espeak-ng)", "utterances": utterances, "seed": seed, "lead_s": LEAD_S,
                 "frames": int(sum(c.n for c in native)), "fps": str(FPS), "languages": list(LANGUAGES),
                 "variants": list(VARIANTS)}]
        return fit_generic(clips, native, info, [], Path(out), replace(config, fps_variants=()), model_config, progress, resume)
    finally:
        torch.set_num_threads(old_threads)
