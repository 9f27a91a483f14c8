"""Autosave and crash recovery; the unsaved-changes prompt."""

from __future__ import annotations

import json

import pytest

from dubstudio.shot.curve_store import AUTOSAVE_FILE, CURVES_FILE


def test_autosave_then_recovery_in_a_new_window(make_window, tracked_project, gui, qtbot):
    win = make_window(autosave_ms=50)
    gui.open(win, tracked_project)
    assert win.session.is_tracked
    with qtbot.waitSignal(win.session.autosaved, timeout=5_000) as sig:
        win.timeline.add_key(15, 0.9)
    auto = tracked_project / AUTOSAVE_FILE
    assert sig.args[0] == str(auto) and auto.is_file()
    assert json.loads(auto.read_text())["keys"]["jaw_open"][0]["frame"] == 15
    assert not (tracked_project / CURVES_FILE).exists()
    # no edits since: the timer does not rewrite it
    mtime = auto.stat().st_mtime_ns
    with qtbot.waitSignal(win.session.autosaved, timeout=300, raising=False) as again:
        pass
    assert not again.signal_triggered and auto.stat().st_mtime_ns == mtime

    # "crash": the first window never saves; a second window opens the same project
    win2 = make_window({"recover": "yes"})
    gui.open(win2, tracked_project)
    asked = [k for k, _ in win2.prompter.asked]
    assert asked == ["recover"]
    c = win2.session.curves
    assert c.evaluate("jaw_open")[15] == pytest.approx(0.9)
    assert win2.session.is_dirty and win2.isWindowModified()  # recovered edits are unsaved
    assert "Recovered" in win2.messages.text
    win2.save()
    assert not auto.exists() and (tracked_project / CURVES_FILE).is_file()

    # declining a recovery deletes the autosave and keeps the saved curves
    win2.timeline.add_key(30, 0.4)
    win2.session.autosave()
    win3 = make_window({"recover": "no"})
    gui.open(win3, tracked_project)
    assert win3.session.curves.key_at("jaw_open", 30) is None
    assert win3.session.curves.key_at("jaw_open", 15) is not None
    assert not auto.exists() and not win3.session.is_dirty


def test_unsaved_changes_prompt_on_close(make_window, tracked_project, gui, qtbot):
    win = make_window({"unsaved": "cancel"})
    gui.open(win, tracked_project)
    win.timeline.add_key(5, 0.3)
    assert not win.close()  # cancelled: the window stays
    assert win.isVisible() and win.session.is_dirty
    win.prompter.answers["unsaved"] = "save"
    assert win.close()
    assert [k for k, _ in win.prompter.asked] == ["unsaved", "unsaved"]
    saved = json.loads((tracked_project / CURVES_FILE).read_text())
    assert saved["keys"]["jaw_open"][0] == {"frame": 5, "value": 0.3, "interp": "smooth", "mode": "replace"}


def test_damaged_saved_edits_are_a_warning(make_window, tracked_project, gui, qtbot):
    (tracked_project / "edits").mkdir(exist_ok=True)
    damaged = tracked_project / CURVES_FILE
    damaged.write_text("{ not json")
    win = make_window()
    gui.open(win, tracked_project)
    assert win.session.is_tracked and not win.session.curves.all_keys()
    assert win.messages.level == "warning" and "could not be read" in win.messages.text
    assert damaged.read_text() == "{ not json"  # left for the user to inspect
