"""Settings: stored in QSettings, applied to the window (device for jobs, autosave, sound)."""

from __future__ import annotations

from dubstudio.gui.settings_dialog import Preferences, SettingsDialog


def test_preferences_round_trip_and_apply(make_window, qtbot):
    win = make_window(autosave_ms=30_000)  # the default interval: preferences may change it
    assert win.prefs == Preferences.load(win.settings)
    win.device_name = "cpu"
    assert win.job_device() == "cpu"
    dlg = SettingsDialog(win.prefs, win.device_name, win)
    qtbot.addWidget(dlg)
    dlg.device.setCurrentText("cuda")
    dlg.autosave.setValue(90)
    dlg.preview_every.setValue(7)
    dlg.audio.setChecked(False)
    win.apply_preferences(dlg.preferences())
    assert win.job_device() == "cuda"  # an explicit choice wins over the probe
    assert win.autosave_timer.interval() == 90_000
    assert win.adapt_panel.preview_every == 7 and win.audio.muted
    again = Preferences.load(win.settings)
    assert (again.device, again.autosave_s, again.preview_every, again.playback_audio) == ("cuda", 90, 7, False)


def test_defaults_and_bad_values(make_window):
    win = make_window()
    win.settings.setValue("prefs/device", "tpu")
    win.settings.setValue("prefs/autosave_s", "soon")
    p = Preferences.load(win.settings)
    assert p.device == "auto" and p.autosave_s == Preferences().autosave_s
    assert p.resolve_device("cuda") == "cuda" and Preferences(device="cpu").resolve_device("cuda") == "cpu"


def test_the_projects_folder_is_the_one_the_cli_uses(make_window, fresh_video, gui, qtbot, tmp_path, monkeypatch):
    """Settings sets the projects folder for the editor and the CLI alike (core.paths), and a video
    opened afterwards gets its project there, not beside the video."""
    from dubstudio.core.paths import default_project_dir, projects_dir

    monkeypatch.delenv("DUBSTUDIO_PROJECTS", raising=False)
    win = make_window()
    dlg = SettingsDialog(win.prefs, win.device_name, win)
    qtbot.addWidget(dlg)
    assert dlg.projects.text() == str(projects_dir()) and dlg.projects_dir() is None  # unchanged
    dlg.projects.setText(str(tmp_path / "studio projects"))
    assert dlg.projects_dir() == tmp_path / "studio projects"
    monkeypatch.setattr(SettingsDialog, "exec", lambda self: 1)
    monkeypatch.setattr("dubstudio.gui.main_window.SettingsDialog", lambda *a, **k: dlg)
    win.open_settings()
    assert projects_dir() == tmp_path / "studio projects"
    gui.open(win, fresh_video)
    assert win.session.project.root == default_project_dir(fresh_video)
    assert win.session.project.root.parent == tmp_path / "studio projects"
    assert not list(fresh_video.parent.glob("*.dubstudio"))
    monkeypatch.setenv("DUBSTUDIO_PROJECTS", str(tmp_path / "env"))  # the environment fixes it: shown, not editable
    fixed = SettingsDialog(win.prefs, win.device_name, win)
    qtbot.addWidget(fixed)
    assert not fixed.projects.isEnabled() and fixed.projects_dir() is None
