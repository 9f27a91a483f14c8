"""The adaptation panel on the tracked sample: a tiny real adaptation in a worker, with the loss
plot and the real | rendered preview updating while it runs, and the GUI thread never blocked."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_adapt_panel_trains_plots_and_previews(make_window, tracked_project, gui, qtbot):
    win = make_window()
    gui.open(win, tracked_project)
    panel = win.adapt_panel
    assert win.session.is_tracked and panel.start_btn.isEnabled() and not panel.cancel_btn.isEnabled()
    panel.mode.setCurrentText("full")
    panel.prior.setText("")
    panel.steps.setValue(12)
    panel.frames.setText("0:30")
    win.session.playhead.set_frame(10)
    previews: list[int] = []
    panel.preview_shown.connect(previews.append)
    monitor = gui.StallMonitor()
    monitor.start()
    with qtbot.waitSignal(panel.adapted, timeout=180_000) as sig:
        job = panel.start()
        assert job is not None and panel.cancel_btn.isEnabled() and not panel.start_btn.isEnabled()
    monitor.stop()
    result = sig.args[0]
    assert result.steps == 12 and result.path.is_file()
    steps, loss = panel.history
    assert steps and steps[-1] == 12 and all(np.isfinite(loss))
    assert previews and previews[-1] == 12  # the last step's preview is on screen
    pix = panel.preview.pixmap()
    assert pix is not None and not pix.isNull() and pix.width() > pix.height()  # real | rendered
    assert "Adapted: 12 steps" in panel.status.text()
    assert panel.start_btn.isEnabled() and not panel.cancel_btn.isEnabled()
    assert win.session.project.stage_record("adapt_full") is not None
    print(f"\nGUI thread longest stall during adaptation: {monitor.max_ms:.0f} ms over {len(monitor.gaps)} ticks")
    assert monitor.max_ms < 250, f"GUI thread blocked {monitor.max_ms:.0f} ms"


def test_adapt_panel_refuses_a_bad_range(make_window, tracked_project, gui):
    win = make_window()
    gui.open(win, tracked_project)
    panel = win.adapt_panel
    panel.frames.setText("40:10")
    assert panel.start() is None
    assert "empty" in panel.status.text()
    assert not win.jobs.running("Adaptation")


def test_sharper_mouth_trains_with_the_mouth_perceptual_term(make_window, tracked_project, gui, qtbot):
    import torch

    win = make_window()
    gui.open(win, tracked_project)
    panel = win.adapt_panel
    panel.mode.setCurrentText("full")
    panel.prior.setText("")
    panel.steps.setValue(3)
    panel.frames.setText("0:20")
    panel.sharp.setChecked(True)
    with qtbot.waitSignal(panel.adapted, timeout=180_000) as sig:
        panel.start()
    result = sig.args[0]
    cfg = torch.load(result.path, map_location="cpu", weights_only=True)["config"]
    assert cfg["w_vgg"] == 0.3 and cfg["vgg_region"] == "mouth"
    assert win.settings.value("adapt/sharp") == "true"  # remembered


def test_a_further_shot_starts_from_a_recent_shot_of_the_actor(make_window, tracked_project, tracked_template, gui,
                                                               qtbot, tmp_path):
    import shutil

    import torch

    from dubstudio.shot.adaptation import actor_file_of

    win = make_window()
    gui.open(win, tracked_project)  # shot A: adapted first
    panel = win.adapt_panel
    panel.mode.setCurrentText("full")
    panel.prior.setText("")
    panel.steps.setValue(3)
    panel.frames.setText("0:20")
    assert panel.from_shot.count() == 1  # nothing adapted yet: only "none"
    with qtbot.waitSignal(panel.adapted, timeout=180_000):
        panel.start()
    shot_b = tmp_path / "shot_b.dubstudio"
    shutil.copytree(tracked_template, shot_b)
    gui.open(win, shot_b)
    offered = [panel.from_shot.itemText(i) for i in range(panel.from_shot.count())]
    assert str(tracked_project.resolve()) in offered and str(shot_b.resolve()) not in offered
    panel.from_shot.setCurrentText(str(tracked_project.resolve()))
    assert not panel.prior.isEnabled()  # the other shot replaces the prior
    assert not panel.from_shot_note.isHidden() and panel.from_shot_note.text().startswith("Same face")
    assert panel.steps.value() == 150  # each start keeps its own step count
    panel.from_shot.setCurrentText("")
    assert panel.steps.value() == 3
    panel.from_shot.setCurrentText(str(tracked_project.resolve()))
    panel.steps.setValue(2)
    panel.frames.setText("20:40")
    with qtbot.waitSignal(panel.adapted, timeout=180_000) as sig:
        panel.start()
        assert "from tracked.dubstudio" in panel.status.text()
    got = torch.load(sig.args[0].path, map_location="cpu", weights_only=True)
    assert Path(got["start_from"]["path"]) == actor_file_of(tracked_project).resolve()
    assert int(win.settings.value("adapt/steps_from_shot")) == 2 and int(win.settings.value("adapt/steps")) == 3
    panel.job = None
    panel._update_enabled()
    assert "from shot tracked.dubstudio" in panel.status.text()
    from dubstudio.shot.adaptation import adaptations

    assert "from shot tracked.dubstudio" in adaptations(win.session.project)[0][1]  # the export dialog's renderer list

    panel.from_shot.setCurrentText(str(tmp_path / "not_a_project"))
    assert panel.start() is None and "From shot:" in panel.status.text()


def test_a_shot_that_looks_like_another_person_is_questioned_before_adapting(make_window, tracked_project,
                                                                             tracked_template, gui, qtbot, tmp_path):
    import shutil

    import torch

    from dubstudio.shot.adaptation import actor_file_of

    win = make_window(answers={"other_actor": "no"})
    gui.open(win, tracked_project)
    panel = win.adapt_panel
    panel.mode.setCurrentText("full")
    panel.prior.setText("")
    panel.steps.setValue(2)
    panel.frames.setText("0:20")
    with qtbot.waitSignal(panel.adapted, timeout=180_000):
        panel.start()
    # the other shot's stored face made 15 % wider: as far from this one as another person's
    src = actor_file_of(tracked_project)
    ck = torch.load(src, map_location="cpu", weights_only=True)
    ck["identity"] = ck["identity"] * torch.tensor([1.15, 1.0, 1.0])
    torch.save(ck, src)
    track_file = tracked_project / "cache" / "track" / "tracking.npz"  # and the shot's tracking, as the editor reads it
    with np.load(track_file) as z:
        arrays = dict(z)
    arrays["identity"] = arrays["identity"] * np.array([1.15, 1.0, 1.0], arrays["identity"].dtype)
    np.savez(track_file, **arrays)
    shot_b = tmp_path / "shot_b.dubstudio"
    shutil.copytree(tracked_template, shot_b)
    gui.open(win, shot_b)
    panel.from_shot.setCurrentText(str(tracked_project.resolve()))
    assert not panel.from_shot_note.isHidden() and "Is it the same actor?" in panel.from_shot_note.text()
    panel.from_shot.setCurrentText("")
    assert panel.from_shot_note.isHidden()
    panel.from_shot.setCurrentText(str(tracked_project.resolve()))
    assert panel.start() is None and "Not started" in panel.status.text()
    kind, text = win.prompter.asked[-1]
    assert kind == "other_actor" and "check that it is the same actor" in text
    win.prompter.answers["other_actor"] = "yes"  # the editor knows better (a lookalike double, say)
    panel.steps.setValue(2)
    with qtbot.waitSignal(panel.adapted, timeout=180_000) as sig:
        panel.start()
    assert sig.args[0].warning and "⚠" in panel.status.text()


def test_the_panel_says_which_mouth_detail_the_check_chose_in_words(make_window, tracked_project, gui):
    """The chosen detail in one short line, the measured reasons in its tooltip: no settings' names."""
    from types import SimpleNamespace

    from dubstudio.eval.detail_check import DetailCheck

    win = make_window()
    gui.open(win, tracked_project)
    panel = win.adapt_panel
    chk = DetailCheck({"low_mix": 0.3, "match_none": 8.0}, list(range(16)),
                      scores=[{"settings": {}, "vs_default": 1.0}, {"settings": {"low_mix": 0.3}, "vs_default": 0.9}],
                      far_scores=[{"settings": {}, "vs_default": 1.0}, {"settings": {"match_none": 8.0}, "vs_default": 0.7}])
    train = SimpleNamespace(steps=600, final_loss=0.05, stored_bytes=12_000_000, path=Path("actor.pt"), warning=None)
    panel._on_done(SimpleNamespace(train=train, detail=chk))
    text = panel.status.text()
    assert "Mouth detail: more of the mouth from the shot's own frames (30 % of its shading), reaching up to 8" in text
    assert "low_mix" not in text and "match_" not in text
    assert "30 % below the default's where no frame of the shot is near" in panel.status.toolTip()
