"""File ▸ Export…: the export dialog.

The dialog is a face of the export job: its choices become an ``app.export.ExportRequest``, the
same request ``dubstudio export`` builds from its arguments, checked by the request itself; the
equivalent command line is shown, to copy. The job and its result are ``export_controller``'s.

The collapsed "Advanced" section holds the rest of ``dubstudio export``'s options (actor file, copy
baseline crop size, composite region, colour matching, skin detail amount, background pass, tracked
curves, batch size, review labels and burn-in, x264 preset, watermark); device and CPU threads are
the editor's Settings (``--device``/``--threads``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dubstudio.core.errors import DubStudioError
from dubstudio.app.export import ExportRequest
from dubstudio.app.renderer import COLOURS, REGIONS, CompositeChoice, RendererChoice
from dubstudio.gui.widgets import disclosure_button, set_disclosed
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices
from dubstudio.shot.adaptation import adaptations

FORMAT_LABELS = {
    "mp4": "MP4 — H.264 + AAC (delivery, review)",
    "mov": "MOV — ProRes 422 HQ + PCM (editing)",
    "mxf": "MXF — DNxHR HQ + PCM (Avid Media Composer)",
    "png": "PNG sequence + WAV (a folder)",
}
AUDIO_LABELS = {"dubbed": "Dubbed", "original": "Original (the shot's own)", "file": "File…", "none": "None"}
POLICY_LABELS = {
    None: "Default (pad dubbed audio, fit the shot's own)",
    "pad": "Pad with silence (error if longer)",
    "trim": "Trim at the shot's end (error if shorter)",
    "fit": "Pad or trim, whichever is needed",
    "error": "Refuse any difference of a frame or more",
}
REGION_LABELS = {"lower": "Lower face + mouth", "mouth": "Mouth only"}
COLOUR_LABELS = {"lowfreq": "Low frequencies (default)", "meanstd": "Mean and spread", "none": "None"}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
NOTE_STYLE = "color: #9aa0a6;"
COPY_FRAMES = "0:100"
WARN_STYLE = "color: #ffcc66;"


# ------------------------------------------------------------------------------- the dialog


class FitScroll(QScrollArea):
    """A scroll area as tall as its content wants (QScrollArea caps its size hint at 24 lines of
    text), which scrolls only when its window has less room than that."""

    def __init__(self, content: QWidget, min_height: int = 160) -> None:
        super().__init__()
        self.min_height = min_height
        self.setWidget(content)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def _extra(self) -> QSize:
        f = 2 * self.frameWidth()
        return QSize(f + self.verticalScrollBar().sizeHint().width(), f)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return self.widget().sizeHint() + self._extra()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        m = self.widget().minimumSizeHint() + self._extra()
        return QSize(m.width(), min(m.height(), self.min_height))


class ExportDialog(QDialog):
    """The export options (see the module docstring). ``choice()`` is what Export runs."""

    def __init__(self, session: ShotSession, services: EditorServices, parent: QWidget | None = None) -> None:
        super().__init__(parent or services.parent)
        from dubstudio.shot.dub_audio import recorded_dub_audio

        self.session, self.services = session, services
        s = session
        self.project = project = s.project
        self.n_frames = s.info.n_frames
        self.setWindowTitle("Export Dubbed Shot")
        self.setMinimumWidth(600)
        settings = services.settings
        self.rec = recorded_dub_audio(project)
        self._overwrite: str | None = None  # the output the user agreed to replace
        self._replace_asked: bool | None = None
        self._durations: dict[tuple, float | None] = {}
        self.driven = driven = s.curves is not None and any(s.curves.has_driven(i) for i in range(s.curves.n_controls))
        self.shot_has_audio = bool(s.info.has_audio)

        # output
        self.format = QComboBox()
        for k, v in FORMAT_LABELS.items():
            self.format.addItem(v, k)
        last_dir = Path(str(settings.value("export/dir", ""))) if settings.value("export/dir") else project.root / "exports"
        self.output = QLineEdit(str(last_dir / f"{s.info.path.stem}_dubbed.mp4"))
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.setContentsMargins(0, 0, 0, 0)
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        fmt = str(settings.value("export/format", "mp4"))
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        self._set_suffix(self.format.currentData())
        self.format.currentIndexChanged.connect(lambda _i: (self._set_suffix(self.format.currentData()), self._refresh()))
        self.crf = QSpinBox()
        self.crf.setRange(0, 51)
        self.crf.setValue(17)
        self.crf.setToolTip("H.264 quality: 17-18 is visually lossless, 23 is x264's default")
        self.crf.setMaximumWidth(90)
        self.prores = QComboBox()
        self.prores.addItems(["hq", "standard", "lt", "proxy"])
        self.dnxhr = QComboBox()
        for k, label in (("hq", "HQ (8-bit)"), ("hqx", "HQX (10-bit: keeps a 10-bit source's bits)"), ("sq", "SQ"), ("lb", "LB (offline)")):
            self.dnxhr.addItem(label, k)
        self.side = QCheckBox("Side-by-side review (original | dubbed)")
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.1, 1.0)
        self.scale.setSingleStep(0.25)
        self.scale.setValue(1.0)
        self.scale.setToolTip("Size of each half (0.5 makes a 1080p shot's review 1928x540)")
        self.scale.setMaximumWidth(90)
        side_row = QHBoxLayout()
        side_row.setContentsMargins(0, 0, 0, 0)
        side_row.addWidget(self.side)
        side_row.addStretch(1)
        side_row.addWidget(QLabel("scale"))
        side_row.addWidget(self.scale)
        out_box = QGroupBox("Output")
        # notes below the form, not in it: QFormLayout gives a word-wrapped row too little height
        ob = QVBoxLayout(out_box)
        of = QFormLayout()
        ob.addLayout(of)
        of.addRow("File", out_row)
        of.addRow("Format", self.format)
        self.crf_label, self.prores_label = QLabel("H.264 CRF"), QLabel("ProRes profile")
        of.addRow(self.crf_label, self.crf)
        of.addRow(self.prores_label, self.prores)
        self.dnxhr_label = QLabel("DNxHR profile")
        of.addRow(self.dnxhr_label, self.dnxhr)
        of.addRow("", side_row)
        # a stopped export to this name (cancelled, failed, the editor closed): it continues
        self.stopped_note = QLabel()
        self.stopped_note.setWordWrap(True)
        self.stopped_note.setStyleSheet(NOTE_STYLE)
        self.restart = QCheckBox("Start over instead")
        self.restart.setToolTip("Render every frame again rather than continue the stopped export")
        ob.addWidget(self.stopped_note)
        ob.addWidget(self.restart)
        # stopped exports to other names in the same folder: their hidden work folders hold disk space
        self.others_note = QLabel()
        self.others_note.setWordWrap(True)
        self.others_note.setStyleSheet(NOTE_STYLE)
        self.delete_others = QPushButton("Delete them")
        self.delete_others.setToolTip("Delete the finished segments of these stopped exports (they cannot be continued "
                                      "afterwards); same as dubstudio stopped-exports FOLDER --delete")
        self.delete_others.clicked.connect(self._delete_others)
        others_row = QHBoxLayout()
        others_row.addWidget(self.others_note, 1)
        others_row.addWidget(self.delete_others, 0, Qt.AlignmentFlag.AlignTop)
        ob.addLayout(others_row)

        # audio
        self.audio = QComboBox()
        if self.rec is not None and self.rec.get("path"):
            start = float(self.rec.get("start_in_shot_s", 0.0))
            self.audio.addItem(f"Dubbed — {Path(self.rec['path']).name} (starts at {start:+.2f} s)", "dubbed")
        if self.shot_has_audio:
            self.audio.addItem(AUDIO_LABELS["original"], "original")
        self.audio.addItem(AUDIO_LABELS["file"], "file")
        self.audio.addItem(AUDIO_LABELS["none"], "none")
        default = "dubbed" if self.audio.findData("dubbed") >= 0 and (driven or not self.shot_has_audio) else (
            "original" if self.shot_has_audio else "none")
        self.audio.setCurrentIndex(max(0, self.audio.findData(default)))
        self.audio_file = QLineEdit()
        self.audio_file.setPlaceholderText("an audio file to mux")
        afb = QToolButton()
        afb.setText("…")
        afb.clicked.connect(self._browse_audio)
        af_row = QHBoxLayout()
        af_row.setContentsMargins(0, 0, 0, 0)
        af_row.addWidget(self.audio_file, 1)
        af_row.addWidget(afb)
        self.offset_check = QCheckBox("Starts at")
        self.offset_check.setToolTip("Override where the audio starts in the shot (default: as dubbed, or 0)")
        self.offset = QDoubleSpinBox()
        self.offset.setRange(-3600, 3600)
        self.offset.setDecimals(3)
        self.offset.setSingleStep(0.04)
        self.offset.setSuffix(" s into the shot")
        self.offset.setMinimumWidth(170)
        off_row = QHBoxLayout()
        off_row.setContentsMargins(0, 0, 0, 0)
        off_row.addWidget(self.offset_check)
        off_row.addWidget(self.offset)
        off_row.addStretch(1)
        self.policy = QComboBox()
        for k, v in POLICY_LABELS.items():
            self.policy.addItem(v, k)
        audio_box = QGroupBox("Audio")
        ab = QVBoxLayout(audio_box)
        af = QFormLayout()
        ab.addLayout(af)
        af.addRow("Track", self.audio)
        self.audio_file_label = QLabel("File")
        af.addRow(self.audio_file_label, af_row)
        af.addRow("Offset", off_row)
        af.addRow("Length", self.policy)
        self.guide = QCheckBox("Also the shot's own sound, as a second track (guide)")
        self.guide.setToolTip("For reviewing the dub against the original performance, and for the mix; "
                              "a PNG sequence gets audio_original.wav (dubstudio export --guide-track)")
        self.guide.setVisible(self.shot_has_audio)
        af.addRow("", self.guide)
        self.audio_note = QLabel()
        self.audio_note.setWordWrap(True)
        self.audio_note.setStyleSheet(NOTE_STYLE)
        ab.addWidget(self.audio_note)

        # renderer
        self.renderer = QComboBox()
        for mode, text in adaptations(project):
            self.renderer.addItem(text, ("neural", mode))
        self.has_neural = self.renderer.count() > 0
        self.copy_ok = bool(s.tracking is not None and s.tracking.has_face.any())
        if self.copy_ok:
            self.renderer.addItem("Copy baseline — pastes the tracked mouths of frames A:B (no training)", ("copy", None))
        self.copy_frames = QLineEdit(f"0:{min(100, self.n_frames)}")
        self.copy_frames.setToolTip("Frames the copy baseline copies mouths from, A:B")
        self.copy_frames_label = QLabel("Copy from frames")
        self.renderer_note = QLabel()
        self.renderer_note.setWordWrap(True)
        r_box = QGroupBox("Renderer")
        rf = QFormLayout(r_box)
        rf.addRow("Renderer", self.renderer)
        rf.addRow(self.copy_frames_label, self.copy_frames)
        self.detail = QCheckBox("Keep the original's fine skin detail (stubble, pores) on the rendered face")
        self.detail.setToolTip("The render's shapes and colours with the shot's own fine texture on top, carried along "
                               "with the new jaw; never on the lips or mouth. Off: the render's own, softer skin.")
        self.detail.setChecked(str(settings.value("export/detail", "true")).lower() != "false")
        rf.addRow("", self.detail)
        self.mouth_detail = QCheckBox("Teeth, tongue and lip detail from the actor's own frames")
        self.mouth_detail.setToolTip("The neural render's mouth shape with the fine detail of the shot's frames nearest in "
                                     "expression, moved onto the new mouth, at the footage's own resolution. Off: the "
                                     "renderer's own, softer mouth (dubstudio export --mouth-detail off).")
        self.mouth_detail.setChecked(str(settings.value("export/mouth_detail", "true")).lower() != "false")
        rf.addRow("", self.mouth_detail)
        rf.addRow(self.renderer_note)
        self._build_advanced(settings)
        self.verify = QCheckBox("Check the result with ffprobe (frames, streams, durations)")
        self.verify.setChecked(shutil.which("ffprobe") is not None)
        self.verify.setEnabled(shutil.which("ffprobe") is not None)

        self.command = QLineEdit()
        self.command.setReadOnly(True)
        self.command.setToolTip("The same export from a terminal")
        self.command.setStyleSheet("font-family: monospace; font-size: 11px;")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff8a80;")
        mark = QLabel("Every export is marked as synthetic media: a manifest in the file's metadata and an "
                      "invisible watermark on the re-rendered pixels (dubstudio check-mark reads both).")
        mark.setWordWrap(True)
        mark.setStyleSheet(NOTE_STYLE)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.export_button.setText("Export")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)

        # the options scroll when the screen is too short for them (the Advanced section open)
        body = QWidget()
        bl = QVBoxLayout(body)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(out_box)
        bl.addWidget(audio_box)
        bl.addWidget(r_box)
        bl.addWidget(self.advanced_button)
        bl.addWidget(self.advanced)
        bl.addWidget(self.verify)
        bl.addWidget(mark)
        self.scroll = FitScroll(body)
        lay = QVBoxLayout(self)
        lay.addWidget(self.scroll, 1)
        cmd_label = QLabel("Command line:")
        cmd_label.setStyleSheet(NOTE_STYLE)
        lay.addWidget(cmd_label)
        lay.addWidget(self.command)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

        for w in (self.audio, self.policy, self.renderer, self.prores, self.dnxhr, self.region, self.colour, self.preset):
            w.currentIndexChanged.connect(self._refresh)
        for w in (self.output, self.audio_file, self.copy_frames, self.checkpoint):
            w.textChanged.connect(self._refresh)
        for w in (self.side, self.offset_check, self.verify, self.detail, self.mouth_detail, self.restart, self.guide, self.postprocess,
                  self.tracked_curves, self.labels, self.burn_in, self.watermark):
            w.toggled.connect(self._refresh)
        for w in (self.offset, self.scale, self.detail_amount, self.copy_resolution, self.batch_size,
                  self.watermark_amplitude):
            w.valueChanged.connect(self._refresh)
        self.crf.valueChanged.connect(self._refresh)
        self._refresh()

    def _build_advanced(self, settings) -> None:
        """The collapsed "Advanced" section: every other ``dubstudio export`` option."""
        self.advanced_button = disclosure_button("Advanced", "Every other option of dubstudio export", self.set_advanced_visible)
        self.advanced = QWidget()
        self.advanced.setVisible(False)

        # renderer
        self.checkpoint = QLineEdit()
        self.checkpoint.setPlaceholderText("default: the adaptation chosen above")
        self.checkpoint.setToolTip("An actor file (.pt) to render with instead of the project's adaptation "
                                   "(dubstudio export --renderer-checkpoint); the neural renderer only")
        ckb = QToolButton()
        ckb.setText("…")
        ckb.setToolTip("Choose an actor file")
        ckb.clicked.connect(self._browse_checkpoint)
        self._checkpoint_browse = ckb
        self.checkpoint_row = QWidget()  # neural only; the copy baseline's crop size takes its place
        ck_row = QHBoxLayout(self.checkpoint_row)
        ck_row.setContentsMargins(0, 0, 0, 0)
        ck_row.addWidget(self.checkpoint, 1)
        ck_row.addWidget(ckb)
        self.copy_resolution = QSpinBox()
        self.copy_resolution.setRange(32, 1024)
        self.copy_resolution.setSingleStep(32)
        self.copy_resolution.setValue(256)
        self.copy_resolution.setSuffix(" px")
        self.copy_resolution.setToolTip("Crop size of the copy baseline (dubstudio export --resolution; default 256)")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 256)
        self.batch_size.setValue(8)
        self.batch_size.setSuffix(" frames")
        self.batch_size.setToolTip("Frames rendered at once (dubstudio export --batch-size; default 8)")
        # compositing
        self.region = QComboBox()
        for k in REGIONS:
            self.region.addItem(REGION_LABELS.get(k, k), k)
        self.region.setToolTip("The region composited back into the frame (dubstudio export --region)")
        self.colour = QComboBox()
        for k in COLOURS:
            self.colour.addItem(COLOUR_LABELS.get(k, k), k)
        self.colour.setToolTip("Colour matching of the rendered crop to the frame (dubstudio export --colour)")
        self.detail_amount = QDoubleSpinBox()
        self.detail_amount.setRange(0.0, 1.0)
        self.detail_amount.setDecimals(2)
        self.detail_amount.setSingleStep(0.1)
        self.detail_amount.setToolTip("How much of the original's fine skin detail goes on the render: 0 = off, 1 = all "
                                      "(dubstudio export --detail); the checkbox above is 1 or 0")
        amount = settings.value("export/detail_amount")
        try:
            amount = float(amount) if amount is not None else None
        except (TypeError, ValueError):
            amount = None
        on = self.detail.isChecked()
        self.detail_amount.setValue(amount if on and amount is not None and 0 < amount <= 1 else 1.0 if on else 0.0)
        self.detail.toggled.connect(self._detail_toggled)
        self.detail_amount.valueChanged.connect(self._detail_amount_changed)
        self.postprocess = QCheckBox("Keep the original background")
        self.postprocess.setChecked(True)
        self.postprocess.setToolTip("The background-preserving post-process: the original's background wherever both "
                                    "frames show background (off: dubstudio export --no-postprocess)")
        self.tracked_curves = QCheckBox("Render the tracked curves (no edits, no dub)")
        self.tracked_curves.setToolTip("A reference render of the shot as tracked, ignoring the edits and the dub "
                                       "(dubstudio export --tracked-curves)")
        render_row = QHBoxLayout()
        render_row.setContentsMargins(0, 0, 0, 0)
        render_row.addWidget(self.postprocess)
        render_row.addWidget(self.tracked_curves)
        render_row.addStretch(1)
        # the review
        self.labels = QCheckBox("ORIGINAL / DUBBED labels")
        self.labels.setChecked(True)
        self.labels.setToolTip("Side by side: the labels over each half (off: dubstudio export --no-labels)")
        self.burn_in = QCheckBox("Burned-in timecode and frame")
        self.burn_in.setChecked(True)
        self.burn_in.setToolTip("Side by side: the source timecode and frame number burned in (off: --no-burn-in)")
        review_row = QHBoxLayout()
        review_row.setContentsMargins(0, 0, 0, 0)
        review_row.addWidget(self.labels)
        review_row.addWidget(self.burn_in)
        review_row.addStretch(1)
        # the file
        self.preset = QComboBox()
        self.preset.addItems(X264_PRESETS)
        self.preset.setCurrentText("fast")
        self.preset.setToolTip("x264 preset for MP4 (dubstudio export --preset; default fast): slower presets make "
                               "smaller files at the same quality")
        self.preset_label = QLabel("x264 preset")
        self.watermark = QCheckBox("Invisible watermark, strength")
        self.watermark.setChecked(True)
        self.watermark.setToolTip("The invisible watermark on the re-rendered pixels (off: dubstudio export "
                                  "--no-watermark); the metadata mark is always written")
        self.watermark_amplitude = QDoubleSpinBox()
        self.watermark_amplitude.setRange(0.25, 16.0)
        self.watermark_amplitude.setDecimals(2)
        self.watermark_amplitude.setSingleStep(0.5)
        self.watermark_amplitude.setValue(2.0)
        self.watermark_amplitude.setSuffix(" code values")
        self.watermark_amplitude.setToolTip("Watermark strength in luma code values (dubstudio export "
                                            "--watermark-amplitude; default 2)")
        wm_row = QHBoxLayout()
        wm_row.setContentsMargins(0, 0, 0, 0)
        wm_row.addWidget(self.watermark)
        wm_row.addWidget(self.watermark_amplitude)
        wm_row.addStretch(1)

        grid = QGridLayout(self.advanced)
        grid.setContentsMargins(12, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        self.checkpoint_label = QLabel("Actor file")
        self.copy_resolution_label = QLabel("Copy crop size")
        for w in (self.checkpoint_label, self.copy_resolution_label):
            grid.addWidget(w, 0, 0)
        for w in (self.checkpoint_row, self.copy_resolution):
            grid.addWidget(w, 0, 1)
        for row, pairs in enumerate(((None, None, QLabel("Batch"), self.batch_size),
                                     (QLabel("Composite"), self.region, QLabel("Colour match"), self.colour),
                                     (QLabel("Skin detail"), self.detail_amount, self.preset_label, self.preset))):
            for col, w in enumerate(pairs):
                if w is not None:
                    grid.addWidget(w, row, col)
        grid.addWidget(QLabel("Render"), 3, 0)
        grid.addLayout(render_row, 3, 1, 1, 3)
        self.review_label = QLabel("Side by side")
        grid.addWidget(self.review_label, 4, 0)
        grid.addLayout(review_row, 4, 1, 1, 3)
        grid.addWidget(QLabel("Mark"), 5, 0)
        grid.addLayout(wm_row, 5, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

    # -- helpers --

    def set_advanced_visible(self, on: bool) -> None:
        """Open or collapse the Advanced section (the dialog grows or shrinks with it)."""
        if self.advanced_button.isChecked() != on:
            self.advanced_button.setChecked(on)  # comes back here through toggled
            return
        self.advanced.setVisible(on)
        set_disclosed(self.advanced_button, on)
        self.scroll.updateGeometry()
        self.layout().activate()
        if on:
            self._fit_height()
        else:
            self.resize(self.width(), min(self.sizeHint().height(), self._screen_height()))

    def _detail_toggled(self, on: bool) -> None:
        """The checkbox is the amount's shortcut: on = 1 (all of the detail), off = 0."""
        if on != (self.detail_amount.value() > 0):
            self.detail_amount.setValue(1.0 if on else 0.0)

    def _detail_amount_changed(self, value: float) -> None:
        if self.detail.isChecked() != (value > 0):
            self.detail.blockSignals(True)
            self.detail.setChecked(value > 0)
            self.detail.blockSignals(False)

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Actor file to render with", self.checkpoint.text() or str(self.project.root),
                                              "Actor files (*.pt);;All files (*)")
        if path:
            self.checkpoint.setText(path)

    def _set_suffix(self, fmt: str) -> None:
        p = Path(self.output.text().strip() or "export")
        stem = p.with_suffix("") if p.suffix.lower() in (".mp4", ".mov", ".mxf") else p
        self.output.setText(str(stem if fmt == "png" else stem.with_suffix(f".{fmt}")))

    def _browse(self) -> None:
        fmt = self.format.currentData()
        if fmt == "png":
            path = QFileDialog.getExistingDirectory(self, "Export PNG sequence into (an empty or new folder)", str(Path(self.output.text()).parent))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.output.text(), f"{fmt.upper()} (*.{fmt})")
        if path:
            self.output.setText(path)
            self._set_suffix(fmt)

    def _browse_audio(self) -> None:
        from dubstudio.gui.dubbing import AUDIO_FILTER

        path, _ = QFileDialog.getOpenFileName(self, "Audio to mux", self.audio_file.text() or str(Path.home()), AUDIO_FILTER)
        if path:
            self.audio_file.setText(path)

    # -- state --

    def _refresh(self, *_: object) -> None:
        fmt = self.format.currentData()
        self.crf.setVisible(fmt == "mp4")
        self.crf_label.setVisible(fmt == "mp4")
        self.prores.setVisible(fmt == "mov")
        self.prores_label.setVisible(fmt == "mov")
        self.dnxhr.setVisible(fmt == "mxf")
        self.dnxhr_label.setVisible(fmt == "mxf")
        self.scale.setEnabled(self.side.isChecked())
        audio = self.audio.currentData()
        self.audio_file.setEnabled(audio == "file")
        self.audio_file_label.setEnabled(audio == "file")
        for w in (self.offset_check, self.policy):
            w.setEnabled(audio != "none")
        self.guide.setEnabled(audio != "original")  # a second copy of the first track adds nothing
        self.offset.setEnabled(audio != "none" and self.offset_check.isChecked())
        if audio == "dubbed":
            note = f"The dubbed dialogue recorded by the last dub ({self.rec.get('kind', 'audio')}), in sync with the mouth."
        elif audio == "original":
            note = "The shot's own sound (the original language)."
            if self.rec is not None or self.driven:
                note += " The mouth was dubbed: this is probably not what you want."
                if self.rec is None or not self.rec.get("path"):
                    note += " The project does not record the dubbed audio: choose File… for it."
        elif audio == "file":
            note = "Any audio file, starting at 0 s unless you set where it starts."
        else:
            note = "No audio track."
        self.audio_note.setText(note)
        self.audio_note.setStyleSheet(NOTE_STYLE)
        kind, _mode = self.renderer.currentData() or ("none", None)
        copy = kind == "copy"
        self.copy_frames.setVisible(copy)
        self.copy_frames_label.setVisible(copy)
        self.mouth_detail.setVisible(not copy)  # the neural renderer's
        for w in (self.checkpoint_row, self.checkpoint_label):  # the neural renderer's actor file
            w.setVisible(not copy)
        for w in (self.copy_resolution, self.copy_resolution_label):  # the copy baseline's crop size
            w.setVisible(copy)
        self.preset.setEnabled(fmt == "mp4")
        self.preset_label.setEnabled(fmt == "mp4")
        for w in (self.labels, self.burn_in, self.review_label):
            w.setEnabled(self.side.isChecked())
        self.watermark_amplitude.setEnabled(self.watermark.isChecked())
        n = self._advanced_set()
        self.advanced_button.setText(f"Advanced ({n} set)" if n else "Advanced")
        if not self.has_neural:
            self.renderer_note.setText(
                "This project has no neural adaptation yet, so the real dubbed render is not available: run the "
                "Adapt panel first (Start adaptation). "
                + ("The copy baseline exports now, pasting real mouths from the frames above; good for checking "
                   "timing and audio, not for delivery." if self.copy_ok else "Track the shot to export anything."))
            self.renderer_note.setStyleSheet(WARN_STYLE)
        elif copy:
            self.renderer_note.setText("The copy baseline pastes real mouths from the frames above: a reference, not the dubbed render.")
            self.renderer_note.setStyleSheet(WARN_STYLE)
        else:
            running = self.services.jobs.running("Adaptation")
            self.renderer_note.setText("The actor's neural renderer, on " + self.services.device()
                                       + (". An adaptation is running: this uses the last finished one." if running else "."))
            self.renderer_note.setStyleSheet(NOTE_STYLE)
        self.export_button.setEnabled(self.renderer.count() > 0)
        self._show_stopped()
        self._show_others()
        self._check_length(audio)
        try:
            c = self.choice()
            # no command until the audio file is chosen (command_line() would write "--audio None")
            self.command.setText("" if c.audio == "file" and c.audio_file is None else c.command_line())
        except DubStudioError:
            self.command.setText("")
        self.command.setCursorPosition(0)
        self.output.setCursorPosition(len(self.output.text()))
        self._fit_height()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._fit_height()  # the styled (polished) rows are taller than the hint before showing

    def _fit_height(self) -> None:
        """Tall enough for its rows and notes: Qt would cap a new dialog at 2/3 of the screen and
        squeeze every row to its minimum (and a note that appears later needs room too)."""
        want = self.sizeHint().height()
        if self.height() < want:
            self.resize(max(self.width(), self.sizeHint().width()), min(want, self._screen_height()))

    def _screen_height(self) -> int:
        """The height the dialog may take: its screen's, less the window frame (the options scroll
        beyond it)."""
        screen = self.screen()
        return screen.availableGeometry().height() - 40 if screen is not None else 10_000

    def _show_stopped(self) -> None:
        """What exporting to this name again will reuse: a stopped export's finished segments, or
        the unchanged segments of a finished one."""
        from dubstudio.export.resume import previous_export, stopped_export

        text = self.output.text().strip()
        path = Path(text).expanduser() if text else None
        stopped = stopped_export(path) if path else None
        previous = stopped is None and path is not None and previous_export(path)
        self.stopped_note.setVisible(stopped is not None or previous)
        self.restart.setVisible(stopped is not None or previous)
        if stopped is not None:
            done, total = stopped
            self.stopped_note.setText(
                f"A stopped export to this name finished {done} of {total} frames. Exporting keeps every finished "
                "segment whose frames did not change since (curves, mask, weights, settings) and renders the rest.")
        elif previous:
            self.stopped_note.setText(
                "An earlier export has this name: exporting again renders only the segments whose frames changed "
                "since (curves, mask, weights, settings) and copies the rest from it.")

    def _stopped_others(self) -> list[dict]:
        from dubstudio.export.resume import stopped_beside

        text = self.output.text().strip()
        return stopped_beside(Path(text).expanduser()) if text else []

    def _show_others(self) -> None:
        others = self._stopped_others()
        self.others_note.setVisible(bool(others))
        self.delete_others.setVisible(bool(others))
        if others:
            size = sum(st["bytes"] for st in others)
            self.others_note.setText(
                f"Stopped exports in this folder hold {size / 2**20:.0f} MB until they are exported again: "
                + ", ".join(f"{st['output']} ({st['frames_finished']}/{st['frames']} frames)" for st in others) + ".")

    def _delete_others(self) -> None:
        from dubstudio.export.resume import delete_stopped

        others = self._stopped_others()
        if not others:
            return self._show_others()
        names = [st["output"] for st in others]
        size = sum(st["bytes"] for st in others)
        text = (f"Delete the finished frames of {len(names)} stopped export(s) ({', '.join(names)}, {size / 2**20:.0f} MB)? "
                "They cannot be continued afterwards; finished exports are not touched.")
        if self.services.prompter.ask("delete_stopped", text, self) != "yes":
            return None
        folder = Path(self.output.text().strip()).expanduser().parent
        done = delete_stopped(folder, names)
        kept = [d for d in done if not d["deleted"]]
        self._show_others()
        if kept:
            self.others_note.setVisible(True)
            self.others_note.setText("Not deleted: " + ", ".join(f"{d['output']} ({d['reason']})" for d in kept))
        return None

    def _audio_source(self, audio: str) -> tuple[Path | None, float]:
        """(file, where it starts in the shot) the export would use, before any override."""
        if audio == "dubbed" and self.rec is not None and self.rec.get("path"):
            return Path(self.rec["path"]), float(self.rec.get("start_in_shot_s", 0.0))
        if audio == "original":
            return self.session.info.path, 0.0
        if audio == "file" and self.audio_file.text().strip():
            return Path(self.audio_file.text().strip()).expanduser(), 0.0
        return None, 0.0

    def _check_length(self, audio: str) -> None:
        """Say before exporting when the length policy will refuse the audio."""
        from dubstudio.io.audio import audio_info

        path, start = self._audio_source(audio)
        if path is None or not path.is_file():
            return
        key = (str(path), path.stat().st_mtime_ns)
        if key not in self._durations:
            try:
                self._durations[key] = audio_info(path).duration_s
            except DubStudioError:
                self._durations[key] = None
        dur = self._durations[key]
        if not dur:
            return
        if self.offset_check.isChecked():
            start = float(self.offset.value())
        info = self.session.info
        shot, frame = info.n_frames / float(info.fps), 1 / float(info.fps)
        end = start + dur
        policy = self.policy.currentData() or ("fit" if audio == "original" else "pad")
        if end - shot >= frame and policy in ("pad", "error"):
            warn = (f"The audio runs {end - shot:.2f} s past the end of the shot ({end:.2f} s for {shot:.2f} s): "
                    f"choose Trim or Fit as the length, or the export stops.")
        elif shot - end >= frame and policy in ("trim", "error"):
            warn = f"The audio ends {shot - end:.2f} s before the shot: choose Pad or Fit as the length, or the export stops."
        else:
            return
        self.audio_note.setText(warn)
        self.audio_note.setStyleSheet(WARN_STYLE)

    def choice(self) -> ExportRequest:
        """The dialog's choices as the request ``dubstudio export`` makes (``cli.export.export_request``).
        A choice that does not apply (the CRF of a MOV, the labels without side by side, the device of
        the copy baseline) is left at its default, so ``command_line()`` parses back to this request."""
        from dubstudio.gui.settings_dialog import Preferences

        kind, mode = self.renderer.currentData() or ("neural", None)
        audio = self.audio.currentData()
        af = self.audio_file.text().strip()
        copy = kind == "copy"
        fmt = self.format.currentData()
        side = self.side.isChecked()
        ck = self.checkpoint.text().strip()
        d = ExportRequest(Path("."), Path("."))  # the defaults
        return ExportRequest(
            project=self.project.root,
            output=Path(self.output.text().strip()).expanduser(),
            format=fmt,
            renderer=RendererChoice(kind=kind, mode=None if copy else mode,
                                    checkpoint=Path(ck).expanduser() if ck and not copy else None,
                                    train_frames=(self.copy_frames.text().strip() or COPY_FRAMES) if copy else None,
                                    resolution=int(self.copy_resolution.value()) if copy else RendererChoice().resolution,
                                    device=RendererChoice().device if copy else self.services.device(),
                                    mouth_detail=True if copy else self.mouth_detail.isChecked()),
            composite=CompositeChoice(region=self.region.currentData(), colour=self.colour.currentData(),
                                      detail=round(float(self.detail_amount.value()), 2),
                                      postprocess=self.postprocess.isChecked(), batch_size=int(self.batch_size.value())),
            tracked_curves=self.tracked_curves.isChecked(),
            threads=Preferences.load(self.services.settings).threads,  # the editor's Settings
            audio="auto" if audio == "dubbed" else audio,
            audio_file=Path(af).expanduser() if audio == "file" and af else None,
            audio_offset=float(self.offset.value()) if audio != "none" and self.offset_check.isChecked() else None,
            audio_policy=self.policy.currentData() if audio != "none" else None,
            side_by_side=side,
            review_scale=float(self.scale.value()) if side else 1.0,
            labels=self.labels.isChecked() if side else True,
            burn_in=self.burn_in.isChecked() if side else True,
            crf=int(self.crf.value()) if fmt == "mp4" else d.crf,
            preset=self.preset.currentText() if fmt == "mp4" else d.preset,
            prores=self.prores.currentText() if fmt == "mov" else d.prores,
            dnxhr=self.dnxhr.currentData() if fmt == "mxf" else d.dnxhr,
            watermark=self.watermark.isChecked(),
            watermark_amplitude=float(self.watermark_amplitude.value()),
            verify=self.verify.isChecked(),
            restart=not self.restart.isHidden() and self.restart.isChecked(),
            guide_track=self.shot_has_audio and audio != "original" and self.guide.isChecked(),
            overwrite=self._overwrite == self.output.text().strip(),  # the user said to replace this very file
        )

    def _advanced_set(self) -> int:
        """How many advanced choices differ from the defaults."""
        return sum((bool(self.checkpoint.text().strip()), self.copy_resolution.value() != 256, self.batch_size.value() != 8,
                    self.region.currentIndex() != 0, self.colour.currentIndex() != 0,
                    0 < self.detail_amount.value() < 1, not self.postprocess.isChecked(), self.tracked_curves.isChecked(),
                    not self.labels.isChecked(), not self.burn_in.isChecked(), self.preset.currentText() != "fast",
                    not self.watermark.isChecked(), self.watermark_amplitude.value() != 2.0))

    def _check_output(self) -> None:
        """An existing file that is not an earlier export of this shot is replaced only when the
        user says so (the CLI's --overwrite); an input of the shot is never written over."""
        from dubstudio.export.formats import guess_format
        from dubstudio.export.guard import OutputExistsError, guard_output

        self._replace_asked = None
        c = self.choice()
        video = self.session.info.path
        inputs = [("the shot's video", video), ("the audio to mux", c.audio_file)]
        if self.rec is not None and self.rec.get("source"):
            inputs.append(("the dubbed audio", Path(self.rec["source"])))
        try:
            guard_output(c.output, guess_format(c.output, c.format), inputs, self.project.root.name, video.name, c.overwrite)
        except OutputExistsError:
            text = f"{c.output} already exists and is not an export of this shot. Replace it?"
            if self.services.prompter.ask("replace_output", text, self) != "yes":
                self._replace_asked = False
                self.error.setText("Not exported: choose another name, or answer Replace.")
                return
            self._overwrite = self.output.text().strip()
            self._replace_asked = True
            self._refresh()  # the command line says --overwrite

    def validate(self) -> ExportRequest:
        """The request, checked as far as it can be without rendering; DubStudioError says why not."""
        from dubstudio.export.formats import guess_format

        c = self.choice()
        if not self.output.text().strip():
            raise DubStudioError("Choose where to export.")
        if c.audio == "file" and (c.audio_file is None or not c.audio_file.is_file()):
            raise DubStudioError("Choose an existing audio file, or another audio track.")
        if c.renderer.kind == "copy":
            from dubstudio.core.frames import parse_frames

            parse_frames(c.renderer.train_frames, self.n_frames)
        guess_format(c.output, c.format)
        c.settings()  # the request's own checks, as for the CLI
        c.renderer.check()
        if c.format != "png" and not c.output.parent.exists():
            c.output.parent.mkdir(parents=True, exist_ok=True)
        return c

    def _accept(self) -> None:
        try:
            self.validate()
            self._check_output()
        except (DubStudioError, OSError) as e:
            self.error.setText(str(e))
            return
        if self._replace_asked is False:
            return
        s = self.services.settings
        s.setValue("export/dir", str(Path(self.output.text()).parent))
        s.setValue("export/format", self.format.currentData())
        s.setValue("export/detail", "true" if self.detail.isChecked() else "false")
        s.setValue("export/mouth_detail", "true" if self.mouth_detail.isChecked() else "false")
        s.setValue("export/detail_amount", float(self.detail_amount.value()))
        self.accept()
