"""File ▸ Export…: the action, saving first, the export job and its result in the message bar.

Export reads the project from disk, so unsaved curve/mask edits are saved first (the user is
asked; Cancel leaves everything as it is). The job runs ``app.export.export_job`` with
progress, ETA and cancel in the status bar; the result (path, frames, duration, the audio, the
synthetic-media mark, the ffprobe check: ``app.export.describe``, as the CLI prints it) ends in the message bar.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence

from dubstudio.app.export import ExportRequest, export_job
from dubstudio.gui.export_dialog import ExportDialog
from dubstudio.gui.jobs import Job
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices


class ExportController(QObject):
    """File ▸ Export…: the dialog, saving first, the job and its result."""

    exported = Signal(dict)  # export_shot's summary

    def __init__(self, session: ShotSession, services: EditorServices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.services = session, services
        self.job: Job | None = None
        self.last_result: dict | None = None
        tip = "Export the dubbed shot: mp4, ProRes mov or PNGs, with the dubbed audio (background job, Ctrl+E)"
        self.action = a = services.new_action("export", "&Export…", self.open_dialog, QKeySequence("Ctrl+E"), tip=tip)
        file_menu = services.menu("&File")
        quit_act = services.actions.get("quit")
        acts = file_menu.actions()
        before = acts[acts.index(quit_act) - 1] if quit_act in acts and acts.index(quit_act) > 0 else quit_act
        file_menu.insertAction(before, a)
        for sig in (session.shot_opened, session.shot_closed, session.tracking_changed):
            sig.connect(self._update_enabled)
        services.jobs.job_finished.connect(lambda _j: self._update_enabled())
        self._update_enabled()

    def _running(self) -> bool:
        return self.job is not None and self.job.running

    def _update_enabled(self, *_: object) -> None:
        self.action.setEnabled(self.session.is_tracked and not self._running())

    def make_dialog(self) -> ExportDialog:
        return ExportDialog(self.session, self.services)

    def open_dialog(self) -> Job | None:
        if not self.session.is_tracked:
            self.services.messages.show_message("Open and track a shot before exporting it.", "info", 6000)
            return None
        if not self.ensure_saved():
            return None
        dlg = self.make_dialog()
        if not dlg.exec():
            return None
        return self.start(dlg.choice())

    def ensure_saved(self) -> bool:
        """Export reads the project: unsaved edits are saved first (asked). False: cancelled."""
        s, sv = self.session, self.services
        if not s.is_dirty:
            return True
        text = (f"Export renders what is saved in the project, and {s.info.path.name} has unsaved edits. "
                f"Save them before exporting?")
        if sv.prompter.ask("export_unsaved", text, sv.parent) != "save":
            return False
        return sv.save()

    def start(self, choice: ExportRequest) -> Job | None:
        sv = self.services
        if self._running():
            sv.messages.show_message("An export is already running.", "info", 6000)
            return None
        if not self.ensure_saved():
            return None
        job = sv.jobs.start("Export", lambda progress: export_job(choice, progress))
        self.job = job
        job.succeeded.connect(self._on_done)
        job.failed.connect(lambda msg: sv.report_error("Export failed", msg))
        job.cancelled.connect(lambda _m: sv.status(
            "Export cancelled: its finished segments are kept, and exporting to the same name continues it", 8000))
        sv.status(f"Exporting to {choice.output}…", 4000)
        self._update_enabled()
        return job

    def _on_done(self, result: dict) -> None:
        self.last_result = result
        level = "info" if (result.get("verify") or {"ok": True}).get("ok") else "warning"
        self.services.messages.show_message(describe_result(result), level)
        self.exported.emit(result)


def describe_result(result: dict) -> str:
    """The export's description (``app.export.describe``) as one paragraph for the message bar."""
    from dubstudio.app.export import describe

    lines = describe(result)
    return " · ".join([lines[0][0].upper() + lines[0][1:]] + lines[1:])
