"""Adaptation panel: train the actor's neural renderer in a background job, watch it learn.

The job is ``dubstudio.training.trainer.adapt`` (the same as ``dubstudio adapt``), run through the
``JobManager``: the GUI thread only receives throttled progress events. The panel plots the loss
and the training mouth PSNR as they arrive, and shows a preview (real crop | current rendering of
one frame) that the trainer hands over every few steps from the worker thread; the panel keeps
only the latest one (a lock-protected slot) and draws it on the next progress event.

"From shot" starts from the actor's adaptation on another shot (``adapt(start_from=...)``) instead
of the prior; its list offers the recent projects that have an adaptation.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
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

from dubstudio.gui.jobs import Job, JobManager, format_eta
from dubstudio.pipeline import FROM_SHOT_STEPS, RUN_STEPS
from dubstudio.gui.session import ShotSession

MODES = ("full", "texture", "mixed")
MODE_HELP = {
    "full": "texture + renderer fine-tuned on this actor (best quality; ~13 MB per actor)",
    "texture": "texture only, renderer from the prior (needs a prior; < 1 MB per actor)",
    "mixed": "like full, with the prior's actors mixed in 1:1 (needs a prior; keeps it general)",
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


# the perceptual weight of "Sharper mouth" (measured in BENCHMARKS.md, issue 3 third session)
SHARP_W_VGG = 0.3

def to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


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
                              "--vgg-region mouth): crisper lips and teeth, a little lower PSNR, about 1.5-2x the "
                              "time per step on a CPU. See BENCHMARKS.md.")
        self.sharp.setChecked(str(settings.value("adapt/sharp", "false")).lower() == "true")
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
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn, 1)
        buttons.addWidget(self.cancel_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.mode_help)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.plot, 2)
        lay.addWidget(self.preview, 2)
        self._mode_changed(self.mode.currentText())
        session.tracking_changed.connect(self._update_enabled)
        session.shot_closed.connect(self._update_enabled)
        session.tracking_changed.connect(self._fill_shots)
        self._fill_shots()
        self._update_enabled()

    # -- state --

    def _mode_changed(self, mode: str) -> None:
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

    def _frames(self, n: int) -> range | None:
        from dubstudio.core.frames import parse_frames

        text = self.frames.text().strip()
        return parse_frames(text, n) if text else None

    def start(self) -> Job | None:
        s = self.session
        if not s.is_tracked:
            self.status.setText("Track the shot before adapting.")
            return None
        if self.job is not None and self.job.running:
            return self.job
        from dubstudio.core.errors import DubStudioError

        try:
            frames = self._frames(s.tracking.n_frames)
        except DubStudioError as e:
            self.status.setText(str(e))
            return None
        mode, steps, prior = self.mode.currentText(), int(self.steps.value()), self.prior.text().strip() or None
        start_from = None
        if self.from_shot.currentText().strip():
            from dubstudio.shot.adaptation import actor_file_of

            try:
                start_from = actor_file_of(self.from_shot.currentText().strip())
            except DubStudioError as e:
                self.status.setText(f"From shot: {e}")
                return None
            if mode == "mixed":
                self.status.setText("From shot: mixed mode mixes the prior's people in; use full or texture.")
                return None
            from dubstudio.training.from_shot import other_actor_warning

            try:
                warning = other_actor_warning(start_from, s.project)
            except DubStudioError as e:
                self.status.setText(f"From shot: {e}")
                return None
            if warning and self.win_prompt("other_actor", warning[0].upper() + warning[1:] + " Start from it anyway?") != "yes":
                self.status.setText("Not started: choose a shot of this actor, or leave From shot empty.")
                return None
            prior = None
        elif prior and not Path(prior).is_file():
            self.status.setText(f"Prior not found: {prior}")
            return None
        sharp = self.sharp.isChecked()
        remember = [("mode", mode), ("frames", self.frames.text()), ("sharp", "true" if sharp else "false")]
        # from another shot: its own step count, and the prior field (greyed out) is left as it was
        remember += [("steps_from_shot", steps)] if start_from is not None else [("steps", steps), ("prior", prior or "")]
        for k, v in remember:
            self.settings.setValue(f"adapt/{k}", v)
        project, device, slot = s.project, self.device(), self._slot
        every = self.preview_every or max(5, min(50, steps // 20))
        preview_frame = s.playhead.frame

        def run(progress):
            from dubstudio.nn.config import TrainConfig
            from dubstudio.training.trainer import adapt

            cfg = TrainConfig(w_vgg=SHARP_W_VGG, vgg_region="mouth") if sharp else TrainConfig()
            return adapt(project, mode, steps, frames=frames, prior=prior, cfg=cfg, device=device, progress=progress,
                         preview=slot.put, preview_frame=preview_frame, preview_every=every, start_from=start_from,
                         keep_longer=True)

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
        origin = f" from {Path(self.from_shot.currentText().strip()).name}" if start_from is not None else ""
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

    def _on_done(self, result) -> None:
        self.status.setText(f"Adapted: {result.steps} steps, final loss {result.final_loss:.4f}, "
                            f"{result.stored_bytes / 1e6:.1f} MB → {Path(result.path).name}"
                            + (f"\n⚠ {result.warning[0].upper()}{result.warning[1:]}" if result.warning else ""))
        self.adapted.emit(result)

    @property
    def history(self) -> tuple[list[int], list[float]]:
        return list(self._steps), list(self._loss)
