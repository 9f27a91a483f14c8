"""Adaptation panel: train the actor's neural renderer in a background job, watch it learn.

The job is ``app.adapt.adapt_job`` with an ``AdaptRequest`` (the same as ``dubstudio adapt``), run
through the ``JobManager``: the GUI thread only receives throttled progress events. The panel plots the loss
and the training mouth PSNR as they arrive, and shows a preview (real crop | current rendering of
one frame) that the trainer hands over every few steps from the worker thread; the panel keeps
only the latest one (a lock-protected slot) and draws it on the next progress event.

"From shot" starts from the actor's adaptation on another shot (``adapt(start_from=...)``) instead
of the prior; its list offers the recent projects that have an adaptation.

The collapsed "Advanced" section holds the rest of ``dubstudio adapt``'s options (prior projects,
validation frames, texture init, a JSON config, restart and the TrainConfig overrides); an empty
field is the default (nothing passed). ``request()`` turns the panel into the ``AdaptRequest``;
device and CPU threads are the editor's Settings (``--device``/``--threads``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dubstudio.app.adapt import FROM_SHOT_STEPS, RUN_STEPS, SHARP, AdaptRequest, adapt_job, train_config
from dubstudio.core.errors import DubStudioError
from dubstudio.eval.detail_check import STAGE as CHECK_STAGE
from dubstudio.gui.frames import to_qimage
from dubstudio.gui.widgets import disclosure_button, set_disclosed
from dubstudio.gui.jobs import Job, JobManager, format_eta
from dubstudio.gui.model.session import ShotSession

MODES = ("full", "texture", "mixed")
MODE_HELP = {
    "full": "texture + renderer fine-tuned on this actor (best quality; ~13 MB per actor)",
    "texture": "texture only, renderer from the prior (needs a prior; < 1 MB per actor)",
    "mixed": "like full, with the prior's actors mixed in 1:1 (needs a prior; keeps it general)",
}

VAL_EVERY = 50  # `dubstudio adapt --val-every`'s default
TEX_INITS = {None: "Default (prior's mean)", "prior-mean": "The prior's mean texture", "random": "Random noise (the paper)"}
VGG_REGIONS = {None: "Default (whole crops)", "crop": "Whole crops", "mouth": "A box around the mouth"}
# the TrainConfig overrides typed in the Advanced section: (key, label, type, placeholder, minimum)
NUMBER_OVERRIDES = (
    ("resolution", "Resolution", int, "128 px", 16),
    ("width", "Width", int, "16", 1),
    ("batch_size", "Batch size", int, "2", 1),
    ("seed", "Seed", int, "0", None),
    ("lr_g", "Renderer LR", float, "5e-4", 0.0),
    ("lr_tex", "Texture LR", float, "5e-3", 0.0),
    ("w_vgg", "Perceptual", float, "0", 0.0),
    ("w_adv", "Adversarial", float, "0", 0.0),
)
NUMBER_HELP = {
    "resolution": "Face crop size in pixels (--resolution; default 128; a multiple of 8)",
    "width": "Generator base width (--width; default 16; the GPU path can scale up)",
    "batch_size": "Windows per step (--batch-size; default 2; mixed mode needs at least 2)",
    "seed": "Random seed (--seed; default 0)",
    "lr_g": "Generator learning rate (--lr-g; default 5e-4)",
    "lr_tex": "Neural texture learning rate (--lr-tex; default 5e-3)",
    "w_vgg": "Perceptual (VGG) loss weight (--w-vgg; default 0 on CPU, 0.3 with Sharper mouth)",
    "w_adv": "Adversarial (LSGAN) loss weight (--w-adv; default 0)",
}

FROM_SHOT_HELP = (f"starts from this actor's adaptation on the other shot: about {FROM_SHOT_STEPS} steps match a "
                  f"{RUN_STEPS}-step run from scratch, and also re-fit a colour grade that differs between the shots")


class _PreviewSlot:
    """The latest preview image, written by the training thread, read by the GUI thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: tuple[int, np.ndarray] | None = None

    def put(self, step: int, image: np.ndarray) -> None:
        with self._lock:
            self._item = (step, np.ascontiguousarray(image))

    def take(self) -> tuple[int, np.ndarray] | None:
        with self._lock:
            item, self._item = self._item, None
            return item



class AdaptPanel(QWidget):
    """Mode, prior, steps; Start/Cancel; live loss plot and preview."""

    adapted = Signal(object)  # TrainResult
    preview_shown = Signal(int)  # step of the preview now on screen

    def __init__(self, session: ShotSession, jobs: JobManager, settings: QSettings, device=lambda: "cpu",
                 parent: QWidget | None = None, prompter=None) -> None:
        super().__init__(parent)
        self.session, self.jobs, self.settings, self.device = session, jobs, settings, device
        self.prompter = prompter  # questions to the user (the window's; a plain dialog when None)
        self.job: Job | None = None
        self.preview_every: int | None = None  # None: about 20 previews per run
        self._slot = _PreviewSlot()
        self._steps: list[int] = []
        self._loss: list[float] = []
        self._psnr: list[float] = []

        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setCurrentText(str(settings.value("adapt/mode", "full")))
        self.mode.currentTextChanged.connect(self._mode_changed)
        self.prior = QLineEdit(str(settings.value("adapt/prior", "")))
        self.prior.setPlaceholderText("none: train from scratch")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose a prior checkpoint (dubstudio prior train)")
        browse.clicked.connect(self._choose_prior)
        prior_row = QHBoxLayout()
        prior_row.setContentsMargins(0, 0, 0, 0)
        prior_row.addWidget(self.prior, 1)
        prior_row.addWidget(browse)
        self.from_shot = QComboBox()
        self.from_shot.setEditable(True)
        self.from_shot.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.from_shot.lineEdit().setPlaceholderText("none: start from the prior")
        self.from_shot.setToolTip("Another shot of this actor that is already adapted (its project folder): this "
                                  "shot starts from that adaptation, so far fewer steps are needed "
                                  "(dubstudio adapt --from-shot). Leave empty to start from the prior.")
        self.from_shot.currentTextChanged.connect(self._from_shot_changed)
        browse_shot = QToolButton()
        browse_shot.setText("…")
        browse_shot.setToolTip("Choose the project folder of another shot of this actor")
        browse_shot.clicked.connect(self._choose_shot)
        shot_row = QHBoxLayout()
        shot_row.setContentsMargins(0, 0, 0, 0)
        shot_row.addWidget(self.from_shot, 1)
        shot_row.addWidget(browse_shot)
        self.from_shot_note = QLabel()  # does the other shot's tracked face look like this one's?
        self.from_shot_note.setWordWrap(True)
        self.from_shot_note.setVisible(False)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setSingleStep(100)
        self.steps.setValue(int(settings.value("adapt/steps", RUN_STEPS)))
        # steps are remembered per start: from the prior (600) and from another shot (150)
        self._from_shot_on = False
        self._steps_for = {False: int(self.steps.value()),
                           True: int(settings.value("adapt/steps_from_shot", FROM_SHOT_STEPS))}
        self.frames = QLineEdit(str(settings.value("adapt/frames", "0:100")))
        self.frames.setToolTip("Training frames A:B (the paper adapts on the first 4 s); empty = all frames")
        self.sharp = QCheckBox("Sharper mouth (perceptual loss, slower)")
        self.sharp.setToolTip("Adds a VGG perceptual term on a box around the mouth (dubstudio adapt --w-vgg 0.3 "
                              "--vgg-region mouth): a sharper render on its own, about 1.6-1.9x the time per step on a "
                              "CPU. With the mouth detail from the shot's frames (the default) the finished mouth "
                              "measured no better on 3 of 4 test shots. See BENCHMARKS.md.")
        self.sharp.setChecked(str(settings.value("adapt/sharp", "false")).lower() == "true")
        self._build_advanced(settings)
        self.start_btn = QPushButton("Start adaptation")
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stops after the current step; the checkpoint is saved and Start resumes")
        self.cancel_btn.clicked.connect(self.cancel)
        self.mode_help = QLabel()
        self.mode_help.setWordWrap(True)
        self.mode_help.setStyleSheet("color: #9aa0a6;")
        self.status = QLabel("Not adapted yet.")
        self.status.setWordWrap(True)

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(120)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # "0.25", not "250 (x0.001)"
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.loss_curve = self.plot.plot(pen=pg.mkPen("#4fc3f7", width=2), name="loss")
        self.preview = QLabel("The preview (real | rendered) appears here while training.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(120)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("Prior", prior_row)
        form.addRow("From shot", shot_row)
        form.addRow("", self.from_shot_note)
        form.addRow("Steps", self.steps)
        form.addRow("Frames", self.frames)
        form.addRow("", self.sharp)
        adv_row = QHBoxLayout()
        adv_row.setContentsMargins(0, 0, 0, 0)
        adv_row.addWidget(self.advanced_button)
        adv_row.addStretch(1)
        adv_row.addWidget(self.advanced_reset)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn, 1)
        buttons.addWidget(self.cancel_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.mode_help)
        lay.addLayout(adv_row)
        lay.addWidget(self.advanced_scroll)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.plot, 2)
        lay.addWidget(self.preview, 2)
        self._mode_changed(self.mode.currentText())
        self._advanced_changed()
        session.tracking_changed.connect(self._update_enabled)
        session.shot_closed.connect(self._update_enabled)
        session.tracking_changed.connect(self._fill_shots)
        self._fill_shots()
        self._update_enabled()

    def _build_advanced(self, settings: QSettings) -> None:
        """The collapsed "Advanced" section: every other ``dubstudio adapt`` option."""
        def remembered(key: str) -> str:
            return str(settings.value(f"adapt/{key}", "") or "")

        self.advanced_button = disclosure_button("Advanced", "Every other option of dubstudio adapt: an empty field is the default",
                                                 self.set_advanced_visible)
        self.advanced_reset = QPushButton("Defaults")
        self.advanced_reset.setToolTip("Clear every advanced setting (back to the defaults)")
        self.advanced_reset.clicked.connect(self.reset_advanced)
        self.advanced = QWidget()
        # it scrolls when the dock is short: the loss plot and the preview keep their room
        from dubstudio.gui.export_dialog import FitScroll

        self.advanced_scroll = FitScroll(self.advanced, min_height=90)
        self.advanced_scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.advanced_scroll.setVisible(False)

        self.prior_projects = QLineEdit(remembered("prior_projects"))
        self.prior_projects.setPlaceholderText("default: where the prior recorded them")
        self.prior_projects.setToolTip("Mixed mode: the project folders of the prior's actors, separated by ';' "
                                       "(dubstudio adapt --prior-projects)")
        add_project = QToolButton()
        add_project.setText("+")
        add_project.setToolTip("Add a project folder of one of the prior's actors")
        add_project.clicked.connect(self._add_prior_project)
        self._add_prior_project_btn = add_project
        pp_row = QHBoxLayout()
        pp_row.setContentsMargins(0, 0, 0, 0)
        pp_row.addWidget(self.prior_projects, 1)
        pp_row.addWidget(add_project)
        self.val_frames = QLineEdit(remembered("val_frames"))
        self.val_frames.setPlaceholderText("none")
        self.val_frames.setToolTip("Held-out frames C:D whose mouth PSNR is measured while training "
                                   "(dubstudio adapt --val-frames); keep them out of the training frames")
        self.val_every = QSpinBox()
        self.val_every.setRange(1, 100_000)
        self.val_every.setSingleStep(10)
        self.val_every.setPrefix("every ")
        self.val_every.setSuffix(" steps")
        self.val_every.setValue(int(settings.value("adapt/val_every", VAL_EVERY)))
        self.val_every.setToolTip("Steps between validations (dubstudio adapt --val-every)")
        val_row = QHBoxLayout()
        val_row.setContentsMargins(0, 0, 0, 0)
        val_row.addWidget(self.val_frames, 1)
        val_row.addWidget(self.val_every)
        self.tex_init = QComboBox()
        for k, v in TEX_INITS.items():
            self.tex_init.addItem(v, k)
        self.tex_init.setCurrentIndex(max(0, self.tex_init.findData(remembered("tex_init") or None)))
        self._compact(self.tex_init)
        self.tex_init.setToolTip("The actor's starting texture (dubstudio adapt --tex-init); without a prior both are noise")
        self.config_file = QLineEdit(remembered("config"))
        self.config_file.setPlaceholderText("none")
        self.config_file.setToolTip('A JSON file of TrainConfig overrides, e.g. {"lr_g": 1e-4, "generator": {"width": 32}} '
                                    "(dubstudio adapt --config); the fields below win over it")
        browse_cfg = QToolButton()
        browse_cfg.setText("…")
        browse_cfg.setToolTip("Choose a JSON file of TrainConfig overrides")
        browse_cfg.clicked.connect(self._choose_config)
        cfg_row = QHBoxLayout()
        cfg_row.setContentsMargins(0, 0, 0, 0)
        cfg_row.addWidget(self.config_file, 1)
        cfg_row.addWidget(browse_cfg)
        self.restart = QCheckBox("Restart from step 0")
        self.restart.setToolTip("Ignore the saved checkpoint and train again from the start instead of resuming "
                                "(dubstudio adapt --restart); for the next start only")
        self.detail_check = QCheckBox("Hold out frames to choose the mouth detail")
        self.detail_check.setChecked(str(settings.value("adapt/detail_check", "true")) != "false")
        self.detail_check.setToolTip("Keep a few short runs of frames (about 10 %) out of the training and choose the mouth detail's "
                                     "settings on them, against the real mouth (on shots of 150 frames or more); "
                                     "off: train on every frame (dubstudio adapt --no-detail-check)")
        self.override_edits: dict[str, QLineEdit] = {}  # TrainConfig field -> its field here (empty: default)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        for i, (key, label, _kind, default, _min) in enumerate(NUMBER_OVERRIDES):
            edit = QLineEdit(remembered(key))
            edit.setPlaceholderText(default)
            edit.setToolTip(NUMBER_HELP[key] + "; empty = the default")
            edit.setMinimumWidth(48)
            self.override_edits[key] = edit
            row, col = divmod(i, 2)
            grid.addWidget(QLabel(label), row, 2 * col)
            grid.addWidget(edit, row, 2 * col + 1)
        self.vgg_region = QComboBox()
        for k, v in VGG_REGIONS.items():
            self.vgg_region.addItem(v, k)
        self.vgg_region.setCurrentIndex(max(0, self.vgg_region.findData(remembered("vgg_region") or None)))
        self._compact(self.vgg_region)
        self.vgg_region.setToolTip("What the perceptual loss sees (dubstudio adapt --vgg-region): whole crops or a box "
                                   "around the mouth (much cheaper on a CPU)")
        row = len(NUMBER_OVERRIDES) // 2
        grid.addWidget(QLabel("Perceptual on"), row, 0)
        grid.addWidget(self.vgg_region, row, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        af = QFormLayout()
        af.setContentsMargins(0, 0, 0, 0)
        af.addRow("Prior projects", pp_row)
        af.addRow("Validate on", val_row)
        af.addRow("Start texture", self.tex_init)
        af.addRow("Config file", cfg_row)
        af.addRow("", self.detail_check)
        af.addRow("", self.restart)
        self.advanced_note = QLabel("Training settings, empty = the default (Sharper mouth sets Perceptual 0.3 on "
                                    "the mouth unless given here):")
        self.advanced_note.setWordWrap(True)
        self.advanced_note.setStyleSheet("color: #9aa0a6;")
        al = QVBoxLayout(self.advanced)
        al.setContentsMargins(12, 0, 0, 0)
        al.addLayout(af)
        al.addWidget(self.advanced_note)
        al.addLayout(grid)
        for w in (self.prior_projects, self.val_frames, self.config_file, *self.override_edits.values()):
            w.textChanged.connect(self._advanced_changed)
        for c in (self.tex_init, self.vgg_region):
            c.currentIndexChanged.connect(self._advanced_changed)
        self.restart.toggled.connect(self._advanced_changed)
        self.detail_check.toggled.connect(self._advanced_changed)
        self.sharp.toggled.connect(self._advanced_changed)

    @staticmethod
    def _compact(combo: QComboBox) -> None:
        """A combo box that may be narrower than its longest entry (the dock is narrow)."""
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(12)

    # -- state --

    def set_advanced_visible(self, on: bool) -> None:
        """Open or collapse the Advanced section."""
        if self.advanced_button.isChecked() != on:
            self.advanced_button.setChecked(on)  # comes back here through toggled
            return
        self.advanced_scroll.setVisible(on)
        set_disclosed(self.advanced_button, on)

    def _advanced_set(self) -> int:
        """How many advanced settings differ from the default (restart included)."""
        texts = [self.prior_projects, self.val_frames, self.config_file, *self.override_edits.values()]
        return (sum(bool(w.text().strip()) for w in texts) + (self.tex_init.currentData() is not None)
                + (self.vgg_region.currentData() is not None) + self.restart.isChecked() + (not self.detail_check.isChecked()))

    def _advanced_changed(self, *_: object) -> None:
        n = self._advanced_set()
        self.advanced_button.setText(f"Advanced ({n} set)" if n else "Advanced")
        self.advanced_reset.setVisible(n > 0)
        self.val_every.setEnabled(bool(self.val_frames.text().strip()))
        mixed = self.mode.currentText() == "mixed"
        self.prior_projects.setEnabled(mixed)
        self._add_prior_project_btn.setEnabled(mixed)

    def reset_advanced(self) -> None:
        """Every advanced setting back to its default (the fields empty)."""
        for w in (self.prior_projects, self.val_frames, self.config_file, *self.override_edits.values()):
            w.clear()
        self.val_every.setValue(VAL_EVERY)
        self.tex_init.setCurrentIndex(0)
        self.vgg_region.setCurrentIndex(0)
        self.restart.setChecked(False)
        self.detail_check.setChecked(True)

    def _add_prior_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A project folder of one of the prior's actors")
        if path:
            have = [p.strip() for p in self.prior_projects.text().split(";") if p.strip()]
            self.prior_projects.setText("; ".join([*have, path]))

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "TrainConfig overrides", self.config_file.text(), "JSON (*.json);;All files (*)")
        if path:
            self.config_file.setText(path)

    def _mode_changed(self, mode: str) -> None:
        if hasattr(self, "advanced"):
            self._advanced_changed()
        text = MODE_HELP.get(mode, "")
        if self.from_shot.currentText().strip():
            text = (FROM_SHOT_HELP if mode != "mixed" else "mixed mode cannot start from another shot; use full or "
                    "texture")
        self.mode_help.setText(text)

    def _choose_prior(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a prior renderer", self.prior.text(), "Checkpoints (*.pt);;All files (*)")
        if path:
            self.prior.setText(path)

    def _fill_shots(self, *_: object) -> None:
        """Offer the recent projects (not this one) that have an adaptation, the most alike
        tracked face first; keep what is typed."""
        from dubstudio.gui.project_panel import RecentProjects
        from dubstudio.project.store import Project

        here = self.session.project.root.resolve() if self.session.project is not None else None
        text = self.from_shot.currentText()
        shots = []
        for path in RecentProjects(self.settings).paths():
            if here is not None and Path(path).resolve() == here:
                continue
            try:
                if Project.open(path).stage_record("adapt"):
                    shots.append(path)
            except Exception:  # noqa: BLE001 - a damaged or foreign folder is simply not offered
                continue
        far = {p: self._face_distance(p) for p in shots}
        shots.sort(key=lambda p: (far[p] is None, far[p] or 0.0))
        self.from_shot.blockSignals(True)
        self.from_shot.clear()
        self.from_shot.addItems([""] + shots)
        self.from_shot.setEditText(text if here is None or text != str(here) else "")
        self.from_shot.blockSignals(False)
        self._from_shot_changed(self.from_shot.currentText())

    def _from_shot_changed(self, text: str) -> None:
        self.prior.setEnabled(not text.strip())  # the other shot's adaptation replaces the prior
        on = bool(text.strip())
        if on != self._from_shot_on:  # each start keeps its own step count
            self._steps_for[self._from_shot_on] = int(self.steps.value())
            self.steps.setValue(self._steps_for[on])
            self._from_shot_on = on
        self._mode_changed(self.mode.currentText())
        from dubstudio.training.from_shot import SAME_ACTOR_MAX_DISTANCE

        d = self._face_distance(text.strip()) if text.strip() else None
        self.from_shot_note.setVisible(d is not None)
        if d is not None and d <= SAME_ACTOR_MAX_DISTANCE:
            self.from_shot_note.setText(f"Same face as this shot (shape distance {d:.3f}).")
            self.from_shot_note.setStyleSheet("color: #81c784;")
        elif d is not None:
            self.from_shot_note.setText(f"⚠ The face tracked there differs from this one by {d:.3f}, as much as two "
                                        "people's do (one actor: about 0.01). Is it the same actor?")
            self.from_shot_note.setStyleSheet("color: #ffb74d;")

    def _face_distance(self, source: str) -> float | None:
        """Shape distance between the tracked faces of ``source`` (a From shot entry) and this
        shot; None when either is not known."""
        from dubstudio.project.store import Project
        from dubstudio.tracking.fitting import shape_distance
        from dubstudio.shot.adaptation import shot_of, tracked_identity

        if self.session.tracking is None:
            return None
        try:
            root = shot_of(source)
            other = tracked_identity(Project.open(root)) if root is not None else None
        except Exception:  # noqa: BLE001 - a half-typed path or a foreign folder: nothing to say
            return None
        return None if other is None else shape_distance(self.session.tracking.identity, other)

    def _choose_shot(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose another shot of this actor (its project folder)",
                                                self.from_shot.currentText())
        if path:
            self.from_shot.setEditText(path)

    def _update_enabled(self, *_: object) -> None:
        running = self.job is not None and self.job.running
        self.start_btn.setEnabled(self.session.is_tracked and not running)
        self.cancel_btn.setEnabled(running)
        if not running and self.session.project is None:
            self.job = None  # the shot was closed: its run is history
        if self.job is None:  # nothing run on this shot yet: say what the project has
            self.status.setText(self._saved_state())

    def _saved_state(self) -> str:
        s = self.session
        rec = s.project.stage_record("adapt") if s.project is not None and s.tracking is not None else None
        if not rec:
            return "Not adapted yet."
        m = rec.get("metrics", {})
        loss = m.get("final_loss")
        return (f"Adapted: {m.get('mode', '?')}, {m.get('steps', '?')} steps"
                + (f" from shot {m['from_shot']}" if m.get("from_shot") else "")
                + (f", final loss {loss:.4f}" if isinstance(loss, (int, float)) else "")
                + ". More steps continue from it.")

    # -- the job --

    def request(self) -> AdaptRequest:
        """The panel's choices as the request ``dubstudio adapt`` makes (``cli.train.adapt_request``);
        DubStudioError says what is wrong, before anything starts."""
        from dubstudio.core.frames import parse_frames
        from dubstudio.gui.settings_dialog import Preferences

        s = self.session
        if s.project is None or s.tracking is None:
            raise DubStudioError("Track the shot before adapting.")
        n = s.tracking.n_frames
        mode, steps = self.mode.currentText(), int(self.steps.value())
        frames = self.frames.text().strip() or None
        parse_frames(frames, n)  # a wrong range is said before anything starts
        val_frames = self.val_frames.text().strip() or None
        if val_frames:
            try:
                parse_frames(val_frames, n)
            except DubStudioError as e:
                raise DubStudioError(f"Validation frames: {e}") from e
        shot, prior, from_shot = self.from_shot.currentText().strip(), None, None
        if shot:  # the other shot's adaptation replaces the prior (the prior field is greyed out)
            from dubstudio.shot.adaptation import actor_file_of

            if mode == "mixed":
                raise DubStudioError("From shot: mixed mode mixes the prior's people in; use full or texture.")
            try:
                actor_file_of(Path(shot).expanduser())
            except DubStudioError as e:
                raise DubStudioError(f"From shot: {e}") from e
            from_shot = Path(shot).expanduser()
        elif self.prior.text().strip():
            from dubstudio.nn.registry import resolve

            try:  # a checkpoint file or a registered name ("default"), as the CLI's --prior
                prior = resolve("prior", self.prior.text().strip())
            except DubStudioError as e:
                raise DubStudioError(f"Prior not found: {e}") from e
        prior_projects = None
        if mode == "mixed" and self.prior_projects.text().strip():
            prior_projects = tuple(Path(p.strip()).expanduser() for p in self.prior_projects.text().split(";") if p.strip())
            for p in prior_projects:
                if not p.is_dir():
                    raise DubStudioError(f"Prior projects: {p} is not a project folder; separate folders with ';'.")
        overrides: dict = {}
        for key, label, kind, _default, low in NUMBER_OVERRIDES:
            text = self.override_edits[key].text().strip()
            if not text:
                continue
            try:
                value = kind(text)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise DubStudioError(f"{label}: give {what} (or leave it empty for the default), got {text!r}.") from None
            if low is not None and (value <= low if key.startswith("lr_") else value < low):
                raise DubStudioError(f"{label} must be {'above' if key.startswith('lr_') else 'at least'} {low:g}, got {text}.")
            overrides[key] = value
        for key, combo in (("vgg_region", self.vgg_region), ("tex_init", self.tex_init)):
            if combo.currentData() is not None:
                overrides[key] = combo.currentData()
        if val_frames:  # as the CLI: the interval goes with the validation frames
            overrides["val_every"] = int(self.val_every.value())
        if self.sharp.isChecked():  # the shortcut fills what was not set by hand
            for key, value in SHARP.items():
                overrides.setdefault(key, value)
        config_file = Path(self.config_file.text().strip()).expanduser() if self.config_file.text().strip() else None
        train_config(overrides, config_file)  # a bad file or combination (resolution vs width) is said now
        threads = Preferences.load(self.settings).threads or None
        return AdaptRequest(s.project.root, steps, mode=mode, prior=prior, prior_projects=prior_projects,
                            from_shot=from_shot, frames=frames, val_frames=val_frames, overrides=overrides,
                            config_file=config_file, device=self.device(), threads=threads,
                            restart=self.restart.isChecked(), keep_longer=True, detail_check=self.detail_check.isChecked())

    def _remember(self, request: AdaptRequest) -> None:
        sharp = self.sharp.isChecked()
        remember = [("mode", request.mode), ("frames", self.frames.text()), ("sharp", "true" if sharp else "false")]
        # from another shot: its own step count, and the prior field (greyed out) is left as it was
        remember += ([("steps_from_shot", request.steps)] if request.from_shot is not None
                     else [("steps", request.steps), ("prior", self.prior.text().strip())])
        remember += [("prior_projects", self.prior_projects.text().strip()), ("val_frames", self.val_frames.text().strip()),
                     ("val_every", int(self.val_every.value())), ("tex_init", self.tex_init.currentData() or ""),
                     ("config", self.config_file.text().strip()), ("vgg_region", self.vgg_region.currentData() or ""),
                     ("detail_check", "true" if request.detail_check else "false")]
        remember += [(key, edit.text().strip()) for key, edit in self.override_edits.items()]
        for k, v in remember:
            self.settings.setValue(f"adapt/{k}", v)

    def start(self) -> Job | None:
        s = self.session
        if not s.is_tracked:
            self.status.setText("Track the shot before adapting.")
            return None
        if self.job is not None and self.job.running:
            return self.job
        try:
            request = self.request()
        except DubStudioError as e:
            self.status.setText(str(e))
            return None
        if request.from_shot is not None:
            from dubstudio.shot.adaptation import actor_file_of
            from dubstudio.training.from_shot import other_actor_warning

            try:
                warning = other_actor_warning(actor_file_of(request.from_shot), s.project)
            except DubStudioError as e:
                self.status.setText(f"From shot: {e}")
                return None
            if warning and self.win_prompt("other_actor", warning[0].upper() + warning[1:] + " Start from it anyway?") != "yes":
                self.status.setText("Not started: choose a shot of this actor, or leave From shot empty.")
                return None
        self._remember(request)
        self.restart.setChecked(False)  # a restart is for this start only
        mode, steps, device, slot = request.mode, request.steps, request.device, self._slot
        every = self.preview_every or max(5, min(50, steps // 20))
        preview_frame = s.playhead.frame

        def run(progress):
            return adapt_job(request, progress, preview=slot.put, preview_frame=preview_frame, preview_every=every)

        self._steps.clear()
        self._loss.clear()
        self.loss_curve.setData([], [])
        self.job = self.jobs.start("Adaptation", run)
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_done)
        self.job.failed.connect(lambda msg: self.status.setText(f"Adaptation failed: {msg}"))
        self.job.cancelled.connect(lambda _m: self.status.setText("Cancelled: the checkpoint is saved; Start resumes it."))
        self.job.finished.connect(self._update_enabled)
        self.job.finished.connect(self._show_preview)
        origin = f" from {request.from_shot.name}" if request.from_shot is not None else ""
        self.status.setText(f"Adapting ({mode}{origin}, {steps} steps on {device})…")
        self._update_enabled()
        return self.job

    def win_prompt(self, kind: str, text: str) -> str:
        """Ask through the window's prompter (tests answer without a dialog)."""
        from dubstudio.gui.prompts import Prompter

        return (self.prompter or Prompter()).ask(kind, text, self)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_progress(self, ev) -> None:
        m = ev.metrics or {}
        if ev.stage == CHECK_STAGE:
            self.status.setText(f"Choosing the mouth detail on the held-out frames ({ev.done}/{ev.total})…")
        if "loss" in m and (not self._steps or ev.done > self._steps[-1]):
            self._steps.append(int(ev.done))
            self._loss.append(float(m["loss"]))
            self.loss_curve.setData(self._steps, self._loss)
            eta = format_eta(m.get("eta_s"))
            self.status.setText(f"Step {ev.done}/{ev.total} · loss {m['loss']:.4f} · mouth {m.get('mouth_psnr', 0):.1f} dB"
                                f" · {m.get('steps_per_s', 0):.2f} steps/s · ETA {eta}")
        self._show_preview()

    def _show_preview(self) -> None:
        item = self._slot.take()
        if item is None:
            return
        step, rgb = item
        pix = QPixmap.fromImage(to_qimage(rgb))
        w = max(64, self.preview.width() - 8)
        h = max(32, self.preview.height() - 8)
        self.preview.setPixmap(pix.scaled(w, h, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self.preview.setToolTip(f"step {step}: real | rendered")
        self.preview_shown.emit(step)

    def _on_done(self, done) -> None:
        result, detail = done.train, done.detail
        chosen = ""
        if detail is not None and detail.scores:
            chosen = f"\nMouth detail: {detail.summary()}"
        self.status.setToolTip(detail.describe() if detail is not None and detail.scores else "")
        self.status.setText(f"Adapted: {result.steps} steps, final loss {result.final_loss:.4f}, "
                            f"{result.stored_bytes / 1e6:.1f} MB → {Path(result.path).name}" + chosen
                            + (f"\n⚠ {result.warning[0].upper()}{result.warning[1:]}" if result.warning else ""))
        self.adapted.emit(result)

    @property
    def history(self) -> tuple[list[int], list[float]]:
        return list(self._steps), list(self._loss)
