"""Project / shot panel: what is open, its tracking and edit state, recent projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dubstudio.gui.model.session import ShotSession

RECENT_KEY = "recent_projects"
MAX_RECENT = 10


class RecentProjects:
    """Recent project folders in QSettings, newest first, missing ones dropped."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def paths(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):
            value = [value]
        return [p for p in (value or []) if Path(p).is_dir()]

    def add(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        items = [p] + [q for q in self.paths() if q != p]
        self.settings.setValue(RECENT_KEY, items[:MAX_RECENT])
        self.settings.sync()


def _elide_path(p: str, keep: int = 2) -> str:
    parts = Path(p).parts
    return p if len(parts) <= keep + 1 else "…/" + "/".join(parts[-keep:])


class ProjectPanel(QWidget):
    open_video_requested = Signal()
    open_project_requested = Signal()
    track_requested = Signal()
    recent_chosen = Signal(str)

    def __init__(self, session: ShotSession, recent: RecentProjects, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.recent = recent
        self.busy = False  # a tracking job (or the tracking load) is running

        buttons = QHBoxLayout()
        for text, sig in (("Open Video…", self.open_video_requested), ("Open Project…", self.open_project_requested)):
            b = QPushButton(text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(sig)
            buttons.addWidget(b)

        shot = QGroupBox("Shot")
        form = QFormLayout(shot)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.project_label = self._value()
        self.video_label = self._value()
        self.format_label = self._value()
        self.tracking_label = self._value()
        self.edits_label = self._value()
        form.addRow("Project", self.project_label)
        form.addRow("Video", self.video_label)
        form.addRow("Format", self.format_label)
        form.addRow("Tracking", self.tracking_label)
        form.addRow("Edits", self.edits_label)
        self.track_button = QPushButton("Track face")
        self.track_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.track_button.clicked.connect(self.track_requested)
        form.addRow(self.track_button)

        rec = QGroupBox("Recent projects")
        rl = QVBoxLayout(rec)
        self.recent_list = QListWidget()
        self.recent_list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.recent_list.itemActivated.connect(lambda it: self.recent_chosen.emit(it.data(Qt.ItemDataRole.UserRole)))
        rl.addWidget(self.recent_list)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.recent_list.setMaximumHeight(180)
        lay.addLayout(buttons)
        lay.addWidget(shot)
        lay.addWidget(rec)
        lay.addStretch(1)

        for sig in (session.shot_opened, session.shot_closed, session.tracking_changed, session.saved):
            sig.connect(self.refresh)
        session.dirty_changed.connect(self.refresh)
        session.undo_stack.index_changed.connect(lambda _i: self.refresh())
        self.refresh()
        self.refresh_recent()

    def add_section(self, widget: QWidget) -> None:
        """Another group under the shot's (e.g. the Dub buttons of gui/dubbing.py)."""
        lay = self.layout()
        lay.insertWidget(lay.indexOf(self.recent_list.parentWidget()), widget)

    @staticmethod
    def _value() -> QLabel:
        label = QLabel("—")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def refresh(self, *_: object) -> None:
        s = self.session
        if not s.is_open:
            for label in (self.project_label, self.video_label, self.format_label, self.tracking_label, self.edits_label):
                label.setText("—")
            self.track_button.setEnabled(False)
            return
        self.project_label.setText(_elide_path(str(s.project.root)))
        self.project_label.setToolTip(str(s.project.root))
        self.video_label.setText(s.info.path.name)
        self.video_label.setToolTip(str(s.info.path))
        self.format_label.setText(s.info.describe())
        if s.tracking is not None:
            m = s.metrics
            faces = f"{int(s.tracking.has_face.sum())}/{s.tracking.n_frames} frames with a face"
            rms = m.get("landmark_rms_iod")
            if int(m.get("faces_seen", 1) or 1) > 1:  # which of them is tracked (Shot ▸ Choose Face…)
                face = m.get("face", "automatic")
                faces += f"\n{m['faces_seen']} faces in the shot; {'the most prominent' if face == 'automatic' else face}"
            self.tracking_label.setText(faces + (f"\nlandmark error {rms * 100:.2f} % IOD" if rms is not None else ""))
        else:
            self.tracking_label.setText(s.tracking_note or "not tracked")
        if s.curves is not None:
            n_keys = sum(len(k) for k in s.curves.all_keys().values())
            state = "unsaved changes" if s.is_dirty else "saved"
            self.edits_label.setText(f"{n_keys} keys · {state}")
        else:
            self.edits_label.setText("—")
        # Tracking is cached by content: a tracked shot has nothing to recompute.
        self.track_button.setEnabled(s.tracking is None and not self.busy)
        self.track_button.setText("Tracked" if s.tracking is not None else ("Tracking…" if self.busy else "Track face"))

    def refresh_recent(self) -> None:
        self.recent_list.clear()
        for p in self.recent.paths():
            item = QListWidgetItem(Path(p).name)
            item.setToolTip(p)
            item.setData(Qt.ItemDataRole.UserRole, p)
            self.recent_list.addItem(item)
