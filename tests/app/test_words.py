"""Finding and moving a word of the dubbed line (app.words): the messages an editor meets."""

from __future__ import annotations

import numpy as np
import pytest

from dubstudio.app.words import find_word, line_words, retime_edit
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


def test_the_curves_words_come_first_and_the_recorded_ones_in_frames_otherwise():
    c = curves()
    assert line_words(c, [[0.5, "late"], [0.1, "early"]], 25.0) == ((2.5, "early"), (12.5, "late"))
    c.set_words([(3.0, "mine")])
    assert line_words(c, [[0.5, "late"]], 25.0) == ((3.0, "mine"),)
