"""Preferences (Edit ▸ Settings…): compute device, CPU threads, autosave, rendering defaults, and
where projects go.

Values live in the window's ``QSettings`` under ``prefs/*``; ``Preferences.load`` reads them with
their defaults so the rest of the editor never touches raw keys. The projects folder is not the
editor's alone: it is the setting the CLI and batch read too (``core.paths``, ``dubstudio settings``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dubstudio.core import paths

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Preferences:
    device: str = "auto"  # auto: the GPU when the probe finds one, else the CPU
    threads: int = 0  # torch CPU threads for jobs; 0 = torch's choice
    autosave_s: int = 30
    preview_every: int = 25  # adaptation preview cadence (steps)
    playback_audio: bool = True

    @classmethod
    def load(cls, settings: QSettings) -> Preferences:
        d = cls()
        out = {}
        for k, default in asdict(d).items():
            v = settings.value(f"prefs/{k}", default)
            if isinstance(default, bool):
                v = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
            else:
                try:
                    v = type(default)(v)
                except (TypeError, ValueError):
                    v = default
            out[k] = v
        if out["device"] not in DEVICES:
            out["device"] = "auto"
        out["threads"] = max(0, min(256, out["threads"]))
        out["autosave_s"] = max(5, min(3600, out["autosave_s"]))
        out["preview_every"] = max(1, out["preview_every"])
        return cls(**out)

    def save(self, settings: QSettings) -> None:
        for k, v in asdict(self).items():
            settings.setValue(f"prefs/{k}", v)

    def resolve_device(self, probed: str) -> str:
        """The device jobs use: the choice, or the probe's answer for ``auto``."""
        return probed if self.device == "auto" else self.device


class SettingsDialog(QDialog):
    def __init__(self, prefs: Preferences, probed_device: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DubStudio Settings")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(prefs.device)
        self.device.setToolTip(f"auto uses what was found at start-up: {probed_device}")
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(prefs.threads)
        self.autosave = QSpinBox()
        self.autosave.setRange(5, 3600)
        self.autosave.setSuffix(" s")
        self.autosave.setValue(prefs.autosave_s)
        self.preview_every = QSpinBox()
        self.preview_every.setRange(1, 10_000)
        self.preview_every.setSuffix(" steps")
        self.preview_every.setValue(prefs.preview_every)
        self.audio = QCheckBox("Play sound during playback (when an output device exists)")
        self.audio.setChecked(prefs.playback_audio)
        self.projects = QLineEdit(str(paths.projects_dir()))
        self.projects.setToolTip("Where a video's project goes when you open it (the CLI's `run`, `track` and `batch` "
                                 "use the same folder: dubstudio settings --projects-dir). Never beside the video.")
        fixed = paths.projects_dir_source().startswith("environment")
        self.projects.setEnabled(not fixed)
        browse = QToolButton()
        browse.setText("…")
        browse.setEnabled(not fixed)
        browse.clicked.connect(self._choose_projects)
        projects_row = QHBoxLayout()
        projects_row.setContentsMargins(0, 0, 0, 0)
        projects_row.addWidget(self.projects, 1)
        projects_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Projects folder", projects_row)
        if fixed:
            form.addRow("", QLabel("set by DUBSTUDIO_PROJECTS in the environment"))
        form.addRow("Compute device", self.device)
        form.addRow("CPU threads for jobs", self.threads)
        form.addRow("Autosave every", self.autosave)
        form.addRow("Training preview every", self.preview_every)
        form.addRow("", self.audio)
        note = QLabel(f"Device found at start-up: {probed_device}. Jobs already running keep their device.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #9aa0a6;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(lambda: self._set(Preferences()))
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(buttons)

    def _set(self, p: Preferences) -> None:
        self.device.setCurrentText(p.device)
        self.threads.setValue(p.threads)
        self.autosave.setValue(p.autosave_s)
        self.preview_every.setValue(p.preview_every)
        self.audio.setChecked(p.playback_audio)

    def preferences(self) -> Preferences:
        return Preferences(self.device.currentText(), int(self.threads.value()), int(self.autosave.value()),
                           int(self.preview_every.value()), self.audio.isChecked())

    def _choose_projects(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for new projects", self.projects.text())
        if path:
            self.projects.setText(path)

    def projects_dir(self) -> Path | None:
        """The projects folder chosen (None: unchanged, or fixed by the environment)."""
        text = self.projects.text().strip()
        if not self.projects.isEnabled() or not text or Path(text).expanduser() == paths.projects_dir():
            return None
        return Path(text).expanduser()
