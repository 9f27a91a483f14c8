"""File ▸ Import Cut…: the cut's shots listed with thumbnails, timecodes, actors and problems; shots
cut out; a shot opened as a project."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_helpers import edl, stem

pytestmark = pytest.mark.media


def test_import_cut_reviews_cuts_out_and_opens_a_shot(make_window, media, tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    a = media / "talk_a.mp4"
    cut = edl(tmp_path / "cut.edl", [
        ("TALKA", "00:00:00:10", "00:00:01:20", "01:00:00:00", "01:00:01:10", "sh010 [anna]", a),
        ("TALKA", "00:00:02:00", "00:00:03:00", "01:00:01:10", "01:00:02:10", "sh020 [anna]", a),
        ("TALKA", "00:00:04:10", "00:00:05:10", "01:00:02:10", "01:00:03:10", "late [ben]", a),
    ])
    win = make_window()
    win.actions["import_cut"].trigger()
    dlg = win.cut_import.dialog
    assert dlg is not None and dlg.isVisible()
    dlg.cut_edit.setText(str(cut))
    dlg.rate.setCurrentText("25")
    dlg.check_btn.click()
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=60_000)
    t = dlg.table
    assert t.rowCount() == 3
    assert [t.item(r, 2).text() for r in range(3)] == ["sh010", "sh020", "late"]
    assert [t.item(r, 3).text() for r in range(3)] == ["anna", "anna", "ben"]
    assert t.item(0, 4).text() == "01:00:00:00" and t.item(0, 6).text() == "00:00:00:10"
    assert not t.item(0, 0).icon().isNull()  # the first frame's thumbnail
    assert "lies outside talk_a.mp4" in t.item(2, 9).text() and t.item(0, 9).text() == "ok"
    assert t.item(0, 8).text() == "(no stem)"
    assert not dlg.write_btn.isEnabled() and "problem(s) to fix" in dlg.summary.text()
    # fixed cut (the bad shot removed) and a stem: ready to cut out
    cut2 = edl(tmp_path / "cut2.edl", [
        ("TALKA", "00:00:00:10", "00:00:01:20", "01:00:00:00", "01:00:01:10", "sh010 [anna]", a),
        ("TALKA", "00:00:02:00", "00:00:03:00", "01:00:01:10", "01:00:02:10", "sh020 [anna]", a),
    ])
    dlg.cut_edit.setText(str(cut2))
    dlg.stem_edit.setText(str(stem(tmp_path / "de.wav", 4.0)))
    dlg.result = None
    dlg.check_btn.click()
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=60_000)
    assert dlg.write_btn.isEnabled(), dlg.summary.text()
    assert dlg.table.item(1, 8).text() == "de.wav 01:00:01:10-01:00:02:10"
    out = tmp_path / "job"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    dlg.write_btn.click()
    qtbot.waitUntil(lambda: dlg.out_dir is not None, timeout=120_000)
    assert (out / "shots.csv").is_file() and "cut out into" in dlg.summary.text()
    dlg.table.selectRow(1)
    assert dlg.open_btn.isEnabled()
    opened = []
    monkeypatch.setattr(dlg, "open_path", lambda p: opened.append(Path(p)))
    dlg.open_btn.click()
    assert opened == [out / "shots" / "002_sh020.mov"] and not dlg.isVisible()
