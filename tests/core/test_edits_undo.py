"""Edits revert bit for bit, EditHistory undo/redo/merge/clean state, range reset to tracked."""

from __future__ import annotations

import numpy as np
import pytest

from dubstudio.core.curves import INTERPOLATIONS, MODES, ControlCurves, Key
from dubstudio.core.edits import (
    DeleteKey,
    Edit,
    EditHistory,
    MoveKey,
    ResetRange,
    SetDriven,
    SetKey,
    SetKeys,
)
from dubstudio.core.visemes import VISEMES, viseme_edit, visemes_edit
from dubstudio.core.controls import CONTROL_NAMES

N = 90
JAW = "jaw_open"


def tracked(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(0.05 * rng.standard_normal((N, len(CONTROL_NAMES))), axis=0)


def state(c: ControlCurves) -> tuple:
    return (
        c.all_keys(),
        [c.driven(i).tobytes() for i in range(c.n_controls)],
        [c.driven_weight(i).tobytes() for i in range(c.n_controls)],
        [c.driven_source(i) for i in range(c.n_controls)],
        c.evaluate_all().tobytes(),
    )


def random_edit(c: ControlCurves, rng: np.random.Generator) -> Edit:
    ctrl = CONTROL_NAMES[rng.integers(len(CONTROL_NAMES))]
    keys = c.keys(ctrl)

    def key(frame: int) -> Key:
        return Key(frame, float(rng.uniform(-1.5, 1.5)), str(rng.choice(INTERPOLATIONS)), str(rng.choice(MODES)))

    kind = rng.integers(7)
    if kind == 0 or (kind in (1, 2) and not keys):
        return SetKey(ctrl, key(int(rng.integers(N))))
    if kind == 1:
        k = keys[rng.integers(len(keys))]
        return MoveKey(ctrl, k.frame, int(rng.integers(N)), float(rng.uniform(-1, 1)) if rng.random() < 0.5 else None)
    if kind == 2:
        return DeleteKey(ctrl, keys[rng.integers(len(keys))].frame)
    if kind == 3:
        frames = rng.integers(N, size=rng.integers(1, 6))
        return SetKeys([(CONTROL_NAMES[rng.integers(7)], int(f), key(int(f)) if rng.random() < 0.8 else None) for f in frames])
    if kind == 4:
        a = int(rng.integers(N))
        b = int(rng.integers(a + 1, N + 1))
        ctrls = None if rng.random() < 0.2 else list(rng.choice(CONTROL_NAMES, size=rng.integers(1, 4), replace=False))
        return ResetRange(ctrls, a, b)
    if kind == 5:
        a = int(rng.integers(N - 1))
        length = int(rng.integers(1, N - a + 1))
        ctrls = list(rng.choice(CONTROL_NAMES, size=rng.integers(1, 3), replace=False))
        w = rng.uniform(0, 1, length) if rng.random() < 0.5 else 1.0
        src = str(rng.choice(["audio:a.wav", "dubber:b.mp4"])) if rng.random() < 0.7 else None
        return SetDriven(ctrls, rng.normal(0.3, 0.3, (length, len(ctrls))), a, w, src)
    return viseme_edit(c, int(rng.integers(N)), str(rng.choice(list(VISEMES))), int(rng.integers(0, 4)), float(rng.uniform(0.3, 1)))


@pytest.mark.parametrize("seed", range(6))
def test_every_edit_reverts_and_reapplies_bit_identically(seed):
    rng = np.random.default_rng(seed)
    c = ControlCurves(tracked(seed), ease_frames=int(rng.integers(0, 5)))
    original_tracked = c.tracked.copy()
    spans: list[tuple[str, int, int]] = []
    c.changed.connect(lambda name, a, b: spans.append((name, a, b)))
    for _ in range(60):
        edit = random_edit(c, rng)
        before, before_eval = state(c), c.evaluate_all()
        spans.clear()
        edit.apply(c)
        after, after_eval = state(c), c.evaluate_all()
        # changed() covers every frame whose value moved, once per control.
        names = [s[0] for s in spans]
        assert len(names) == len(set(names))
        for ci in np.flatnonzero(np.any(before_eval != after_eval, axis=0)):
            hit = [s for s in spans if s[0] == CONTROL_NAMES[ci]]
            frames = np.flatnonzero(before_eval[:, ci] != after_eval[:, ci])
            assert hit and hit[0][1] <= frames.min() and frames.max() < hit[0][2], (edit, hit, frames)
        edit.revert(c)
        assert state(c) == before, edit
        edit.apply(c)
        assert state(c) == after, edit
        assert np.array_equal(c.tracked, original_tracked)
    ResetRange().apply(c)
    assert np.array_equal(c.evaluate_all(), original_tracked)
    assert c.all_keys() == {} and not c.is_edited()


def test_history_undo_redo_of_random_sequences_returns_to_each_state():
    rng = np.random.default_rng(42)
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    states = [state(c)]
    for _ in range(40):
        hist.push(random_edit(c, rng))
        states.append(state(c))
    for i in range(40, 0, -1):
        assert state(c) == states[i]
        hist.undo()
    assert state(c) == states[0] and not hist.can_undo and hist.undo() is None
    for i in range(1, 41):
        hist.redo()
        assert state(c) == states[i]
    assert not hist.can_redo and hist.redo() is None


def test_undo_stack_texts_flags_and_redo_truncation():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    events = []
    hist.changed.connect(lambda: events.append("changed"))
    assert not hist.can_undo and hist.undo_text == ""
    hist.push(SetKey(JAW, Key(10, 0.5)))
    hist.push(DeleteKey(JAW, 10))
    assert hist.undo_text == "Delete jaw_open key at 10"
    hist.undo()
    assert hist.can_redo and hist.redo_text == "Delete jaw_open key at 10"
    hist.push(SetKey("smile", Key(3, 0.2)))
    assert not hist.can_redo and len(hist) == 2 and hist.undo_text == "Set smile key at 3"
    assert events == ["changed"] * 4
    with pytest.raises(KeyError):
        hist.push(DeleteKey(JAW, 77))  # failed edits are not recorded
    assert len(hist) == 2


def test_clean_marker_follows_undo_and_becomes_unreachable_after_branching():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    flips = []
    hist.clean_changed.connect(flips.append)
    assert hist.is_clean
    hist.push(SetKey(JAW, Key(1, 0.1)))
    hist.push(SetKey(JAW, Key(2, 0.2)))
    hist.set_clean()
    hist.undo()
    assert not hist.is_clean
    hist.redo()
    assert hist.is_clean
    hist.undo()
    hist.push(SetKey(JAW, Key(9, 0.9)))  # the saved state is gone from the stack
    hist.undo()
    assert not hist.is_clean
    assert flips == [False, True, False, True, False]


def test_undo_limit_drops_the_oldest_edits():
    c = ControlCurves(tracked())
    hist = EditHistory(c, limit=3)
    for f in range(5):
        hist.push(SetKey(JAW, Key(f, 0.1 * f)))
    while hist.undo():
        pass
    assert [k.frame for k in c.keys(JAW)] == [0, 1]


def drag(hist: EditHistory, frames: list[int], values: list[float], token: object) -> None:
    for (f0, f1), v in zip(zip(frames, frames[1:]), values):
        hist.push(MoveKey(JAW, f0, f1, v, drag=token))


def test_a_drag_is_one_undo_step_even_across_other_keys():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    hist.push(SetKeys([(JAW, 10, Key(10, 0.5, "linear")), (JAW, 12, Key(12, 0.1)), (JAW, 20, Key(20, 0.3))]))
    hist.set_clean()
    start = state(c)
    # Step by step on a copy, for the reference end state.
    ref = c.copy()
    for f0, f1, v in [(10, 11, 0.6), (11, 12, 0.7), (12, 13, 0.8), (13, 15, 0.9)]:
        MoveKey(JAW, f0, f1, v).apply(ref)
    drag(hist, [10, 11, 12, 13, 15], [0.6, 0.7, 0.8, 0.9], token="drag-1")
    assert hist.index == 2 and hist.undo_text == "Move jaw_open key"
    assert state(c) == state(ref)
    assert c.keys(JAW) == (Key(15, 0.9, "linear"), Key(20, 0.3))  # the key run over is replaced
    hist.undo()
    assert state(c) == start and hist.is_clean
    hist.redo()
    assert state(c) == state(ref)


def test_drags_do_not_merge_across_tokens_or_into_the_saved_state():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    hist.push(SetKey(JAW, Key(10, 0.5)))
    drag(hist, [10, 11, 12], [0.5, 0.5], token=1)
    drag(hist, [12, 13], [0.5], token=2)
    assert hist.index == 3
    hist.set_clean()
    drag(hist, [13, 14], [0.5], token=2)  # continuing after a save keeps the saved state reachable
    assert hist.index == 4
    drag(hist, [14, 15], [0.5], token=None)
    drag(hist, [15, 16], [0.5], token=None)
    assert hist.index == 6


def test_value_only_drag_merges_into_one_step():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    hist.push(SetKey(JAW, Key(30, 0.2)))
    for v in np.linspace(0.2, 0.8, 7):
        hist.push(MoveKey(JAW, 30, value=float(v), drag="d"))
    assert hist.index == 2 and c.key_at(JAW, 30).value == pytest.approx(0.8)
    hist.undo()
    assert c.key_at(JAW, 30).value == 0.2


def test_reset_range_returns_exactly_to_tracked_inside_and_undoes():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    for f in (5, 20, 30, 45, 60):
        hist.push(SetKey(JAW, Key(f, 0.8)))
    hist.push(SetDriven(JAW, np.full(N, 0.4), 0, source="audio:x.wav"))
    edited = state(c)
    hist.push(ResetRange([JAW], 18, 50))
    jaw = c.evaluate(JAW)
    assert np.array_equal(jaw[18:50], c.tracked[18:50, 0])
    assert jaw[5] == pytest.approx(0.8) and jaw[60] == pytest.approx(0.8)  # keys outside survive
    assert np.array_equal(c.driven_weight(JAW)[18:50], np.zeros(32))
    assert np.all(c.driven_weight(JAW)[:18] == 1) and np.all(c.driven_weight(JAW)[50:] == 1)
    assert hist.undo_text == "Reset jaw_open to tracked (18-49)"
    hist.undo()
    assert state(c) == edited
    hist.push(ResetRange(JAW, 7, 8))  # a single frame
    assert c.evaluate(JAW)[7] == c.tracked[7, 0]


def test_viseme_is_one_edit_and_undo_restores_everything():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    hist.push(SetKey(JAW, Key(40, 0.3)))
    before = state(c)
    edit = viseme_edit(c, 41, "oo", width=3)
    hist.push(edit)
    assert hist.index == 2 and hist.undo_text == "Insert viseme Oo at 41"
    assert c.evaluate("lip_pucker")[41] == pytest.approx(VISEMES["oo"]["lip_pucker"])
    hist.undo()
    assert state(c) == before


def test_several_visemes_are_one_edit_placed_as_one_by_one():
    c = ControlCurves(tracked())
    hist = EditHistory(c)
    before = state(c)
    keys = [(10, "closed"), (13, "fv"), (30, "closed"), (-4, "closed"), (10_000, "fv")]  # the last two fall outside
    edit = visemes_edit(c, keys, text="Key the script's visemes (3)")
    hist.push(edit)
    assert hist.index == 1 and hist.undo_text == "Key the script's visemes (3)"
    one = ControlCurves(tracked())
    for f, name in keys[:3]:
        viseme_edit(one, f, name).apply(one)
    assert state(c) == state(one)  # the same keys as three single inserts
    assert c.evaluate(JAW)[[10, 30]] == pytest.approx([0.0, 0.0])
    assert c.evaluate("lower_lip_depress")[13] == pytest.approx(VISEMES["fv"]["lower_lip_depress"])
    hist.undo()
    assert state(c) == before
    assert not visemes_edit(c, [(-1, "closed")]).changes
