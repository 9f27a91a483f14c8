"""The dub's script aligned to its recording: which phone is spoken when.

Studios have the translated text of every line. espeak-ng (``speech_synth``) speaks the text in
the line's language and says when each of its phones starts; dynamic time warping of that
synthesised line against the recording maps each phone onto the recording's time line, as subtitle
aligners such as aeneas do with MFCCs. The warp compares the built-in audio model's hidden features
instead (``_hidden``): that network learned to hear phones across 16 voices and 22 languages, and
the phones it places follow real mouths closer (talk_a r 0.39 -> 0.46, talk_c 0.46 -> 0.58 at lag 0;
docs/decisions.md, nineteenth session). MFCCs remain the fallback when the model file is missing.
``phone_targets`` then turns the phones into mouth curves: the mouth a phone needs, whether or not the sound alone would tell the audio model (a /p b m/
closure is nearly silent; a vowel's openness is in its formants, which vary by voice).

The synthesised line is spoken at the recording's own pace (its speech time over the text's
length at espeak's default rate), so the warp only has to follow the actor's rhythm.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from dubstudio.core.controls import JAW
from dubstudio.core.errors import DubStudioError
from dubstudio.driving.speech_synth import SpeechSynthError, synthesise
from dubstudio.nn.audio_features import SAMPLE_RATE

HOP_S = 0.01  # alignment resolution (10 ms)
N_MFCC = 20
BASE_RATE = 170  # espeak-ng words a minute for the first pass
RATE_LIMITS = (80, 450)
SILENCE_DB = -35.0  # frames this far below the line's loudest 10 % are not speech ...
FLOOR_DB = -60.0  # ... nor any below this level (mel power, full scale ~ +30 dB): digital silence
ENERGY_WEIGHT = 3.0  # how strongly speech/silence must match in the warp, against the spectrum
MAX_LINE_S = 60.0  # the warp holds (line x recording) steps at 100 Hz in memory: ~0.9 GB at 60 s


class ScriptError(DubStudioError):
    """The script cannot be aligned to the recording."""


@dataclass
class AlignedScript:
    phones: list[tuple[float, str]]  # (start in the recording, seconds; IPA), "" a pause or word boundary
    duration_s: float  # the recording's length
    language: str
    speech_s: tuple[float, float]  # first and last speech frame of the recording
    cost: float  # mean per-step distance along the warp (0 = identical features)
    rate: int  # espeak-ng's rate the line was spoken at
    features: str = "network"
    words: list[tuple[float, str]] = field(default_factory=list)  # (start in the recording, the word as written)

    def metadata(self) -> dict:
        return {"language": self.language, "phones": sum(bool(p) for _, p in self.phones), "rate": self.rate,
                "speech_s": [round(self.speech_s[0], 3), round(self.speech_s[1], 3)], "cost": round(self.cost, 4), "features": self.features}


@functools.lru_cache(maxsize=1)
def _network():
    """The built-in audio model's network (its hidden features are the warp's), or None; loaded once."""
    from dubstudio.driving.a2e_generic import builtin_generic_path, load_generic

    path = builtin_generic_path(respect_switch=False)
    return load_generic(path).model if path is not None else None


def _features(audio: np.ndarray, sr: int, net=None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, D + 1) per-frame features, each normalised over the line, plus a weighted loudness,
    and the per-frame speech mask. D: the network's hidden features, or N_MFCC MFCCs (c0 dropped)."""
    import librosa

    hop = int(round(HOP_S * sr))
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=int(0.025 * sr) * 2, hop_length=hop, n_mels=40, fmin=60, fmax=min(7600, sr / 2))
    db = librosa.power_to_db(mel + 1e-10)
    mfcc = librosa.feature.mfcc(S=db, n_mfcc=N_MFCC + 1)[1:]
    mfcc = (mfcc - mfcc.mean(1, keepdims=True)) / (mfcc.std(1, keepdims=True) + 1e-6)
    level = librosa.power_to_db(mel.sum(0) + 1e-10)
    loud = level - np.percentile(level, 90)
    speech = (loud > SILENCE_DB) & (level > FLOOR_DB)
    energy = np.clip(loud, SILENCE_DB - 10, 0) / 10.0  # silence ~ -4.5, speech ~ 0
    feats = mfcc.T
    if net is not None:
        feats = _hidden(net, audio, sr, mfcc.shape[1])
        # as many dimensions' worth as the MFCCs, so the loudness weighs the same against either
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6) / np.sqrt(feats.shape[1] / N_MFCC)
    return np.hstack([feats, ENERGY_WEIGHT * energy[:, None]]).astype(np.float64), speech


def _hidden(net, audio: np.ndarray, sr: int, n: int) -> np.ndarray:
    """(n, width) the network's features after its temporal blocks, every HOP_S."""
    import soxr
    import torch

    from dubstudio.driving.a2e_data import audio_windows

    a = audio if sr == SAMPLE_RATE else soxr.resample(audio, sr, SAMPLE_RATE).astype(np.float32)
    w = torch.from_numpy(np.ascontiguousarray(audio_windows(a, n, round(1 / HOP_S)), np.float32))
    with torch.no_grad():
        f = net.encoder(w)
        return net.blocks(f.T[None])[0].T.numpy().astype(np.float64)


def _speech_span(speech: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(speech)
    if len(idx) == 0:
        raise ScriptError("the recording has no speech to align the script to (it is silent).")
    return int(idx[0]), int(idx[-1]) + 1


def align_script(text: str, audio: np.ndarray, language: str = "en", sample_rate: int = SAMPLE_RATE,
                 features: str = "network") -> AlignedScript:
    """Each phone of ``text`` (said in ``language``, an espeak-ng voice: "de", "fr", "en-us", ...)
    placed on ``audio``'s time line (mono, ``sample_rate``). ``features``: "network" (the built-in
    model's, MFCCs when it is missing) or "mfcc"."""
    import librosa
    import soxr

    text = " ".join(str(text).split())
    if not any(ch.isalnum() for ch in text):
        raise ScriptError("the script is empty: give the line's words (--text or --text-file).")
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or len(audio) < sample_rate * 0.2:
        raise ScriptError("the recording is shorter than 0.2 s: nothing to align the script to.")
    if len(audio) > sample_rate * MAX_LINE_S:
        raise ScriptError(f"a script aligns to one line's recording, up to {MAX_LINE_S:.0f} s; this one is "
                          f"{len(audio) / sample_rate:.0f} s: cut the line out of the stem first.")
    net = _network() if features == "network" else None
    rec, rec_speech = _features(audio, sample_rate, net)
    r0, r1 = _speech_span(rec_speech)
    try:
        line = synthesise(text, language, rate=BASE_RATE)
    except SpeechSynthError as e:
        raise ScriptError(f"the script cannot be spoken in {language!r}: {e}") from e
    syn_audio = soxr.resample(line.audio, line.sample_rate, sample_rate).astype(np.float32)
    s0, s1 = _speech_span(_features(syn_audio, sample_rate)[1])
    # say it again at the recording's pace: a warp that only follows rhythm aligns better
    rate = int(np.clip(round(BASE_RATE * (s1 - s0) / max(r1 - r0, 1)), *RATE_LIMITS))
    if abs(rate - BASE_RATE) > 5:
        line = synthesise(text, language, rate=rate)
        syn_audio = soxr.resample(line.audio, line.sample_rate, sample_rate).astype(np.float32)
    syn, syn_speech = _features(syn_audio, sample_rate, net)
    s0, s1 = _speech_span(syn_speech)
    # speech to speech: the silences around either are not part of the warp
    cost, path = librosa.sequence.dtw(X=syn[s0:s1].T, Y=rec[r0:r1].T, metric="euclidean", backtrack=True)
    path = path[::-1]  # from the start, both indices non-decreasing
    _, first = np.unique(path[:, 0], return_index=True)
    first_rec = path[first, 1]  # the recording frame where each synthesised frame begins
    hop = HOP_S

    def placed(t: float) -> float:
        """A time of the synthesised line -> the recording's time."""
        k = int(round(t / hop)) - s0
        if k < 0:
            tt = r0 * hop + t - s0 * hop
        elif k >= len(first_rec):
            tt = r1 * hop + t - s1 * hop
        else:
            tt = (r0 + first_rec[k]) * hop
        return float(np.clip(tt, 0.0, len(audio) / sample_rate))

    phones = sorted(((placed(t), ph) for t, ph in line.phones), key=lambda p: p[0])
    words = sorted(((placed(t), w) for t, w in line.words), key=lambda p: p[0])
    steps = max(len(path), 1)
    return AlignedScript(phones, len(audio) / sample_rate, language, (r0 * hop, r1 * hop),
                         float(cost[-1, -1] / steps / syn.shape[1]), rate, "network" if net is not None else "mfcc", words)


SCRIPT_WEIGHT = 0.5  # the script's share of the driven mouth; the audio model keeps the rest
# Below this r between the script's jaw and the audio model's, the script is probably not this
# line's: on four clips their own scripts agreed at 0.41-0.80, other clips' scripts at 0.06-0.65
# (four of six below 0.3). A warning, not a refusal: the warp fits any text to any speech.
SCRIPT_AGREE_MIN = 0.3


def blend_script(values: np.ndarray, script: AlignedScript, fps: float, offset_s: float = 0.0,
                 weight: float = SCRIPT_WEIGHT) -> tuple[np.ndarray, dict]:
    """The audio model's ``values`` (n, C) blended with the mouth the aligned script's phones ask
    for (``phone_targets``); frame i hears the recording at i / fps + offset_s (``predict_curves``'
    convention). The phones' curves are in the built-in model's units, not this actor's: over the
    frames that hear the line's speech, each control the phones set is matched to the audio
    model's mean and spread there, so the actor's range stays the adaptation's. Alone the phones
    follow real mouths less well than the audio model (talk_c r 0.58 against 0.60), half and half
    better than either (0.65; decisions.md, nineteenth session)."""
    from dubstudio.driving.a2e_data import eased
    from dubstudio.driving.phone_targets import LEAD_S, SET_CONTROLS, phone_curves, phone_visemes

    n = len(values)
    shifted = [(t - offset_s, p) for t, p in script.phones]
    target = phone_curves(shifted, script.duration_s - offset_s, n, fps)
    t = np.arange(n) / fps + offset_s
    speech = (t >= script.speech_s[0]) & (t <= script.speech_s[1])
    out = np.array(values, np.float64, copy=True)
    if speech.sum() < 3:
        return out, {"applied": False, "reason": "the shot hears less than 3 frames of the line's speech"}
    share = weight * eased(speech.astype(np.float64), ease=3)  # no step where the speech starts or ends
    jaw_s, jaw_a = target[speech, JAW], out[speech, JAW]  # does the script's jaw move with the sound's?
    agree = float(np.corrcoef(jaw_s, jaw_a)[0, 1]) if jaw_s.std() > 1e-6 and jaw_a.std() > 1e-6 else float("nan")
    blended = []
    for c in SET_CONTROLS:
        s, a = target[speech, c], out[speech, c]
        if s.std() < 1e-6:
            continue
        mapped = (target[:, c] - s.mean()) / s.std() * a.std() + a.mean()
        out[:, c] = (1 - share) * out[:, c] + share * mapped
        blended.append(c)
    words = [[round(t - offset_s, 3), w] for t, w in script.words]  # in shot time, for the editor's timeline
    # the lip contacts as the shot time of the frame that shows them (the mouth leads the sound)
    visemes = [[round(t - offset_s - LEAD_S, 3), v] for t, v in phone_visemes(script.phones, script.duration_s)
               if 0 <= t - offset_s - LEAD_S < n / fps]
    meta = {"applied": bool(blended), "weight": weight, "frames": int(speech.sum()), **script.metadata(), "words": words,
            "visemes": visemes,
            "agreement": round(agree, 3) if np.isfinite(agree) else None}
    if np.isfinite(agree) and agree < SCRIPT_AGREE_MIN:
        meta["warning"] = (f"the script's mouth and the sound's agree poorly (r {agree:.2f}): check that the script is "
                           f"this line's and in {script.language!r}")
    return out, meta
