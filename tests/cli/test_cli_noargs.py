"""`dubstudio` with no arguments: the editor on the built-in sample, or, with no display, a clear
message and the headless pipeline."""

from __future__ import annotations

import dubstudio.cli as cli
import dubstudio.cli.shot as cli_shot
import dubstudio.gui.app as app


def test_no_display_falls_back_to_the_headless_run(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(app, "display_problem", lambda: "no display found (DISPLAY and WAYLAND_DISPLAY are not set)")
    monkeypatch.setattr(cli_shot, "cmd_run", lambda args: calls.append(args.video) or 0)
    assert cli.main([]) == 0
    assert calls == [None]  # `run` with no video: the built-in sample
    err = capsys.readouterr().err
    assert "cannot open the editor: no display" in err and "headless pipeline" in err


def test_with_a_display_the_editor_opens_the_sample(monkeypatch, tmp_path):
    opened = []
    sample = tmp_path / "sample_astronaut.mp4"
    monkeypatch.setattr(app, "display_problem", lambda: None)
    monkeypatch.setattr(app, "main", lambda project=None: opened.append(project) or 0)
    monkeypatch.setattr("dubstudio.app.sample.ensure_sample", lambda: sample)
    assert cli.main([]) == 0
    assert opened == [str(sample)]
