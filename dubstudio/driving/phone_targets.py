"""Phones (IPA, with start times) -> mouth control curves: the targets the built-in audio model
learns from synthesised speech (``a2e_synthetic``).

Each phone gets a mouth shape in named-control units, by what the IPA symbol says about the
mouth and not by language: a vowel's height sets the jaw (open /a/ most, close /i u/ least), its
rounding the pucker, a front unrounded vowel spreads the lips; /p b m/ close and press the lips,
/f v/ tuck the lower lip, /w/ rounds; tongue consonants leave the jaw nearly closed and the lips
to their neighbours; /h/ and the glottal stop take their neighbours' shape. A vowel's shape sits
at the middle of its sound (a diphthong's two parts at its quarters), a lip closure holds over
most of its phone, and a pause of PAUSE_S or more rests the mouth (all controls 0, the actor's
rest). The keys are joined linearly and smoothed (coarticulation), and sampled LEAD_S earlier
than the sound: visual speech leads the acoustics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from dubstudio.core.controls import CONTROL_NAMES

PAUSE_S = 0.12
SMOOTH_S = 0.03  # Gaussian sigma of the coarticulation smoothing
LEAD_S = 0.04  # the mouth shape is where the sound will be this much later (av_offset.NATURAL_LEAD_S)
_J, _W, _P, _LLD, _PRESS = (CONTROL_NAMES.index(n) for n in ("jaw_open", "mouth_width", "lip_pucker", "lower_lip_depress", "lip_press"))

_VOWEL_JAW = {**dict.fromkeys("aɑæɐɶä", 0.65), **dict.fromkeys("ɛεœʌɜɞɔɒ", 0.45), **dict.fromkeys("əɘɵeøoɤ", 0.30),
              **dict.fromkeys("ɪʏʊ", 0.18), **dict.fromkeys("iyɨʉɯu", 0.12)}
_ROUND = {"o": .6, "ɔ": .5, "u": .9, "ʊ": .7, "y": .8, "ʏ": .7, "ø": .7, "œ": .5, "ɒ": .5, "ɶ": .4, "ɞ": .4, "ʉ": .8,
          "ɵ": .6, "w": .9, "ɥ": .9}
_SPREAD = {"i": .5, "ɪ": .4, "e": .4, "ɛ": .3, "ε": .3, "æ": .3, "ɨ": .2}
# consonants: (jaw, width, pucker, lower-lip tuck, press); None leaves a control to the neighbours
_CONSONANT = {**dict.fromkeys("pbmɓʙ", (0.0, 0.0, 0.0, 0.0, 0.5)), "β": (0.03, 0.0, 0.0, 0.0, 0.0),
              **dict.fromkeys("fvɱʋ", (0.06, 0.0, 0.0, -0.5, 0.0)), **dict.fromkeys("wɥ", (0.10, -0.3, 0.9, 0.0, 0.0)),
              **dict.fromkeys("ʃʒɕʑ", (0.08, -0.1, 0.4, 0.0, 0.0)),
              **dict.fromkeys("szθðtdnlrɹɾʀʁɬɫʂʐɳɭɽ", (0.09, 0.0, None, 0.0, 0.0)),
              **dict.fromkeys("kgɡŋxɣqχçjʝɲʎɰɟc", (0.15, 0.0, None, 0.0, 0.0)),
              **dict.fromkeys("hʔɦħʕ?", (None, None, None, None, None))}
_CLOSURES = set("pbmɓʙ")
SET_CONTROLS = (_J, _W, _P, _LLD, _PRESS)  # the controls phones set (the others stay at 0)


def _symbols(phone: str) -> list[str]:
    """The base symbols of one phone event (diacritics, stress and language tags dropped)."""
    phone = re.sub(r"\(.*?\)", "", phone)
    return [c for c in phone if c in _VOWEL_JAW or c in _CONSONANT]


def _shape(c: str) -> tuple:
    """(jaw, width, pucker, lower-lip tuck, press) of one symbol."""
    if c in _VOWEL_JAW:
        r = _ROUND.get(c, 0.0)
        return (_VOWEL_JAW[c], _SPREAD.get(c, 0.0) - 0.5 * r, r, 0.0, 0.0)
    shape = _CONSONANT[c]
    return shape if c not in _ROUND or shape[2] is not None else (shape[0], shape[1], _ROUND[c], shape[3], shape[4])


def phone_keys(phones: Sequence[tuple[float, str]], duration_s: float) -> list[tuple[float, tuple]]:
    """[(time, shape)] keys of a line's phones; a shape's None leaves that control free."""
    rest = (0.0,) * 5
    keys = [(0.0, rest)]
    events = list(phones) + [(duration_s, "")]
    for (t, ph), (t2, _) in zip(events[:-1], events[1:]):
        d = max(t2 - t, 1e-3)
        parts = _symbols(ph)
        if not parts:
            if d >= PAUSE_S:
                keys += [(t + 0.04, rest), (t2 - 0.04, rest)]
            continue
        vowels = [c for c in parts if c in _VOWEL_JAW]
        if not vowels and parts[0] in _CLOSURES:
            keys += [(t + 0.15 * d, _shape(parts[0])), (t + 0.85 * d, _shape(parts[0]))]
            continue
        seq = vowels or parts[-1:]
        keys += [(t + d * (i + 0.5) / len(seq), _shape(c)) for i, c in enumerate(seq)]
    keys.append((duration_s, rest))
    return keys


_LABIODENTAL = set("fvɱ")


def phone_visemes(phones: Sequence[tuple[float, str]], duration_s: float) -> list[tuple[float, str]]:
    """[(time, viseme)] of the line's lip contacts, the shapes a viewer checks a dub by: the middle
    of each lip closure (/p b m/, "closed") and lip-teeth contact (/f v/, "fv"), at the time of
    the sound. Vowels are left to the curves: their opening is the actor's, not a preset's."""
    out = []
    events = list(phones) + [(duration_s, "")]
    for (t, ph), (t2, _) in zip(events[:-1], events[1:]):
        parts = _symbols(ph)
        if not parts or any(c in _VOWEL_JAW for c in parts):
            continue
        name = "closed" if parts[0] in _CLOSURES else "fv" if parts[0] in _LABIODENTAL else None
        if name is not None:
            out.append((t + 0.5 * max(t2 - t, 0.0), name))
    return out


def phone_curves(phones: Sequence[tuple[float, str]], duration_s: float, n_frames: int, fps: float,
                 lead_s: float = LEAD_S, smooth_s: float = SMOOTH_S) -> np.ndarray:
    """(n_frames, len(CONTROL_NAMES)) control curves of a line's phones: frame i shows the mouth
    of the sound at i / fps + lead_s. Controls no phone sets (upper lip, smile) stay at 0."""
    keys = phone_keys(phones, duration_s)
    hz = 200.0
    grid = np.arange(0.0, max(duration_s, (n_frames - 1) / fps + lead_s) + 0.1, 1 / hz)
    sigma = smooth_s * hz
    times = np.arange(n_frames) / fps + lead_s
    out = np.zeros((n_frames, len(CONTROL_NAMES)))
    for ch, control in enumerate(SET_CONTROLS):
        kt = np.array([t for t, s in keys if s[ch] is not None])
        kv = np.array([s[ch] for t, s in keys if s[ch] is not None])
        order = np.argsort(kt, kind="stable")
        g = np.interp(grid, kt[order], kv[order])
        g = gaussian_filter1d(g, sigma, mode="nearest", truncate=3.0)
        out[:, control] = np.interp(times, grid, g)
    return out
