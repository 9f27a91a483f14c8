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
