"""File ▸ Export… on the sample: the dialog's choices become the CLI's own ExportSettings, it says
when there is no neural adaptation (and offers the copy baseline), unsaved edits are saved first,
and the export job writes a verified file with the synthetic-media mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from dubstudio.export.audio_track import AudioRequest


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def build_settings(request):
    """The settings the export job runs with (the request's own, as for the CLI)."""
    return request.settings()


def test_dialog_builds_the_cli_settings(make_window, tracked_project, sample_video, gui, tmp_path):
    from dubstudio.app.export import ExportRequest

    win = make_window()
    gui.open(win, tracked_project)
    assert win.actions["export"].isEnabled()
    dlg = win.export.make_dialog()
    # no adaptation: said clearly, and only the copy baseline is offered
    assert not dlg.has_neural and dlg.renderer.count() == 1 and dlg.renderer.currentData() == ("copy", None)
    assert "no neural adaptation" in dlg.renderer_note.text() and dlg.copy_frames.isVisibleTo(dlg)
    # not dubbed: the shot's own audio by default; there is no "Dubbed" entry
    assert dlg.audio.currentData() == "original" and dlg.audio.findData("dubbed") < 0
    c = dlg.choice()
    assert c.renderer.kind == "copy" and c.format == "mp4" and c.output.suffix == ".mp4"
    st = build_settings(c)
    assert st.format == "mp4" and st.audio == AudioRequest("original", None, None, None) and not st.side_by_side

    # mov, side by side at half size, a given audio file placed at -0.5 s and trimmed
    dlg.format.setCurrentIndex(dlg.format.findData("mov"))
    assert dlg.output.text().endswith(".mov") and dlg.prores.isVisibleTo(dlg) and not dlg.crf.isVisibleTo(dlg)
    dlg.side.setChecked(True)
    dlg.scale.setValue(0.5)
    dlg.audio.setCurrentIndex(dlg.audio.findData("file"))
    dlg.audio_file.setText(str(sample_video))
    dlg.offset_check.setChecked(True)
    dlg.offset.setValue(-0.5)
    dlg.policy.setCurrentIndex(dlg.policy.findData("trim"))
    dlg.copy_frames.setText("5:30")
    c = dlg.validate()
    st = build_settings(c)
    assert st.format == "mov" and st.prores_profile == "hq" and st.side_by_side and st.review.scale == 0.5
    assert st.audio == AudioRequest("file", sample_video, -0.5, "trim")
    assert "--renderer copy --train-frames 5:30" in dlg.command.text() and "--side-by-side" in dlg.command.text()
    # the skin detail pass: on by default (the CLI's default, so not in the command); off is --detail 0
    assert dlg.detail.isChecked() and st.render.composite.detail == 1.0 and "--detail" not in dlg.command.text()
    dlg.detail.setChecked(False)
    assert "--detail 0" in dlg.command.text() and build_settings(dlg.validate()).render.composite.detail == 0.0
    # MXF for Avid: DNxHR, HQ by default, HQX (10-bit) on request
    dlg.format.setCurrentIndex(dlg.format.findData("mxf"))
    assert dlg.output.text().endswith(".mxf") and dlg.dnxhr.isVisibleTo(dlg) and not dlg.prores.isVisibleTo(dlg)
    assert build_settings(dlg.choice()).format == "mxf" and "--dnxhr" not in dlg.command.text()
    dlg.dnxhr.setCurrentIndex(dlg.dnxhr.findData("hqx"))
    assert "--dnxhr hqx" in dlg.command.text() and build_settings(dlg.choice()).dnxhr_profile == "hqx"
    # PNG: a folder, no suffix
    dlg.format.setCurrentIndex(dlg.format.findData("png"))
    assert Path(dlg.output.text()).suffix == "" and build_settings(dlg.choice()).format == "png"
    # nothing to export with
    dlg.audio.setCurrentIndex(dlg.audio.findData("file"))
    dlg.audio_file.setText(str(tmp_path / "missing.wav"))
    dlg._accept()
    assert dlg.result() == 0 and "existing audio file" in dlg.error.text()
    assert "--audio-offset" not in ExportRequest(tracked_project, tmp_path / "x.mp4", audio="none").command_line()


def test_export_job_saves_first_and_writes_a_marked_verified_file(make_window, adapted_project, gui, qtbot, tmp_path):
    from dubstudio.export.mark import read_mark
    from dubstudio.export.verify import summarize

    win = make_window()
    gui.open(win, adapted_project)
    s = win.session
    win.timeline.add_key(20, 0.9)  # unsaved: export must save it first (it reads the project)
    dlg = win.export.make_dialog()
    assert dlg.has_neural and dlg.renderer.currentData() == ("neural", None)
    assert "latest adaptation (full, 2 steps)" in dlg.renderer.currentText()
    out = tmp_path / "exports" / "dubbed.mp4"
    dlg.output.setText(str(out))
    choice = dlg.validate()
    assert choice.verify and "--device" in choice.command_line()
    monitor = gui.StallMonitor()
    monitor.start()
    with qtbot.waitSignal(win.export.exported, timeout=240_000) as sig:
        job = win.export.start(choice)
        assert job is not None and not win.actions["export"].isEnabled()
        assert [k for k, _ in win.prompter.asked] == ["export_unsaved"] and not s.is_dirty
    monitor.stop()
    r = sig.args[0]
    assert out.is_file() and r["frames"] == 50 and r["verify"]["ok"], r.get("verify")
    assert r["curves_edited"] and r["renderer"].startswith("neural")
    summary = summarize(out)
    assert summary["video"]["frames"] == 50 and summary["audio"] is not None
    assert read_mark(out)["synthetic"]
    text = win.messages.text
    assert "Exported 50 frames (50 rendered; 2.00 s at 25/1 fps" in text and "marked as synthetic" in text and "ffprobe: ok" in text
    assert win.actions["export"].isEnabled()
    # the same name again: the dialog says only what changed will be rendered
    dlg = win.export.make_dialog()
    dlg.output.setText(str(out))
    assert not dlg.stopped_note.isHidden() and "renders only the segments whose frames changed" in dlg.stopped_note.text()
    dlg.output.setText(str(tmp_path / "exports" / "new.mp4"))
    assert dlg.stopped_note.isHidden() and dlg.restart.isHidden()
    print(f"export of 50 frames: {r['wall_s']:.1f} s; GUI thread longest stall {monitor.max_ms:.0f} ms")


def test_export_cancel_leaves_nothing(make_window, adapted_project, gui, qtbot, tmp_path):
    win = make_window()
    gui.open(win, adapted_project)
    dlg = win.export.make_dialog()
    out = tmp_path / "cancelled.mp4"
    dlg.output.setText(str(out))
    with qtbot.waitSignal(win.jobs.job_finished, timeout=120_000, check_params_cb=lambda j: j.name == "Export"):
        job = win.export.start(dlg.validate())
        qtbot.waitUntil(lambda: job.last_event is not None and job.last_event.stage == "export", timeout=60_000)
        job.cancel()
    assert job.state == "cancelled" and not out.exists()
    assert not list(tmp_path.glob("*.mp4*"))


def test_a_cancelled_export_is_offered_to_continue(make_window, adapted_project, gui, qtbot, tmp_path, monkeypatch):
    """Cancel after a few segments: they stay beside the output, the dialog says so when the same
    name is chosen again, and offers to start over instead."""
    from dubstudio.export import resume

    monkeypatch.setattr(resume, "SEGMENT_S", 0.32)  # 8 frames at 25 fps
    win = make_window()
    gui.open(win, adapted_project)
    dlg = win.export.make_dialog()
    out = tmp_path / "stopped.mp4"
    dlg.output.setText(str(out))
    assert dlg.stopped_note.isHidden() and dlg.restart.isHidden() and "--restart" not in dlg.command.text()
    with qtbot.waitSignal(win.jobs.job_finished, timeout=120_000, check_params_cb=lambda j: j.name == "Export"):
        job = win.export.start(dlg.validate())
        qtbot.waitUntil(lambda: job.last_event is not None and job.last_event.stage == "export" and job.last_event.done >= 16, timeout=120_000)
        job.cancel()
    assert job.state == "cancelled" and not out.exists()
    done, total = resume.stopped_export(out)
    assert total == 50 and done >= 16 and done % 8 == 0
    dlg = win.export.make_dialog()
    dlg.output.setText(str(out))
    assert not dlg.stopped_note.isHidden() and f"finished {done} of 50 frames" in dlg.stopped_note.text()
    assert not dlg.validate().restart
    dlg.restart.setChecked(True)
    assert dlg.validate().restart and "--restart" in dlg.command.text()
    # another name in the same folder: the stopped one is named, with a button that frees its space
    dlg.output.setText(str(tmp_path / "final.mp4"))
    assert not dlg.others_note.isHidden() and "stopped.mp4 (" in dlg.others_note.text()
    win.prompter.answers["delete_stopped"] = "no"
    dlg.delete_others.click()
    assert resume.work_folder(out).is_dir()
    win.prompter.answers["delete_stopped"] = "yes"
    dlg.delete_others.click()
    assert not resume.work_folder(out).exists() and dlg.others_note.isHidden() and dlg.delete_others.isHidden()
    assert any(k == "delete_stopped" for k, _ in win.prompter.asked)


def test_export_refuses_without_saving_when_the_user_cancels(make_window, adapted_project, gui, tmp_path):
    win = make_window(answers={"export_unsaved": "cancel"})
    gui.open(win, adapted_project)
    win.timeline.add_key(10, 0.5)
    dlg = win.export.make_dialog()
    dlg.output.setText(str(tmp_path / "x.mp4"))
    assert win.export.start(dlg.validate()) is None
    assert win.session.is_dirty and not win.jobs.running("Export") and not (tmp_path / "x.mp4").exists()


def test_the_guide_track_is_offered_for_a_shot_with_sound(make_window, adapted_project, gui, tmp_path):

    win = make_window()
    gui.open(win, adapted_project)  # the sample has English speech of its own
    dlg = win.export.make_dialog()
    dlg.output.setText(str(tmp_path / "x.mp4"))
    assert not dlg.guide.isHidden() and not dlg.guide.isChecked() and "--guide-track" not in dlg.command.text()
    dlg.audio.setCurrentIndex(dlg.audio.findData("none"))
    dlg.guide.setChecked(True)
    assert dlg.choice().guide_track and "--guide-track" in dlg.command.text()
    assert build_settings(dlg.choice()).guide_track  # the CLI's own parser takes it
    dlg.audio.setCurrentIndex(dlg.audio.findData("original"))  # the first track is the shot's own already
    assert not dlg.guide.isEnabled() and not dlg.choice().guide_track
