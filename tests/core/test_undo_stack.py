"""The one undo stack (core.undo): several targets in order, merges within a family and a
target only, never across the saved state, a clean marker, a depth limit, events."""

from __future__ import annotations

import numpy as np
import pytest

from dubstudio.core.curves import ControlCurves, Key
from dubstudio.core.edits import MoveKey, SetKey
from dubstudio.core.undo import UndoStack
from dubstudio.masks.layer import MaskLayer, SetGrow


def _curves(n: int = 40) -> ControlCurves:
    return ControlCurves(np.zeros((n, 7)))


def test_edits_of_several_targets_undo_in_the_order_they_were_made():
    c, layer, s = _curves(), MaskLayer(n_frames=40), UndoStack()
    events = []
    s.index_changed.connect(events.append)
    s.push(c, SetKey("jaw_open", Key(5, 0.5)), applied=False)
    s.push(layer, SetGrow(3.0), applied=False)
    s.push(layer, SetGrow(4.0), applied=False)  # a spin-box run: one step
    assert s.count() == 2 and layer.grow_px == 4.0 and s.undo_text() == "Mask grow 4 px"
    s.undo()
    assert layer.grow_px == 0.0 and c.key_at("jaw_open", 5) is not None
    s.undo()
    assert c.key_at("jaw_open", 5) is None and not s.can_undo()
    s.redo()
    assert c.key_at("jaw_open", 5) is not None and s.index() == 1
    assert events == [1, 2, 1, 0, 1]


def test_merges_stay_within_a_drag_a_target_and_the_saved_state():
    c, other, s = _curves(), _curves(), UndoStack()
    s.push(c, SetKey("jaw_open", Key(10, 0.1)), applied=False)
    drag = object()
    s.push(c, MoveKey("jaw_open", 10, 11, drag=drag), applied=False)
    s.push(c, MoveKey("jaw_open", 11, 12, drag=drag), applied=False)
    assert s.count() == 2  # one drag, one step
    s.set_clean()
    s.push(c, MoveKey("jaw_open", 12, 13, drag=drag), applied=False)
    assert s.count() == 3  # not merged into the saved state
    other.put_key("jaw_open", Key(12, 0.2))
    s.push(other, MoveKey("jaw_open", 12, 14, drag=drag), applied=False)
    assert s.count() == 4  # another target: never merged
    s.push(c, MoveKey("jaw_open", 13, 15, drag=object()), applied=False)
    assert s.count() == 5  # another drag


def test_clean_state_limit_and_clear():
    c, s = _curves(), UndoStack(limit=2)
    flips = []
    s.clean_changed.connect(flips.append)
    for f in (1, 2, 3):
        s.push(c, SetKey("smile", Key(f, 0.1)), applied=False)
    assert s.count() == 2 and not s.is_clean() and flips == [False]  # the oldest dropped, the saved state with it
    s.set_clean()
    assert s.is_clean() and flips == [False, True]
    s.undo()
    s.push(c, SetKey("smile", Key(9, 0.1)), applied=False)  # the saved state was redo-able: now unreachable
    assert not s.is_clean()
    while s.can_undo():
        s.undo()
    assert not s.is_clean()
    s.clear()
    assert s.count() == 0 and s.is_clean()
    s.push(c, SetKey("smile", Key(20, 0.1)), applied=False)
    s.reset_clean()
    s.undo()
    assert not s.is_clean()  # recovered edits: no state is the saved one


def test_a_failing_edit_is_not_recorded():
    c, s = _curves(), UndoStack()
    with pytest.raises(KeyError):
        s.push(c, MoveKey("jaw_open", 3, 4), applied=False)  # no key there
    assert s.count() == 0 and s.is_clean()
