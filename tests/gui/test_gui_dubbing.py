"""Dubbing from the editor on the tracked sample: Shot ▸ Dub from Audio / Dubber Video run as jobs,
the result is one undo step over unsaved edits (nothing saved), the dubbed audio is recorded in
project.json, its waveform appears as a second row where it plays in the shot, and playback can
switch between the dubbed and the original sound."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dubstudio.app.dub import DubRequest
from dubstudio.shot.curve_store import CURVES_FILE
from dubstudio.core.controls import CONTROL_NAMES


class _Drag:
    """A left-button drag event as pyqtgraph hands it to an item (the steps of one drag)."""

    def __init__(self, scene_pos, finish: bool) -> None:
        self._pos, self._finish = scene_pos, finish

    def button(self):
        from PySide6.QtCore import Qt

        return Qt.MouseButton.LeftButton

    def scenePos(self):  # noqa: N802 - pyqtgraph's name
        return self._pos

    def isFinish(self) -> bool:  # noqa: N802
        return self._finish

    def accept(self) -> None:
        pass

    def ignore(self) -> None:
        raise AssertionError("the word ignored a left-button drag")


def drag_word(item, xs) -> None:
    """Drag a word item of the dubbed row through the timeline positions ``xs`` and release it."""
    from PySide6.QtCore import QPointF

    vb = item.getViewBox()
    for k, x in enumerate(xs):
        item.mouseDragEvent(_Drag(vb.mapViewToScene(QPointF(x - 0.5 + 0.2, 1.0)), k == len(xs) - 1))


def tiny_audio_config():
    """A per-actor audio-to-expression model trained for a few steps (seconds on a CPU)."""
    from dubstudio.driving.audio2expr_train import AdaptConfig, TrainConfig

    return AdaptConfig(scratch_train=TrainConfig(steps=12, batch=4, seq_frames=24, lr=3e-3, weight_decay=1e-3, log_every=4))


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_dub_from_audio_is_one_undo_step_with_its_waveform_and_sound(make_window, tracked_project, sample_video, gui, qtbot, tmp_path):
    win = make_window()
    gui.open(win, tracked_project)
    s, d, tl = win.session, win.dubbing, win.timeline
    assert win.actions["dub_audio"].isEnabled() and win.actions["dub_dubber"].isEnabled()
    assert not tl.dub_wave.isVisible() and not win.actions["play_dubbed"].isEnabled()
    assert "not dubbed yet" in d.status.text()
    d.audio_config = tiny_audio_config()
    d.want_sound = True  # load the dubbed samples even without an output device
    d.set_original_sound(np.zeros((1, 48_000 * 2), np.float32), 48_000)
    assert d.sound_source == "original"

    # an unsaved key first: the dub must go on top of it, not replace it
    tl.add_key(5, 0.9)
    assert s.undo_stack.count() == 1 and s.is_dirty
    audio = tmp_path / "dialogue.mp4"
    shutil.copy2(sample_video, audio)  # any file with an audio track
    start = 0.4
    with qtbot.waitSignal(d.dubbed, timeout=120_000) as sig:
        job = d.dub_from_audio(audio, start_s=start, placement="by timecode: (as the dialog's From timecode says)")
        assert job is not None and not win.actions["dub_audio"].isEnabled()  # one dub at a time
    drive = sig.args[0]
    assert drive.kind == "audio" and drive.offset_s == pytest.approx(start)
    assert s.project.data["dub_audio"]["placement"].startswith("by timecode")  # export's default policy: fit
    assert "(placed by timecode)" in d.status.text()
    assert s.undo_stack.count() == 2 and s.undo_stack.text(1) == f"Dub from {audio.name}"
    c = s.curves
    assert all(c.has_driven(n) for n in CONTROL_NAMES)
    assert c.driven_source("jaw_open") == f"audio:{audio.name}"
    assert c.key_at("jaw_open", 5) is not None  # the unsaved key survived
    assert not (tracked_project / CURVES_FILE).exists()  # nothing saved behind the user's back
    assert "frames from the dialogue" in win.messages.text

    rec = json.loads((tracked_project / "project.json").read_text())["dub_audio"]
    assert rec["kind"] == "audio" and rec["start_in_shot_s"] == pytest.approx(start) and rec["offset_s"] == pytest.approx(start)
    assert rec["path"] == str(audio.resolve()) and rec["fingerprint"]

    # the dubbed waveform row, shifted to where the dialogue starts
    qtbot.waitUntil(lambda: d.dub_audio is not None and tl.dub_wave.isVisible(), timeout=30_000)
    xs = d.row.item.getData()[0]
    fps = float(s.info.fps)
    assert xs is not None and len(xs) > 10 and xs.min() == pytest.approx(start * fps, abs=0.2)
    assert d.row.start_line.value() == pytest.approx(start * fps - 0.5)
    assert win.actions["play_dubbed"].isEnabled() and win.actions["play_dubbed"].isChecked()
    assert d.sound_source == "dubbed"
    lead = int(start * 48_000)
    assert not np.any(win.audio.samples[:lead - 10])  # silence until the dialogue starts
    assert np.abs(win.audio.samples[lead:]).max() > 0.01
    win.actions["play_dubbed"].trigger()  # Playback ▸ Play Dubbed Audio off: the original
    assert d.sound_source == "original" and len(win.audio.samples) == 48_000 * 2
    win.actions["play_dubbed"].trigger()
    assert d.sound_source == "dubbed"

    # undo takes the dub off and leaves the key; redo puts it back
    driven = c.evaluate("jaw_open").copy()
    win.actions["undo"].trigger()
    assert not c.has_driven("jaw_open") and c.key_at("jaw_open", 5) is not None
    win.actions["redo"].trigger()
    assert np.allclose(c.evaluate("jaw_open"), driven)

    # saved and reopened: the dub is in the curves, the dubbed row comes back by itself
    win.actions["save"].trigger()
    win2 = make_window()
    with qtbot.waitSignal(win2.dubbing.dub_audio_changed, timeout=60_000):
        gui.open(win2, tracked_project)
    assert win2.timeline.dub_wave.isVisible() and win2.session.curves.has_driven("jaw_open")
    assert "Dialogue dialogue.mp4, starts at +0.40\u00a0s" in win2.dubbing.status.text()


def test_dub_from_dubber_video_tracks_it_and_retargets(make_window, tracked_project, sample_video, gui, qtbot, tmp_path):
    win = make_window()
    gui.open(win, tracked_project)
    s, d = win.session, win.dubbing
    dubber = tmp_path / "dubber_take1.mp4"
    shutil.copy2(sample_video, dubber)
    start = 0.2
    with qtbot.waitSignal(d.dubbed, timeout=180_000) as sig:
        d.dub_from_dubber(dubber, start_s=start)
    drive = sig.args[0]
    assert drive.kind == "dubber" and drive.offset_s == pytest.approx(start)
    assert s.undo_stack.count() == 1 and s.curves.driven_source("jaw_open") == f"dubber:{dubber.name}"
    assert (tracked_project / "dubbers" / "dubber_take1" / "project.json").is_file()  # tracked into the project
    fps = float(s.info.fps)
    k = int(np.ceil(start * fps))
    assert np.all(s.curves.driven_weight("jaw_open") == 1.0)  # every frame has a face
    # before the dubber starts the mouth is eased closed (the new dialogue is silent there)
    assert np.allclose(s.curves.driven("jaw_open")[:k], 0.0)
    rec = json.loads((tracked_project / "project.json").read_text())["dub_audio"]
    assert rec["kind"] == "dubber" and rec["start_in_shot_s"] == pytest.approx(start)
    qtbot.waitUntil(lambda: win.timeline.dub_wave.isVisible(), timeout=30_000)
    win.actions["undo"].trigger()
    assert not s.curves.has_driven("jaw_open") and not s.is_dirty


def test_dub_needs_a_tracked_shot_and_reports_errors(make_window, fresh_video, tracked_project, gui, qtbot, tmp_path):
    win = make_window()
    gui.open(win, fresh_video)
    assert not win.actions["dub_audio"].isEnabled()
    assert win.dubbing.dub_from_audio(tmp_path / "x.wav") is None
    assert "Track the shot" in win.messages.text
    gui.open(win, tracked_project)
    with qtbot.waitSignal(win.job_failed, timeout=30_000) as sig:
        win.dubbing.dub_from_audio(tmp_path / "missing.wav")
    assert "not found" in sig.args[0]
    assert win.session.undo_stack.count() == 0 and win.actions["dub_audio"].isEnabled()


def test_dub_dialog_asks_for_a_file_and_where_it_starts(make_window, sample_video, tmp_path):
    from dubstudio.gui.dubbing import DubSourceDialog

    win = make_window()
    dlg = DubSourceDialog("audio", win.settings, win)
    dlg.path.setText(str(tmp_path / "missing.wav"))
    dlg._accept()
    assert dlg.result() == 0 and "existing file" in dlg.error.text()
    dlg.path.setText(str(sample_video))
    dlg.start.setValue(-1.25)
    dlg._accept()
    assert dlg.result() == 1 and dlg.values() == (sample_video, -1.25)
    again = DubSourceDialog("audio", win.settings, win)  # remembered for the next dub
    assert again.values() == (sample_video, -1.25)
    assert DubSourceDialog("dubber", win.settings, win).path.text() == ""  # each source its own


def test_dub_dialog_places_a_stem_by_timecode(make_window, tmp_path):
    from dubstudio.gui.dubbing import DubSourceDialog
    from tests.driving.test_placement import HOUR, clip, stem

    win = make_window()
    shot = clip(tmp_path / "sh010.mov", "01:00:02:00")
    dlg = DubSourceDialog("audio", win.settings, win, shot_video=shot)
    dlg.path.setText(str(stem(tmp_path / "bare.wav", None)))
    dlg.start.setValue(0.5)
    dlg.by_timecode.click()
    assert "no Broadcast WAV time reference" in dlg.error.text() and dlg.start.value() == 0.5  # kept as it was
    dlg.path.setText(str(stem(tmp_path / "stem.wav", HOUR)))
    dlg.by_timecode.click()
    assert dlg.error.text() == "" and dlg.start.value() == -2.0
    assert dlg.placement.isVisibleTo(dlg) and "01:00:02:00" in dlg.placement.text()
    dlg.path.setText(str(tmp_path / "other.wav"))
    assert not dlg.placement.isVisibleTo(dlg)  # it described the previous file
    assert not DubSourceDialog("audio", win.settings, win).by_timecode.isEnabled()  # no shot to place it on


def test_dubber_dialog_offers_the_dubbers_own_sync(make_window, sample_video):
    from dubstudio.gui.dubbing import DubSourceDialog

    win = make_window()
    dlg = DubSourceDialog("dubber", win.settings, win)
    assert dlg.sync() == "check" and not dlg.sync_s.isEnabled()  # measured and reported, not applied
    dlg.sync_mode.setCurrentIndex(dlg.sync_mode.findData("auto"))
    assert dlg.sync() == "auto" and not dlg.sync_s.isEnabled()
    dlg.sync_mode.setCurrentIndex(dlg.sync_mode.findData("seconds"))
    assert dlg.sync_s.isEnabled()
    dlg.sync_s.setValue(0.12)
    dlg.path.setText(str(sample_video))
    dlg._accept()
    assert dlg.result() == 1 and dlg.sync() == 0.12
    assert DubSourceDialog("dubber", win.settings, win).sync() == 0.12  # remembered
    dlg.sync_mode.setCurrentIndex(dlg.sync_mode.findData("off"))
    assert dlg.sync() == "off"


def test_a_mouth_driven_outside_the_editor_is_not_called_undubbed(make_window, tracked_project, gui):
    """Curves driven by a script (the core API records no dialogue): the Dub panel says where the mouth
    came from and that export will ask for the dialogue, instead of "not dubbed yet"; a reset of the
    driven layer (undoable) brings "not dubbed yet" back."""
    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.core.edits import SetDriven
    from dubstudio.project.store import Project
    from dubstudio.shot.tracking import load_tracking

    p = Project.open(tracked_project)
    t = load_tracking(p)
    store = CurveStore(p)
    curves = store.load(t)
    SetDriven(["jaw_open"], np.full((t.n_frames, 1), 0.3), 0, 1.0, source="audio:line_12.wav").apply(curves)
    store.save(curves)

    win = make_window()
    gui.open(win, tracked_project)
    text = win.dubbing.status.text()
    assert "Mouth driven from line_12.wav" in text and "not recorded" in text and "not dubbed yet" not in text
    from dubstudio.core.edits import ResetRange

    win.session.push(ResetRange())  # the whole shot back to tracked
    assert win.dubbing.status.text() == "not dubbed yet"
    win.actions["undo"].trigger()
    assert "Mouth driven from line_12.wav" in win.dubbing.status.text()


def test_the_dub_message_says_what_the_sync_check_and_the_range_did(tmp_path):
    """After a dub from audio the status message names the shot's own audio/picture offset, a
    timing correction and an opening gain."""
    from dubstudio.driving.dub import DubDrive
    from dubstudio.gui.dubbing import summary

    ad = {"sync": {"applied": True, "moved_frames": -3}, "range": {"applied": True, "gain": 1.95},
          "metrics": {"av_offset": {"frames": 6, "seconds": 0.24}}}
    d = DubDrive(None, "audio", tmp_path / "line.wav", 0.0, 199, 199, {"adaptation": ad})
    text = summary(d)
    assert "trailed the dialogue's sound by 3 frames and was moved earlier" in text and "scaled by 1.95" in text
    assert "own sound runs 6 frames (0.24 s) late against its picture" in text
    plain = summary(DubDrive(None, "audio", tmp_path / "line.wav", 0.0, 199, 199,
                             {"adaptation": {"sync": {"applied": False}, "range": {"applied": True, "gain": 1.0}}}))
    assert "moved" not in plain and "scaled" not in plain and "own sound" not in plain


def test_a_dub_with_its_script_shows_each_word_where_it_is_spoken(make_window, tracked_project, gui, qtbot, tmp_path):
    """The Script field's words, aligned to the dubbed line, sit on the dubbed row at the frames
    they are spoken, are recorded with the dub, and come back when the project is reopened."""
    from dubstudio.gui.screenshots import SAMPLE_LINE, _sample_line

    win = make_window()
    gui.open(win, tracked_project)
    s, d = win.session, win.dubbing
    d.audio_config = tiny_audio_config()
    line = _sample_line(tmp_path / "line.wav", float(s.info.duration_s))
    start = 0.1  # "dubbed", the line's one lip closure, still inside the 2 s shot
    assert not d.visemes_action.isEnabled()
    with qtbot.waitSignal(d.dubbed, timeout=180_000):  # the dialog's "Key lip contacts" checked
        d.dub(DubRequest(s.project.root, audio=line, offset=start, text=SAMPLE_LINE, key_visemes=True))
    rec = json.loads((tracked_project / "project.json").read_text())["dub_audio"]
    # "dubbed" has the line's one lip closure: keyed after the dub, its own undo step
    fps = float(s.info.fps)
    closed = [int(round(t * fps)) for t, v in rec["script"]["visemes"] if v == "closed"]
    assert len(closed) == 1 and s.undo_stack.undo_text().startswith("Key the script's visemes")
    assert s.curves.key_at("jaw_open", closed[0]) is not None and s.curves.evaluate("jaw_open")[closed[0]] == pytest.approx(0.0)
    s.undo_stack.undo()
    assert s.curves.key_at("jaw_open", closed[0]) is None and s.curves.has_driven("jaw_open")  # the dub stays
    assert d.visemes_action.isEnabled()  # and keys them again from the recorded script
    d.visemes_action.trigger()
    assert s.curves.key_at("jaw_open", closed[0]) is not None
    words = rec["script"]["words"]
    assert [w for _, w in words] == ["And", "this", "is", "the", "new", "line", "dubbed", "in", "the", "editor"]
    assert words[0][0] >= start and all(a[0] <= b[0] for a, b in zip(words, words[1:]))  # in order, after the start
    assert "script: " in win.messages.text
    qtbot.waitUntil(lambda: d.dub_audio is not None and bool(d.dub_audio.words), timeout=30_000)
    win.timeline.ruler.getViewBox().setXRange(0, s.info.n_frames)
    d.row.update()
    shown = [(it.pos().x(), it.toPlainText()) for it in d.row.words if it.isVisible()]
    fps = float(s.info.fps)
    assert shown and shown[0] == (pytest.approx(words[0][0] * fps - 0.5), "And")
    assert {w for _, w in shown} <= {w for _, w in words}
    assert s.curves.words == tuple((pytest.approx(t * fps), w) for t, w in words)  # the dub put them on the curves
    # drag the second word shown 2 frames later: the mouth between its neighbours follows, one undo step
    item = next(it for it in d.row.words if it.isVisible() and it.index > 0)
    i, (f0, word) = item.index, s.curves.words[item.index]
    lo, hi = s.curves.words[i - 1][0], (s.curves.words + ((s.info.n_frames - 1.0, ""),))[i + 1][0]
    jaw = s.curves.evaluate("jaw_open").copy()
    target = round(f0) + 2
    drag_word(item, [target - 1, target])
    assert s.curves.words[i] == (target, word) and s.undo_stack.undo_text() == f"Re-time “{word}”"
    moved = s.curves.evaluate("jaw_open")
    outside = np.r_[:int(np.ceil(lo)), int(np.floor(hi)) + 1:s.info.n_frames]
    assert np.array_equal(moved[outside], jaw[outside]) and not np.array_equal(moved, jaw)
    assert item.pos().x() == pytest.approx(target - 0.5)
    assert "later" in win.statusBar().currentMessage()
    s.save()
    saved = json.loads((tracked_project / CURVES_FILE).read_text())["words"]
    assert saved[i] == [target, word]
    # its context menu puts it back where the aligner placed it (after a save, when undo no longer reaches)
    menu = d.row.line.context_menu(i)
    assert [a.text() for a in menu.actions()] == [f"Put “{word}” Back Where the Aligner Placed It", "Put All Words Back"]
    menu.actions()[0].trigger()
    assert s.curves.words[i][0] == pytest.approx(f0) and s.undo_stack.undo_text() == f"Put “{word}” back"
    assert np.abs(s.curves.evaluate("jaw_open") - jaw).max() < 0.1  # resampled twice: close, not bit for bit
    menu.actions()[1].trigger()  # nothing left to put back: said, nothing pushed
    assert "already where the aligner placed them" in win.messages.text
    s.undo_stack.undo()
    s.undo_stack.undo()
    assert s.curves.words[i][0] == pytest.approx(f0) and np.array_equal(s.curves.evaluate("jaw_open"), jaw)
    # past its neighbour the word stops one frame short of it
    drag_word(item, [hi + 10])
    assert s.curves.words[i][0] == np.floor(hi - 1)
    s.undo_stack.undo()
    # Alt+. / Alt+, move the word at the playhead a frame at a time, the playhead with its start
    assert d.word_later_action.shortcut().toString() == "Alt+." and d.word_later_action.isEnabled()
    s.playhead.set_frame(int(round(f0)))
    d.word_later_action.trigger()
    assert s.curves.words[i][0] == round(f0) + 1 and s.playhead.frame == round(f0) + 1
    d.word_later_action.trigger()  # the same word again: the playhead went with it
    assert s.curves.words[i][0] == round(f0) + 2 and s.undo_stack.undo_text() == f"Re-time “{word}”"
    d.word_earlier_action.trigger()
    assert s.curves.words[i][0] == round(f0) + 1
    for _ in range(3):
        s.undo_stack.undo()
    assert s.curves.words[i][0] == pytest.approx(f0) and np.array_equal(s.curves.evaluate("jaw_open"), jaw)
    s.playhead.set_frame(0)  # before the line's first word: said, nothing moved
    d.word_earlier_action.trigger()
    assert "before the line's first word" in win.messages.text and s.curves.words[i][0] == pytest.approx(f0)
    # a dub without a script clears them
    with qtbot.waitSignal(d.dubbed, timeout=180_000):
        d.dub_from_audio(line, start_s=start)
    assert "script" not in json.loads((tracked_project / "project.json").read_text())["dub_audio"]
    qtbot.waitUntil(lambda: d.dub_audio is not None and not d.dub_audio.words, timeout=30_000)
    d.row.update()
    assert not any(it.isVisible() for it in d.row.words)
    assert not d.visemes_action.isEnabled()
    assert not d.word_later_action.isEnabled() and not d.word_earlier_action.isEnabled()
    s.undo_stack.undo()  # undoing that dub brings the scripted one's words back with its mouth
    assert [w for _, w in s.curves.words] == [w for _, w in words] and d.word_later_action.isEnabled()
