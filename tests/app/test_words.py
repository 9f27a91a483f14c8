"""Finding and moving a word of the dubbed line (app.words): the messages an editor meets."""

from __future__ import annotations

import numpy as np
import pytest

from dubstudio.app.words import find_word, retime_edit, word_at
from dubstudio.core.controls import CONTROL_NAMES
from dubstudio.core.curves import ControlCurves
from dubstudio.core.errors import DubStudioError


def curves() -> ControlCurves:
    return ControlCurves(np.zeros((100, len(CONTROL_NAMES))))


def test_a_word_squeezed_between_its_neighbours_says_to_move_one_of_them():
    tight = ((20.0, "on"), (20.4, "april"), (21.0, "twentieth"))
    with pytest.raises(DubStudioError, match="no room to move"):
        retime_edit(curves(), tight, 1, 20.5)
    with pytest.raises(DubStudioError, match="between frames 21 and 98.*move its neighbour first"):
        retime_edit(curves(), tight, 2, 99.5)


def test_a_word_is_found_by_its_number_or_its_text():
    line = ((2.0, "the"), (5.0, "cat"), (9.0, "and"), (12.0, "the"), (15.0, "dog"))
    assert find_word(line, "Cat") == 1 and find_word(line, "3") == 2 and find_word(line, "the#2") == 3
    for which, why in (("6", "give a number from 1 to 5"), ("the", "said 2 times \\(words 1, 4\\)"),
                       ("the#3", "not one of them"), ("bird", "not one of the line's words")):
        with pytest.raises(DubStudioError, match=why):
            find_word(line, which)
    with pytest.raises(DubStudioError, match="dub the line with its script"):
        find_word((), "1")


def test_words_go_back_where_the_aligner_placed_them_one_or_all():
    from dubstudio.app.words import aligned_words, reset_edit

    c = curves()
    recorded = [[0.8, "the"], [1.6, "mouth"], [2.4, "moves"]]  # seconds at 25 fps: frames 20, 40, 60
    aligned = aligned_words(((0.0, "the"), (0.0, "mouth"), (0.0, "moves")), recorded, 25.0)
    assert [round(f, 6) for f, _ in aligned] == [20.0, 40.0, 60.0]
    with pytest.raises(DubStudioError, match="already where the aligner placed them"):
        reset_edit(c, aligned, aligned)
    moved = ((20.0, "the"), (45.0, "mouth"), (63.0, "moves"))
    one = reset_edit(c, moved, aligned, 1)
    one.apply(c)
    assert c.words[1][0] == pytest.approx(40.0) and c.words[2] == (63.0, "moves") and one.text == "Put “mouth” back"
    reset_edit(c, c.words, aligned).apply(c)
    assert [round(f, 6) for f, _ in c.words] == [20.0, 40.0, 60.0]
    with pytest.raises(DubStudioError, match="not this line's"):
        aligned_words(moved, [[0.8, "another"], [1.6, "line"], [2.4, "entirely"]], 25.0)


def test_the_word_at_a_frame_is_the_last_one_started_by_then():
    words = ((3.2, "And"), (7.6, "this"), (12.0, "is"))
    assert word_at(words, 0) is None and word_at(words, 2) is None
    assert word_at(words, 3) == 0 and word_at(words, 7) == 0  # "this" starts on frame 8 (7.6 rounded)
    assert word_at(words, 8) == 1 and word_at(words, 11) == 1
    assert word_at(words, 12) == 2 and word_at(words, 400) == 2  # the last word runs to the shot's end
