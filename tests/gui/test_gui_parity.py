"""The editor sets every user option of dub / adapt / export that the CLI does: each widget set to a
value other than the default, the request the panel or dialog builds carries it, field by field,
for the field list tests/app/test_parity.py checks against the CLI (``parity_fields``). Device and
CPU threads are the editor's Settings (``EDITOR_SETTINGS``)."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from parity_fields import EDITOR_SETTINGS, check_carries, user_fields

from dubstudio.app.adapt import AdaptRequest
from dubstudio.app.dub import DubRequest, parse_sync
from dubstudio.app.export import ExportRequest
from dubstudio.cli import build_parser
from dubstudio.core.errors import DubStudioError


def parse(argv: list) -> object:
    return build_parser().parse_args([str(a) for a in argv])


@pytest.fixture
def editor_settings():
    """``set(win)``: Settings ▸ device cpu, 3 CPU threads (the torch threads put back after)."""
    import torch

    n = torch.get_num_threads()

    def set_(win) -> None:
        win.apply_preferences(replace(win.prefs, device="cpu", threads=3))
        assert win.services.device() == "cpu"

    yield set_
    torch.set_num_threads(n)


def make_files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("prior.pt", "actor.pt", "cfg.json", "line.wav", "dubber.mp4", "a2e.pt"):
        p = tmp_path / "in" / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(json.dumps({"lr_d": 1e-4}) if name.endswith(".json") else "x")
        out[name] = p
    for name in ("a", "b"):
        (tmp_path / "in" / name).mkdir()
        out[name] = tmp_path / "in" / name
    return out


ADAPT_NUMBERS = {"resolution": "64", "width": "8", "batch_size": "4", "lr_g": "1e-4", "lr_tex": "2e-3", "w_vgg": "0.3",
                 "w_adv": "0.1", "seed": "7"}


def test_the_adapt_panel_sets_every_adapt_option(make_window, tracked_project, gui, tmp_path, editor_settings):
    from dubstudio.cli.train import adapt_request

    f = make_files(tmp_path)
    win = make_window()
    gui.open(win, tracked_project)
    editor_settings(win)
    panel = win.adapt_panel
    assert panel.advanced_scroll.isHidden() and panel.advanced_button.text() == "Advanced"  # collapsed by default
    panel.set_advanced_visible(True)
    assert not panel.advanced_scroll.isHidden()
    root = win.session.project.root

    # from a prior, mixed with its people
    panel.mode.setCurrentText("mixed")
    panel.prior.setText(str(f["prior.pt"]))
    panel.prior_projects.setText(f"{f['a']}; {f['b']}")
    panel.steps.setValue(123)
    panel.frames.setText("0:40")
    panel.val_frames.setText("40:50")
    panel.val_every.setValue(25)
    panel.tex_init.setCurrentIndex(panel.tex_init.findData("random"))
    panel.config_file.setText(str(f["cfg.json"]))
    panel.restart.setChecked(True)
    panel.detail_check.setChecked(False)
    for key, text in ADAPT_NUMBERS.items():
        panel.override_edits[key].setText(text)
    panel.vgg_region.setCurrentIndex(panel.vgg_region.findData("mouth"))
    assert panel.advanced_button.text() == "Advanced (15 set)"
    req = panel.request()
    checked = check_carries(req, {
        "project": root, "steps": 123, "mode": "mixed", "prior": f["prior.pt"], "prior_projects": (f["a"], f["b"]),
        "frames": "0:40", "val_frames": "40:50", "config_file": f["cfg.json"], "device": "cpu", "threads": 3,
        "restart": True, "detail_check": False, "overrides.resolution": 64, "overrides.width": 8, "overrides.batch_size": 4,
        "overrides.lr_g": 1e-4, "overrides.lr_tex": 2e-3, "overrides.w_vgg": 0.3, "overrides.vgg_region": "mouth",
        "overrides.w_adv": 0.1, "overrides.seed": 7, "overrides.tex_init": "random", "overrides.val_every": 25,
    })
    assert req.keep_longer  # the editor keeps a longer adaptation
    # the request `dubstudio adapt` makes from the same options
    cli = adapt_request(parse([
        "adapt", "--project", root, "--steps", 123, "--mode", "mixed", "--prior", f["prior.pt"], "--prior-projects", f["a"],
        f["b"], "--frames", "0:40", "--val-frames", "40:50", "--val-every", 25, "--tex-init", "random",
        "--config", f["cfg.json"], "--device", "cpu", "--threads", 3, "--restart", "--no-detail-check", "--vgg-region", "mouth",
        *[a for k, v in ADAPT_NUMBERS.items() for a in ("--" + k.replace("_", "-"), v)],
    ]))
    assert replace(cli, keep_longer=True) == req

    # from another shot of the actor (it replaces the prior; mixed mode cannot start from it)
    panel.mode.setCurrentText("full")
    panel.from_shot.setCurrentText(str(f["actor.pt"]))
    assert not panel.prior.isEnabled() and not panel.prior_projects.isEnabled()
    panel.steps.setValue(40)
    req = panel.request()
    checked |= check_carries(req, {"from_shot": f["actor.pt"], "mode": "full", "steps": 40})
    assert req.prior is None and req.prior_projects is None
    assert checked == set(user_fields(AdaptRequest))
    panel.mode.setCurrentText("mixed")
    with pytest.raises(DubStudioError, match="From shot: mixed mode"):
        panel.request()


def test_the_adapt_panel_says_what_is_wrong_and_remembers_its_advanced_settings(make_window, tracked_project, gui, qtbot,
                                                                                tmp_path, editor_settings):
    from dubstudio.gui.adapt_panel import AdaptPanel

    f = make_files(tmp_path)
    win = make_window()
    gui.open(win, tracked_project)
    editor_settings(win)
    panel = win.adapt_panel
    panel.mode.setCurrentText("full")
    panel.prior.setText("")
    panel.frames.setText("0:30")
    # Sharper mouth: the shortcut fills what was not set by hand
    panel.sharp.setChecked(True)
    assert {k: panel.request().overrides.get(k) for k in ("w_vgg", "vgg_region")} == {"w_vgg": 0.3, "vgg_region": "mouth"}
    panel.override_edits["w_vgg"].setText("0.5")
    panel.vgg_region.setCurrentIndex(panel.vgg_region.findData("crop"))
    assert {k: panel.request().overrides.get(k) for k in ("w_vgg", "vgg_region")} == {"w_vgg": 0.5, "vgg_region": "crop"}
    panel.sharp.setChecked(False)
    panel.reset_advanced()
    assert panel.request().overrides == {} and panel.advanced_button.text() == "Advanced"
    # --val-every goes with --val-frames only, as on the command line
    panel.val_every.setValue(30)
    assert "val_every" not in panel.request().overrides and not panel.val_every.isEnabled()
    for edit, text, says in ((panel.override_edits["resolution"], "abc", "Resolution: give a whole number"),
                             (panel.override_edits["lr_g"], "0", "Renderer LR must be above 0"),
                             (panel.override_edits["w_adv"], "-1", "Adversarial must be at least 0"),
                             (panel.override_edits["resolution"], "100", "resolution must be divisible by"),
                             (panel.val_frames, "60:70", "Validation frames: frame range '60:70' is empty"),
                             (panel.config_file, str(tmp_path / "missing.json"), "cannot read the config overrides"),
                             (panel.prior, str(tmp_path / "missing.pt"), "Prior not found")):
        edit.setText(text)
        with pytest.raises(DubStudioError, match=says):
            panel.request()
        assert panel.start() is None and says.split(":")[0] in panel.status.text()
        edit.setText("")
    assert not win.jobs.running("Adaptation")

    # a start remembers the advanced settings (this one fails at once: the prior's projects are empty folders)
    panel.mode.setCurrentText("mixed")
    panel.prior_projects.setText(f"{f['a']}; {f['b']}")
    panel.val_frames.setText("40:50")
    panel.tex_init.setCurrentIndex(panel.tex_init.findData("random"))
    panel.config_file.setText(str(f["cfg.json"]))
    panel.override_edits["seed"].setText("7")
    panel.vgg_region.setCurrentIndex(panel.vgg_region.findData("mouth"))
    panel.restart.setChecked(True)
    panel.detail_check.setChecked(False)
    assert panel.start() is not None
    qtbot.waitUntil(lambda: "Adaptation failed" in panel.status.text(), timeout=60_000)
    assert not panel.restart.isChecked()  # for that start only
    again = AdaptPanel(win.session, win.jobs, win.settings, device=win.job_device)
    assert again.prior_projects.text() == f"{f['a']}; {f['b']}" and again.val_frames.text() == "40:50"
    assert again.val_every.value() == 30 and again.tex_init.currentData() == "random"
    assert again.config_file.text() == str(f["cfg.json"]) and again.override_edits["seed"].text() == "7"
    assert again.vgg_region.currentData() == "mouth" and not again.restart.isChecked()
    assert not again.detail_check.isChecked()  # remembered, like the other settings
    assert again.advanced_button.text() == "Advanced (7 set)" and again.advanced_scroll.isHidden()
    again.deleteLater()


def fake_adaptations(project_root: Path) -> Path:
    """Two adaptations recorded (full, texture), so that the renderer list offers each mode; the
    dialog only lists them, nothing loads the actor file."""
    from dubstudio.project.store import Project

    p = Project.open(project_root)
    actor = project_root / "actors" / "fake.pt"
    actor.parent.mkdir(exist_ok=True)
    actor.write_text("x")
    for stage, mode in (("adapt", "texture"), ("adapt_full", "full"), ("adapt_texture", "texture")):
        p.record_stage(stage, "key", {"actor": "actors/fake.pt"}, {"mode": mode, "steps": 2})
    return actor


def test_the_export_dialog_sets_every_export_option(make_window, tracked_project, gui, tmp_path, monkeypatch,
                                                    editor_settings):
    from dubstudio.cli.export import export_request
    from dubstudio.export import resume

    f = make_files(tmp_path)
    fake_adaptations(tracked_project)
    monkeypatch.setattr(resume, "previous_export", lambda out: True)  # an earlier export: "Start over" is offered
    win = make_window(answers={"replace_output": "yes"})
    gui.open(win, tracked_project)
    editor_settings(win)
    dlg = win.export.make_dialog()
    assert dlg.advanced.isHidden() and dlg.advanced_button.text() == "Advanced"  # collapsed by default
    dlg.set_advanced_visible(True)
    assert not dlg.advanced.isHidden()
    root = win.session.project.root

    def step(change) -> None:
        """One widget changed: the command line follows it, and parses back to the request."""
        change()
        c = dlg.choice()
        assert dlg.command.text() == c.command_line()
        assert export_request(build_parser().parse_args(shlex.split(dlg.command.text())[1:])) == c, dlg.command.text()

    def pick(combo, data) -> None:
        index = [tuple(d) if isinstance(d := combo.itemData(i), list) else d for i in range(combo.count())].index(data)
        combo.setCurrentIndex(index)

    pick(dlg.audio, "file")  # no file yet: no command line (it would say --audio None)
    assert dlg.command.text() == ""
    pick(dlg.audio, "original")
    for change in (
        lambda: pick(dlg.renderer, ("neural", "full")),
        lambda: dlg.checkpoint.setText(str(f["actor.pt"])),
        lambda: dlg.output.setText(str(tmp_path / "out.mp4")),
        lambda: pick(dlg.format, "mp4"),
        lambda: dlg.crf.setValue(20),
        lambda: dlg.preset.setCurrentText("slow"),
        lambda: pick(dlg.region, "mouth"),
        lambda: pick(dlg.colour, "meanstd"),
        lambda: dlg.detail_amount.setValue(0.5),
        lambda: dlg.mouth_detail.setChecked(False),
        lambda: dlg.postprocess.setChecked(False),
        lambda: dlg.batch_size.setValue(4),
        lambda: dlg.tracked_curves.setChecked(True),
        lambda: dlg.audio_file.setText(str(f["line.wav"])),
        lambda: pick(dlg.audio, "file"),
        lambda: dlg.offset_check.setChecked(True),
        lambda: dlg.offset.setValue(0.5),
        lambda: pick(dlg.policy, "trim"),
        lambda: dlg.guide.setChecked(True),
        lambda: dlg.side.setChecked(True),
        lambda: dlg.scale.setValue(0.5),
        lambda: dlg.labels.setChecked(False),
        lambda: dlg.burn_in.setChecked(False),
        lambda: dlg.watermark.setChecked(False),
        lambda: dlg.watermark_amplitude.setValue(3.0),
        lambda: dlg.verify.setChecked(True),
        lambda: dlg.restart.setChecked(True),
    ):
        step(change)
    assert dlg.detail.isChecked()  # 0.5 of the detail: the checkbox says "on"
    checked = check_carries(dlg.choice(), {
        "project": root, "output": tmp_path / "out.mp4", "format": "mp4", "renderer.mode": "full",
        "renderer.checkpoint": f["actor.pt"], "renderer.device": "cpu", "renderer.mouth_detail": False, "composite.region": "mouth",
        "composite.colour": "meanstd", "composite.detail": 0.5, "composite.postprocess": False, "composite.batch_size": 4,
        "tracked_curves": True, "threads": 3, "audio": "file", "audio_file": f["line.wav"], "audio_offset": 0.5,
        "audio_policy": "trim", "guide_track": True, "side_by_side": True, "review_scale": 0.5, "labels": False,
        "burn_in": False, "crf": 20, "preset": "slow", "watermark": False, "watermark_amplitude": 3.0, "verify": True,
        "restart": True,
    })
    # the codec profiles of the other formats (each only for its format)
    step(lambda: pick(dlg.format, "mov"))
    step(lambda: dlg.prores.setCurrentText("lt"))
    checked |= check_carries(dlg.choice(), {"format": "mov", "prores": "lt"})
    assert dlg.choice().crf == 17 and not dlg.preset.isEnabled()  # MP4's: not for a MOV
    step(lambda: pick(dlg.format, "mxf"))
    step(lambda: pick(dlg.dnxhr, "hqx"))
    checked |= check_carries(dlg.choice(), {"format": "mxf", "dnxhr": "hqx"})
    # the copy baseline: its frames and crop size (the actor file is the neural renderer's)
    step(lambda: pick(dlg.renderer, ("copy", None)))
    assert not dlg.checkpoint.isVisibleTo(dlg) and dlg.copy_resolution.isVisibleTo(dlg)
    step(lambda: dlg.copy_frames.setText("5:30"))
    step(lambda: dlg.copy_resolution.setValue(128))
    c = dlg.choice()
    checked |= check_carries(c, {"renderer.kind": "copy", "renderer.train_frames": "5:30", "renderer.resolution": 128})
    assert c.renderer.checkpoint is None and c.renderer.mode is None and c.renderer.device == "auto"  # not the copy's
    step(lambda: pick(dlg.audio, "original"))
    step(lambda: pick(dlg.audio, "none"))
    assert dlg.choice().audio == "none"
    # an existing file that is not an export of this shot: the dialog asks before replacing it
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"someone else's file")
    step(lambda: dlg.output.setText(str(taken)))
    step(lambda: pick(dlg.format, "mp4"))
    dlg._accept()
    assert ("replace_output", f"{taken} already exists and is not an export of this shot. Replace it?") in win.prompter.asked
    checked |= check_carries(dlg.choice(), {"overwrite": True})  # answered yes (this window's answers)
    assert "--overwrite" in dlg.command.text()
    step(lambda: dlg.output.setText(str(tmp_path / "other.mp4")))
    assert not dlg.choice().overwrite  # another name: the answer was for that file only
    assert checked == set(user_fields(ExportRequest))
    assert EDITOR_SETTINGS >= {"threads", "renderer.device"}  # from Settings, checked above

    # the skin detail checkbox is the amount's shortcut: on = 1, off = 0
    dlg.detail.setChecked(False)
    assert dlg.detail_amount.value() == 0.0 and dlg.choice().composite.detail == 0.0 and "--detail 0" in dlg.command.text()
    dlg.detail.setChecked(True)
    assert dlg.detail_amount.value() == 1.0 and "--detail" not in dlg.command.text()
    # labels and burn-in only mean something side by side
    dlg.side.setChecked(False)
    assert not dlg.labels.isEnabled() and dlg.choice().labels and "--no-labels" not in dlg.command.text()
    dlg.set_advanced_visible(False)
    assert dlg.advanced.isHidden() and dlg.advanced_button.text().startswith("Advanced (")


def test_the_dub_dialogs_set_every_dub_option(make_window, tracked_project, gui, tmp_path):
    from dubstudio.cli.dub import dub_request
    from dubstudio.gui.dubbing import DubSourceDialog

    f = make_files(tmp_path)
    win = make_window()
    gui.open(win, tracked_project)
    root, video = win.session.project.root, win.session.project.video_path

    dlg = DubSourceDialog("audio", win.services.settings, win, shot_video=video)
    dlg.path.setText(str(f["line.wav"]))
    dlg.start.setValue(1.5)
    dlg.model.setCurrentIndex(dlg.model.findData("shot"))
    dlg.script.setPlainText("  Guten Morgen, Anna.\n")
    dlg.language.setText("de")
    dlg.key_visemes.setChecked(True)
    req = dlg.request(root)
    checked = check_carries(req, {"project": root, "audio": f["line.wav"], "offset": 1.5, "audio_model": "shot",
                                  "text": "Guten Morgen, Anna.", "language": "de", "key_visemes": True})
    assert req == dub_request(parse(["dub", "--project", root, "--audio", f["line.wav"], "--offset", 1.5, "--audio-model", "shot",
                                     "--text", "Guten Morgen, Anna.", "--language", "de", "--key-visemes"]))
    dlg.script.setPlainText("")
    assert dlg.request(root).text is None and not dlg.request(root).key_visemes  # no keys without a script
    dlg.model.setCurrentIndex(dlg.model.findData("file"))
    dlg.model_file.setText(str(f["a2e.pt"]))
    assert dlg.request(root).audio_model == str(f["a2e.pt"])

    dlg = DubSourceDialog("dubber", win.services.settings, win, shot_video=video)
    dlg.path.setText(str(f["dubber.mp4"]))
    dlg.start.setValue(-0.25)
    dlg.sync_mode.setCurrentIndex(dlg.sync_mode.findData("seconds"))  # set by hand
    dlg.sync_s.setValue(1.5)  # as far as --dubber-sync goes (+-2 s)
    req = dlg.request(root)
    checked |= check_carries(req, {"dubber": f["dubber.mp4"], "offset": -0.25, "dubber_sync": 1.5})
    cli = dub_request(parse(["dub", "--project", root, "--dubber", f["dubber.mp4"], "--offset", -0.25, "--dubber-sync", 1.5]))
    assert replace(cli, dubber_sync=parse_sync(cli.dubber_sync)) == req  # the CLI keeps the seconds as text
    dlg.sync_mode.setCurrentIndex(dlg.sync_mode.findData("off"))
    assert dlg.request(root).dubber_sync == "off"
    assert checked == set(user_fields(DubRequest))
    assert isinstance(req, DubRequest) and req.adapt_config is None and req.placement is None
