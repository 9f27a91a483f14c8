"""File ▸ Import Cut…: an editor's cut (EDL, OTIO, FCP XML) shown as the shots it holds, for
checking, cut out into shot files with their lines, and any shot opened as a project.

The same jobs as ``dubstudio conform import`` (``app.conform``): the review reads the cut and says
every problem on its shot's row; "Cut Out Shots…" writes the shot files, lines and the shot list
(``batch`` and ``farm submit`` take it); "Open Shot" opens a cut-out shot in the editor.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from dubstudio.gui.frames import to_qimage

CUT_FILTER = "Cuts (*.edl *.otio *.otioz *.xml *.fcpxml);;All files (*)"
COLUMNS = ("", "#", "Shot", "Actor", "Record in", "Record out", "Source in", "Media", "Dialogue", "Problems")
THUMB = QSize(96, 54)
RATES = ("25", "24", "23.976", "29.97", "30", "50", "59.94")


def cli_args(req) -> list[str]:
    """``dubstudio conform import`` arguments for an ``ImportRequest``."""
    args = ["conform", "import", str(req.cut), "--json", "-q", "--handles", str(req.handles), "--language", req.language,
            "--export-format", req.export_suffix.lstrip(".")]
    if req.stem is not None:
        args += ["--stem", str(req.stem)]
    if req.stem_start:
        args += ["--stem-start", req.stem_start]
    for m in req.media:
        args += ["--media", str(m)]
    if req.rate is not None:
        args += ["--rate", f"{req.rate.numerator}/{req.rate.denominator}"]
    if not req.strict:
        args.append("--review")
    elif req.out is not None:
        args += ["--out", str(req.out)]
    return args


def run_cli(args: list[str], progress) -> dict:
    """The command line's job in a child process, its JSON result back; cancel kills it.

    OpenTimelineIO's Python objects deadlocked on a worker thread of the editor (its keepalive
    monitor, ``install_external_keepalive_monitor``, against Qt's event loop in the main thread:
    the test hung in the EDL adapter), so the editor reads cuts the way a farm would, in a process
    of its own running the same job as ``dubstudio conform import``."""
    import json
    import subprocess
    import sys
    import time

    from dubstudio.core.errors import Cancelled, DubStudioError

    proc = subprocess.Popen([sys.executable, "-m", "dubstudio.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        while proc.poll() is None:
            if progress.token.cancelled:
                proc.kill()
                raise Cancelled("cancelled")
            time.sleep(0.1)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        lines = [x for x in err.strip().splitlines() if x.startswith("dubstudio")] or err.strip().splitlines() or ["failed"]
        raise DubStudioError(lines[-1].removeprefix("dubstudio: error: "))
    return json.loads(out.strip().splitlines()[-1])


def review(req, progress) -> dict:
    """The cut reviewed (no problem raised: each is on its shot) and a thumbnail of each shot's
    first frame (RGB arrays; made into pixmaps on the GUI thread)."""
    from dubstudio.io.video import VideoReader

    progress.stage("reading the cut")
    res = run_cli(cli_args(req), progress)
    thumbs: dict[int, np.ndarray] = {}
    for s in res["shots"]:
        progress.check()
        if not s["media"] or s["problems"] and any("media" in p for p in s["problems"]):
            continue
        try:
            with VideoReader(Path(s["media"])) as r:
                k = min(max(0, s["source_in"] - s["media_start"]), r.n_frames - 1)
                h = max(2, round(THUMB.width() * r.height / max(1, r.width)) // 2 * 2)
                bgra = r.display_frame(k, (THUMB.width(), min(h, THUMB.height() * 2)))
                thumbs[s["index"]] = np.ascontiguousarray(bgra[..., 2::-1])
        except Exception:  # noqa: BLE001 - a thumbnail is a nicety; the problem column says what is wrong
            continue
    return {"result": res, "thumbs": thumbs}


class CutImportDialog(QDialog):
    """The review: settings above, the shots below, the actions at the bottom."""

    def __init__(self, jobs, open_path: Callable[[Path], object], settings=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import Cut")
        self.setObjectName("cut_import_dialog")
        self.jobs, self.open_path, self.settings = jobs, open_path, settings
        self.job = None
        self.result: dict | None = None
        self.out_dir: Path | None = None
        self.resize(1040, 560)
        form = QFormLayout()
        self.cut_edit, cut_row = self._file_row("Choose the cut", CUT_FILTER)
        self.stem_edit, stem_row = self._file_row("Choose the dialogue stem", "Audio (*.wav *.bwf);;All files (*)")
        self.media_edit, media_row = self._file_row("Choose the media folder", None, folder=True)
        self.stem_start = QLineEdit()
        self.stem_start.setPlaceholderText("from the stem's Broadcast WAV time reference")
        self.rate = QComboBox()
        self.rate.setEditable(True)
        self.rate.addItems(RATES)
        self.rate.setToolTip("The cut's frame rate when the file does not say (an EDL)")
        self.handles = QSpinBox()
        self.handles.setRange(0, 100)
        self.handles.setSuffix(" frames")
        self.language = QLineEdit("de")
        self.language.setMaximumWidth(80)
        form.addRow("Cut:", cut_row)
        form.addRow("Dialogue stem:", stem_row)
        form.addRow("Stem starts at:", self.stem_start)
        form.addRow("Media folder:", media_row)
        opts = QHBoxLayout()
        for label, w in (("Rate:", self.rate), ("Handles:", self.handles), ("Language:", self.language)):
            opts.addWidget(QLabel(label))
            opts.addWidget(w)
        opts.addStretch(1)
        form.addRow("", _wrap(opts))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("cut_shots")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setIconSize(THUMB)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB.height() + 6)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda *_: self.open_selected())
        self.summary = QLabel("Choose a cut and press Check.")
        self.summary.setWordWrap(True)
        self.check_btn = QPushButton("&Check")
        self.check_btn.clicked.connect(self.check)
        self.write_btn = QPushButton("Cut &Out Shots…")
        self.write_btn.setToolTip("Write each shot (with its handles) and its line, and the shot list for batch or a farm")
        self.write_btn.clicked.connect(self.write)
        self.open_btn = QPushButton("&Open Shot")
        self.open_btn.setToolTip("Open the selected shot, once cut out, as a project")
        self.open_btn.clicked.connect(self.open_selected)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        for b in (self.check_btn, self.write_btn, self.open_btn):
            box.addButton(b, QDialogButtonBox.ButtonRole.ActionRole)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.summary)
        lay.addWidget(box)
        self._update_buttons()

    def _file_row(self, title: str, filt: str | None, folder: bool = False) -> tuple[QLineEdit, QWidget]:
        edit = QLineEdit()
        btn = QPushButton("Browse…")

        def browse() -> None:
            if folder:
                got = QFileDialog.getExistingDirectory(self, title, edit.text())
            else:
                got, _ = QFileDialog.getOpenFileName(self, title, edit.text(), filt or "")
            if got:
                edit.setText(got)

        btn.clicked.connect(browse)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(btn)
        return edit, _wrap(row)

    def request(self, out: Path | None = None):
        from dubstudio.app.conform import ImportRequest
        from dubstudio.conform.cut import parse_rate

        text = lambda e: e.text().strip() or None  # noqa: E731
        rate: Fraction | None = parse_rate(self.rate.currentText().strip() or None)
        return ImportRequest(Path(self.cut_edit.text().strip()), Path(text(self.stem_edit)) if text(self.stem_edit) else None,
                             text(self.stem_start), (Path(text(self.media_edit)),) if text(self.media_edit) else (), rate, out,
                             self.handles.value(), self.language.text().strip() or "dub", strict=out is not None)

    def check(self) -> None:
        from dubstudio.core.errors import DubStudioError

        if not self.cut_edit.text().strip():
            self.summary.setText("Choose a cut first.")
            return
        try:
            req = self.request()
        except DubStudioError as e:
            self.summary.setText(str(e))
            return
        self.out_dir = None
        self._run("Reading the cut", lambda p: review(req, p), self._show)

    def write(self) -> None:
        from dubstudio.core.errors import DubStudioError

        if not self.result or not self.result.get("ok"):
            self.summary.setText("Check the cut first: every shot must be free of problems to cut the shots out.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Where to write the shots and the shot list")
        if not folder:
            return
        try:
            req = self.request(Path(folder))
        except DubStudioError as e:
            self.summary.setText(str(e))
            return
        self._run("Cutting out shots", lambda p: run_cli(cli_args(req), p), lambda res: self._written(Path(folder), res))

    def _run(self, name: str, fn, done) -> None:
        if self.job is not None and self.job.running:
            return
        self.job = job = self.jobs.start(name, fn)
        self.summary.setText(f"{name}…")
        job.succeeded.connect(done)
        job.failed.connect(lambda msg: self.summary.setText(msg))
        job.finished.connect(self._update_buttons)
        self._update_buttons()

    def _show(self, got: dict) -> None:
        res, thumbs = got["result"], got["thumbs"]
        self.result = res
        self.table.setRowCount(0)
        for s in res["shots"]:
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = ["", f"{s['index']:03d}", s["name"], s["actor"] or "(none)", s["record_tc_in"], s["record_tc_out"],
                     s["source_tc_in"], Path(s["media"]).name if s["media"] else "(not found)",
                     s["dialogue"] or ("(not covered)" if res["stem"] else "(no stem)"), "; ".join(s["problems"]) or "ok"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == len(cells) - 1 and s["problems"]:
                    item.setForeground(QColor("#e06c5a"))
                    item.setToolTip("\n".join(s["problems"]))
                self.table.setItem(row, col, item)
            if s["index"] in thumbs:
                self.table.item(row, 0).setIcon(QIcon(QPixmap.fromImage(to_qimage(thumbs[s["index"]]))))
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, THUMB.width() + 8)
        n_bad = sum(bool(s["problems"]) for s in res["shots"]) + len(res.get("cut_problems", []))
        stem = res["stem"] or "no dialogue stem chosen"
        text = (f"{len(res['shots'])} shot(s), {len(res['actors'])} actor(s) at {res['rate']} fps; dialogue: {stem}. "
                + (f"{n_bad} problem(s) to fix before the shots can be cut out." if n_bad else
                   ("Ready: Cut Out Shots… writes the shot files and the shot list." if res["stem"] else
                    "Choose the dialogue stem to cut the lines out.")))
        text += "".join(f"\n{p}" for p in res.get("cut_problems", []))
        self.summary.setText(text)
        self.result["ok"] = res.get("ok", False) and bool(res["stem"])

    def _written(self, folder: Path, res: dict) -> None:
        self.out_dir = folder
        self.summary.setText(f"{len(res['shots'])} shot(s) cut out into {folder}; shot list {res['shot_list']}. "
                             f"Open a shot here, or dub them all: dubstudio batch {res['shot_list']} "
                             f"(or dubstudio farm submit … for a render farm).")
        self._update_buttons()

    def selected_shot_file(self) -> Path | None:
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows or self.out_dir is None or not self.result:
            return None
        s = self.result["shots"][min(rows)]
        from dubstudio.conform.shots import read_manifest

        entry = next((e for e in read_manifest(self.out_dir)["shots"] if e["index"] == s["index"]), None)
        return Path(entry["shot_file"]) if entry and Path(entry["shot_file"]).is_file() else None

    def open_selected(self) -> None:
        path = self.selected_shot_file()
        if path is not None:
            self.open_path(path)
            self.accept()

    def _update_buttons(self) -> None:
        busy = self.job is not None and self.job.running
        self.check_btn.setEnabled(not busy)
        self.write_btn.setEnabled(not busy and bool(self.result and self.result.get("ok")))
        self.open_btn.setEnabled(not busy and self.out_dir is not None and bool(self.table.selectedItems()))


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w


class CutImport:
    """Adds File ▸ Import Cut… (after Open Recent)."""

    def __init__(self, services, open_path: Callable[[Path], object], parent: QWidget | None = None) -> None:
        self.services, self.open_path = services, open_path
        self.dialog: CutImportDialog | None = None
        self.action = services.new_action("import_cut", "Import &Cut…", self.show, "Ctrl+Shift+I",
                                          tip="Read an editor's cut (EDL, OTIO, FCP XML): its shots, timecodes, actors and dialogue")
        menu = services.menu("&File")
        seps = [a for a in menu.actions() if a.isSeparator()]
        menu.insertAction(seps[0], self.action) if seps else menu.addAction(self.action)
        self.parent = parent

    def show(self) -> CutImportDialog:
        if self.dialog is None:
            self.dialog = CutImportDialog(self.services.jobs, self.open_path, parent=self.parent)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog
