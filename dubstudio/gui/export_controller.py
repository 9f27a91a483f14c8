"""File ▸ Export…: the action, saving first, the export job and its result in the message bar.

Export reads the project from disk, so unsaved curve/mask edits are saved first (the user is
asked; Cancel leaves everything as it is). The job runs ``export_choice.run_export`` with
progress, ETA and cancel in the status bar; the result (path, frames, duration, the audio, the
synthetic-media mark, the ffprobe check) ends in the message bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from dubstudio.gui.export_choice import ExportChoice, describe_result, run_export
from dubstudio.gui.export_dialog import ExportDialog
from dubstudio.gui.jobs import Job

if TYPE_CHECKING:
    from dubstudio.gui.main_window import MainWindow


class ExportController(QObject):
    """File ▸ Export…: the dialog, saving first, the job and its result."""

    exported = Signal(dict)  # export_shot's summary

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.job: Job | None = None
        self.last_result: dict | None = None
        a = QAction("&Export…", win)
        a.setShortcut(QKeySequence("Ctrl+E"))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip = "Export the dubbed shot: mp4, ProRes mov or PNGs, with the dubbed audio (background job, Ctrl+E)"
        a.setStatusTip(tip)
        a.setToolTip(tip)
        a.triggered.connect(self.open_dialog)
        win.addAction(a)
        win.actions["export"] = a
        self.action = a
        file_menu = next((m for m in (x.menu() for x in win.menuBar().actions()) if isinstance(m, QMenu) and m.title().replace("&", "") == "File"), None)
        if file_menu is not None:
            quit_act = win.actions.get("quit")
            acts = file_menu.actions()
            before = acts[acts.index(quit_act) - 1] if quit_act in acts and acts.index(quit_act) > 0 else quit_act
            file_menu.insertAction(before, a)
        s = win.session
        for sig in (s.shot_opened, s.shot_closed, s.tracking_changed):
            sig.connect(self._update_enabled)
        win.jobs.job_finished.connect(lambda _j: self._update_enabled())
        self._update_enabled()

    def _running(self) -> bool:
        return self.job is not None and self.job.running

    def _update_enabled(self, *_: object) -> None:
        self.action.setEnabled(self.win.session.is_tracked and not self._running())

    def make_dialog(self) -> ExportDialog:
        return ExportDialog(self.win)

    def open_dialog(self) -> Job | None:
        if not self.win.session.is_tracked:
            self.win.messages.show_message("Open and track a shot before exporting it.", "info", 6000)
            return None
        if not self.ensure_saved():
            return None
        dlg = self.make_dialog()
        if not dlg.exec():
            return None
        return self.start(dlg.choice())

    def ensure_saved(self) -> bool:
        """Export reads the project: unsaved edits are saved first (asked). False: cancelled."""
        s, win = self.win.session, self.win
        if not s.is_dirty:
            return True
        text = (f"Export renders what is saved in the project, and {s.info.path.name} has unsaved edits. "
                f"Save them before exporting?")
        if win.prompter.ask("export_unsaved", text, win) != "save":
            return False
        return win.save()

    def start(self, choice: ExportChoice) -> Job | None:
        win = self.win
        if self._running():
            win.messages.show_message("An export is already running.", "info", 6000)
            return None
        if not self.ensure_saved():
            return None
        job = win.jobs.start("Export", lambda progress: run_export(choice, progress))
        self.job = job
        job.succeeded.connect(self._on_done)
        job.failed.connect(lambda msg: win._job_error("Export failed", msg))
        job.cancelled.connect(lambda _m: win.statusBar().showMessage(
            "Export cancelled: its finished segments are kept, and exporting to the same name continues it", 8000))
        win.statusBar().showMessage(f"Exporting to {choice.output}…", 4000)
        self._update_enabled()
        return job

    def _on_done(self, result: dict) -> None:
        self.last_result = result
        level = "info" if (result.get("verify") or {"ok": True}).get("ok") else "warning"
        self.win.messages.show_message(describe_result(result), level)
        self.exported.emit(result)
