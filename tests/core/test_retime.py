"""Dragging a word re-times the mouth under it (core.retime): the warp, its bounds, undo."""

from __future__ import annotations

import numpy as np
import pytest

from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.core.curves import ControlCurves, Key
from dubstudio.core.edits import EditHistory, SetDriven, SetKey
from dubstudio.core.retime import RetimeWord, remap_frames, word_limits

N = 100
JAW = "jaw_open"
WORDS = [(20.0, "the"), (40.0, "mouth"), (60.0, "moves")]


def dubbed() -> tuple[ControlCurves, EditHistory]:
    """A dub whose jaw opens once per word: a bump rising from each word's start."""
    c = ControlCurves(np.zeros((N, len(CONTROL_NAMES))))
    f = np.arange(N, dtype=float)
    jaw = sum(np.clip(1 - np.abs(f - (s + 5)) / 5, 0, None) for s, _ in WORDS)
    h = EditHistory(c)
    h.push(SetDriven(JAW, jaw, 0, 1.0, source="audio:line.wav", words=WORDS))
    return c, h


def test_a_dub_with_a_script_brings_its_words_and_undo_takes_them_away():
    c, h = dubbed()
    assert c.words == tuple(WORDS)
    h.push(SetDriven(JAW, np.zeros(N), 0, 1.0, source="dubber:x.mov", words=()))  # a dubber's line: no words
    assert c.words == ()
    h.undo()
    assert c.words == tuple(WORDS)
    h.undo()
    assert c.words == ()


def test_moving_a_word_moves_its_mouth_and_nothing_outside_its_neighbours():
    c, h = dubbed()
    before = c.evaluate(JAW).copy()
    h.push(RetimeWord(c.words, 1, 46.0))  # "mouth" 6 frames later
    after = c.evaluate(JAW)
    assert c.words == ((20.0, "the"), (46.0, "mouth"), (60.0, "moves"))
    # the word's bump peaked 5 frames after its start; it now peaks just after the new start
    assert int(np.argmax(before[40:60])) + 40 == 45
    assert 49 <= int(np.argmax(after[40:60])) + 40 <= 51
    # outside the previous and next words' starts nothing changed; the anchors themselves neither
    assert np.array_equal(after[:21], before[:21]) and np.array_equal(after[60:], before[60:])
    # undo is exact, redo the same again
    h.undo()
    assert np.array_equal(c.evaluate(JAW), before) and c.words == tuple(WORDS)
    h.redo()
    assert np.array_equal(c.evaluate(JAW), after)


def test_keys_under_the_moved_span_move_with_it():
    c, h = dubbed()
    h.push(SetKey(JAW, Key(30, 0.9)))  # halfway between "the" and "mouth"
    h.push(SetKey(JAW, Key(70, 0.2)))  # after "moves": outside the warped span
    h.push(RetimeWord(c.words, 1, 44.0))
    assert [k.frame for k in c.keys(JAW)] == [32, 70]  # 20 + 10 * 24 / 20
    assert c.key_at(JAW, 32).value == 0.9
    h.undo()
    assert [k.frame for k in c.keys(JAW)] == [30, 70]


def test_a_word_cannot_pass_its_neighbours_and_a_refused_move_changes_nothing():
    c, h = dubbed()
    assert word_limits(c.words, 1, N) == (21.0, 59.0)
    assert word_limits(c.words, 0, N) == (1.0, 39.0)  # the first word is held by the shot's start
    before, steps = c.evaluate(JAW).copy(), len(h)
    with pytest.raises(ValueError, match="between frames 21 and 59"):
        h.push(RetimeWord(c.words, 1, 61.0))
    assert np.array_equal(c.evaluate(JAW), before) and c.words == tuple(WORDS) and len(h) == steps
    with pytest.raises(IndexError):
        RetimeWord(c.words, 3, 50.0)


def test_the_first_and_last_words_are_anchored_at_the_shot_ends():
    c, h = dubbed()
    before = c.evaluate(JAW).copy()
    h.push(RetimeWord(c.words, 2, 57.0))
    after = c.evaluate(JAW)
    assert np.array_equal(after[:41], before[:41])
    assert after[-1] == before[-1]


def test_other_times_of_the_line_follow_the_same_warp():
    moved = [(20.0, "the"), (46.0, "mouth"), (60.0, "moves")]
    out = remap_frames([10.0, 30.0, 40.0, 50.0, 80.0], WORDS, moved, N)
    assert np.allclose(out, [10.0, 33.0, 46.0, 53.0, 80.0])
    with pytest.raises(ValueError, match="not the same line"):
        remap_frames([1.0], WORDS, moved[:2], N)



def test_a_line_running_past_the_shot_moves_only_the_words_the_shot_shows():
    c, h = dubbed()
    line = WORDS + [(130.0, "onwards"), (150.0, "beyond")]  # a stem placed by timecode runs on
    with pytest.raises(ValueError, match="outside the shot"):
        h.push(RetimeWord(line, 3, 90.0))
    assert word_limits(line, 2, N) == (41.0, 98.0)  # its next word counts as the shot's last frame
    before = c.evaluate(JAW).copy()
    h.push(RetimeWord(line, 2, 62.0))
    assert np.array_equal(c.evaluate(JAW)[:41], before[:41]) and c.words[3:] == tuple(line[3:])
    # times outside the shot stay where they are; inside they follow the move
    out = remap_frames([-3.0, 61.0, 140.0], line, c.words, N)
    assert out[0] == -3.0 and out[2] == 140.0 and 61.0 < out[1] < 63.0


def test_several_words_move_in_one_edit_and_cannot_pass_each_other():
    from dubstudio.core.retime import RetimeLine

    c, h = dubbed()
    before = c.evaluate(JAW).copy()
    to = [(20.0, "the"), (44.0, "mouth"), (64.0, "moves")]
    h.push(RetimeLine(WORDS, to))
    assert c.words == tuple(to) and h.undo_text == "Re-time the line's words"
    after = c.evaluate(JAW)
    assert np.array_equal(after[:21], before[:21]) and 49 <= int(np.argmax(after[40:60])) + 40 <= 50
    h.push(RetimeLine(c.words, WORDS))  # and back: the mouth returns to within the resampling's softening
    assert c.words == tuple(WORDS) and np.abs(c.evaluate(JAW) - before).max() < 0.15
    assert int(np.argmax(c.evaluate(JAW)[40:60])) + 40 == 45
    with pytest.raises(ValueError, match="pass each other"):
        h.push(RetimeLine(WORDS, [(20.0, "the"), (65.0, "mouth"), (60.0, "moves")]))
    with pytest.raises(ValueError, match="not the line's words"):
        RetimeLine(WORDS, [(20.0, "a"), (40.0, "mouth"), (60.0, "moves")])
