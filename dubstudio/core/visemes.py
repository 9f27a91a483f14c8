"""Viseme presets: mouth shapes in named-control units, dropped on a frame as one undoable edit.

Named controls are geometric and actor-independent (IOD units, ``face_model``), so one preset
means the same mouth on every actor. A preset lists only the controls that define its shape;
the others keep following the tracked/driven motion.
"""

from __future__ import annotations

from collections.abc import Mapping

from dubstudio.core.curves import ControlCurves, Key, neutral_key
from dubstudio.core.edits import EditHistory, SetKeys

VISEMES: Mapping[str, Mapping[str, float]] = {
    # M/B/P: lips together and pressed.
    "closed": {"jaw_open": 0.0, "lip_press": 0.5, "lip_pucker": 0.0, "upper_lip_raise": 0.0, "lower_lip_depress": 0.0},
    # Ah: open jaw, relaxed lips.
    "ah": {"jaw_open": 0.7, "lip_press": 0.0, "lip_pucker": 0.0},
    # Ee: spread lips, small opening, a hint of smile.
    "ee": {"jaw_open": 0.15, "mouth_width": 0.5, "smile": 0.25, "lip_pucker": 0.0, "lip_press": 0.0},
    # Oh: rounded lips, mid opening.
    "oh": {"jaw_open": 0.4, "lip_pucker": 0.5, "mouth_width": -0.2, "smile": 0.0, "lip_press": 0.0},
    # Oo: strongly rounded, nearly closed.
    "oo": {"jaw_open": 0.15, "lip_pucker": 0.9, "mouth_width": -0.35, "smile": 0.0, "lip_press": 0.0},
    # F/V: lower lip up under the upper teeth, upper lip lifted a little.
    "fv": {"jaw_open": 0.1, "lower_lip_depress": -0.5, "upper_lip_raise": 0.15, "lip_press": 0.0, "lip_pucker": 0.0},
}

ALIASES = {
    "m": "closed", "b": "closed", "p": "closed", "mbp": "closed",
    "a": "ah", "aa": "ah",
    "e": "ee", "i": "ee", "iy": "ee",
    "o": "oh", "ow": "oh",
    "u": "oo", "w": "oo", "uw": "oo",
    "f": "fv", "v": "fv",
}

LABELS = {"closed": "M/B/P", "ah": "Ah", "ee": "Ee", "oh": "Oh", "oo": "Oo", "fv": "F/V"}


def viseme_name(name: str) -> str:
    """Canonical preset name for a name or alias (case-insensitive, '/' ignored: 'F/V' -> 'fv')."""
    n = name.strip().lower().replace("/", "")
    n = ALIASES.get(n, n)
    if n not in VISEMES:
        raise KeyError(f"unknown viseme {name!r}; choose one of {', '.join(VISEMES)}")
    return n


def viseme_edit(curves: ControlCurves, frame: int, name: str, width: int = 2, strength: float = 1.0) -> SetKeys:
    """The keys of a viseme at ``frame`` as one (not yet applied) ``SetKeys``.

    Per control of the preset: a replace key at ``frame`` (value = preset, or with
    ``strength`` < 1 the blend of the current curve value towards it), and neutral keys at
    ``frame ± width`` so the shape eases back into the tracked/driven motion. Neutral keys of
    earlier visemes inside the new footprint are removed, and no ease key is added where another
    key is nearer or where it would fall inside another viseme's footprint, so overlapping
    visemes flow into each other instead of dipping back to the underlying curve between them."""
    key_name = viseme_name(name)
    frame = curves.check_frame(int(frame))
    if width < 0 or int(width) != width:
        raise ValueError(f"viseme width must be an integer >= 0, got {width!r}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"viseme strength must lie in [0, 1], got {strength!r}")
    width = int(width)
    changes: list[tuple[int, int, Key | None]] = []
    for control, target in VISEMES[key_name].items():
        if control not in curves.names:
            continue
        ci = curves.index(control)
        value = target if strength == 1.0 else (1 - strength) * float(curves.evaluate(ci)[frame]) + strength * target
        changes.append((ci, frame, Key(frame, value, "smooth", "replace")))
        if width == 0:
            continue
        lo, hi = frame - width, frame + width
        kept = []
        for k in curves.keys(ci):
            if lo < k.frame < hi and k.frame != frame and k.neutral:
                changes.append((ci, k.frame, None))
            elif k.frame != frame:
                kept.append(k)
        # An ease key is left out where a key already sits between it and the frame, or where it
        # would land inside another shaped key's footprint (within ``width`` of it).
        if lo >= 0 and not any(lo <= k.frame < frame or (not k.neutral and lo - width < k.frame < lo) for k in kept):
            changes.append((ci, lo, neutral_key(lo)))
        if hi < curves.n_frames and not any(frame < k.frame <= hi or (not k.neutral and hi < k.frame < hi + width) for k in kept):
            changes.append((ci, hi, neutral_key(hi)))
    return SetKeys(changes, f"Insert viseme {LABELS[key_name]} at {frame}")


def insert_viseme(
    curves: ControlCurves,
    frame: int,
    name: str,
    width: int = 2,
    strength: float = 1.0,
    history: EditHistory | None = None,
) -> SetKeys:
    """Insert a viseme as ONE edit: pushed on ``history`` (undoable) or applied directly."""
    edit = viseme_edit(curves, frame, name, width, strength)
    if history is not None:
        history.push(edit)
    else:
        edit.apply(curves)
    return edit


def visemes_edit(curves: ControlCurves, keys, width: int = 2, text: str | None = None) -> SetKeys:
    """Several visemes ((frame, name), ...) as ONE edit, each placed as ``viseme_edit`` places it
    (in order, so neighbours flow into each other). Frames outside the shot are skipped."""
    work = curves.copy()
    touched: set[tuple[int, int]] = set()
    n = 0
    for frame, name in keys:
        if not 0 <= int(frame) < curves.n_frames:
            continue
        edit = viseme_edit(work, int(frame), name, width)
        edit.apply(work)
        touched.update((work.index(c), int(f)) for c, f, _ in edit.changes)
        n += 1
    changes = [(ci, f, work.key_at(ci, f)) for ci, f in sorted(touched) if work.key_at(ci, f) != curves.key_at(ci, f)]
    return SetKeys(changes, text or f"Insert {n} visemes")
