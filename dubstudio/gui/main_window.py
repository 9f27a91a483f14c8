"""The editor window: project panel, viewer, timeline, jobs, menus, autosave and recovery."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QSplitter,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from dubstudio.core.errors import DubStudioError
from dubstudio.gui.actions import build_actions
from dubstudio.gui.adapt_panel import AdaptPanel
from dubstudio.gui.settings_dialog import Preferences, SettingsDialog
from dubstudio.gui.device import DeviceProbe, describe
from dubstudio.gui.dubbing import DubController
from dubstudio.gui.export_controller import ExportController
from dubstudio.gui.frames import FrameSource
from dubstudio.gui.jobs import Job, JobManager, JobPanel, freeze_heap_after_imports, preload_ml_modules
from dubstudio.gui.mask_tool import MaskTool
from dubstudio.gui.compare import CompareController
from dubstudio.gui.correction_tool import CorrectionTool
from dubstudio.gui.cut_import import CutImport
from dubstudio.gui.face_picker import FacePicker
from dubstudio.gui.overlay_items import OVERLAYS
from dubstudio.gui.playback import AudioOut, PlaybackController
from dubstudio.gui.project_panel import ProjectPanel, RecentProjects
from dubstudio.gui.prompts import AutoPrompter, MessageBar, Prompter
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices
from dubstudio.gui.model.shot import ShotData, TrackingData, load_tracking, load_waveform, open_shot, track_shot
from dubstudio.gui.thumbnails import load_thumbnails
from dubstudio.gui.timeline import QtTimeline
from dubstudio.gui.viewer import QtViewer

log = logging.getLogger(__name__)

AUTOSAVE_MS = 30_000
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mxf *.mkv *.avi *.m4v *.webm);;All files (*)"


class MainWindow(QMainWindow):
    shot_loaded = Signal()  # an opened shot's frames are on screen (tracking may still load)
    shot_ready = Signal()  # its tracking is loaded (or known to be missing), recovery offered
    tracking_loaded = Signal()  # a tracking (loaded or just computed) is in the session
    job_failed = Signal(str)

    def __init__(self, settings: QSettings | None = None, prompter: Prompter | None = None, autosave_ms: int = AUTOSAVE_MS) -> None:
        super().__init__()
        self.settings = settings or QSettings("DubStudio", "DubStudio")
        self.prompter = prompter or AutoPrompter.from_env() or Prompter()
        self.recent = RecentProjects(self.settings)
        self.session = ShotSession()
        self.jobs = JobManager(self)
        self.frames: FrameSource | None = None
        self._retired_frames: list[FrameSource] = []
        self._open_job: Job | None = None
        self._thumb_job: Job | None = None
        self._closing = False

        self.viewer = QtViewer(self.session)
        self.timeline = QtTimeline(self.session)
        self.messages = MessageBar()
        self.panel = ProjectPanel(self.session, self.recent)
        self.audio = AudioOut()
        self.playback = PlaybackController(self.session.playhead, self.audio, self)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.viewer)
        splitter.addWidget(self.timeline)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([540, 400])  # the timeline: ruler, thumbnails, waveform and a roomy curve editor
        self.splitter = splitter
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.messages)
        lay.addWidget(splitter, 1)
        self.setCentralWidget(central)
        dock = QDockWidget("Project", self)
        dock.setObjectName("project_dock")
        dock.setWidget(self.panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.resizeDocks([dock], [270], Qt.Orientation.Horizontal)
        self.device_name = "cpu"  # the DeviceProbe's answer; jobs train and render there
        self.prefs = Preferences.load(self.settings)
        self.adapt_panel = AdaptPanel(self.session, self.jobs, self.settings, device=self.job_device, prompter=self.prompter)
        self.adapt_dock = QDockWidget("Adapt", self)
        self.adapt_dock.setObjectName("adapt_dock")
        self.adapt_dock.setWidget(self.adapt_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.adapt_dock)
        self.resizeDocks([self.adapt_dock], [300], Qt.Orientation.Horizontal)

        self.job_panel = JobPanel(self.jobs)
        self.zoom_label = QLabel()
        self.device_label = QLabel("Device: checking…")
        sb = self.statusBar()
        sb.addPermanentWidget(self.job_panel)
        sb.addPermanentWidget(self.zoom_label)
        sb.addPermanentWidget(self.device_label)
        self.device = DeviceProbe(self)
        self.device.found.connect(lambda info: self.device_label.setText(describe(info)))
        self.device.found.connect(lambda info: setattr(self, "device_name", info.get("device") or "cpu"))
        self.device.start()

        self.actions = build_actions(self)
        # what the controllers may use of this window (gui/services.py): never the window itself
        self.services = sv = EditorServices(self, self.jobs, self.messages, self.prompter, self.settings, device=self.job_device,
                                            save=self.save, report_error=self._job_error, actions=self.actions)
        self._connect()
        s, v = self.session, self.viewer
        self.mask_tool = MaskTool(s, v, sv, parent=self)  # mask painting mode: its dock, actions, viewer overlay
        self.correction = CorrectionTool(s, v, sv, parent=self)  # tracking correction mode: handles, nudges, its dock
        self.face_picker = FacePicker(s, v, sv, lambda spec: self.track(face=spec), parent=self)  # Shot ▸ Choose Face
        self.compare = CompareController(s, v, sv, masks=self.mask_tool.controller, parent=self)  # side by side, wipe, toggle
        # Shot ▸ Dub from Audio/Dubber Video, dubbed waveform + sound
        self.dubbing = DubController(s, sv, self.timeline, self.panel, self.audio, self.playback, self.shot_ready, parent=self)
        self.export = ExportController(s, sv, parent=self)  # File ▸ Export…
        self.cut_import = CutImport(sv, self.open_path, parent=self)  # File ▸ Import Cut…
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self._autosave_fixed = autosave_ms != AUTOSAVE_MS  # given by the caller (tests): prefs leave it
        self.apply_preferences(self.prefs)
        self.resize(1400, 900)
        geo = self.settings.value("window/geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        self._update_title()
        self._update_actions()
        if not self.audio.available:
            log.info("playback without sound: %s", self.audio.reason)
        preload_ml_modules()  # torch's import holds the GIL ~0.5-1 s: pay it here, not inside a job
        freeze_heap_after_imports()  # the GUI's own imports are done: keep full GCs cheap

    def _connect(self) -> None:
        s = self.session
        s.dirty_changed.connect(lambda _d: (self._update_title(), self._update_actions()))
        for sig in (s.shot_opened, s.shot_closed, s.tracking_changed):
            sig.connect(self._update_actions)
            sig.connect(self._update_title)
        self.jobs.job_started.connect(lambda _j: self._update_actions())
        self.jobs.job_finished.connect(lambda _j: self._update_actions())
        self.playback.state_changed.connect(self._on_play_state)
        self.viewer.overlays_toggled.connect(lambda n, on: self.actions[f"overlay_{n}"].setChecked(on))
        self.viewer.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.timeline.edit_failed.connect(lambda msg: self.messages.show_message(msg, "warning", 8000))
        s.shot_closed.connect(self._cancel_thumbnails)  # another shot opens (or this one closes)
        self.panel.open_video_requested.connect(self.choose_video)
        self.panel.open_project_requested.connect(self.choose_project)
        self.panel.track_requested.connect(self.track)
        self.panel.recent_chosen.connect(self.open_path)

    def _on_play_state(self, speed: float) -> None:
        act = self.actions["play"]
        act.setText("Pause" if speed else "Play")
        pix = QStyle.StandardPixmap.SP_MediaPause if speed else QStyle.StandardPixmap.SP_MediaPlay
        act.setIcon(self.style().standardIcon(pix))
        if speed:
            self.statusBar().showMessage(f"Playing {speed:+g}x" + ("" if self.audio.available else " (no sound: no audio device)"))
        else:
            self.statusBar().clearMessage()

    def _update_title(self, *_: object) -> None:
        s = self.session
        name = s.info.path.name if s.info is not None else "no shot"
        self.setWindowTitle(f"{name}[*] — DubStudio")
        self.setWindowModified(s.is_dirty)

    def _update_actions(self, *_: object) -> None:
        s, a = self.session, self.actions
        tracking = bool(self.jobs.running("Tracking") or self.jobs.running("Loading tracking"))
        a["save"].setEnabled(s.curves is not None)
        a["track"].setEnabled(s.is_open and not tracking and s.tracking is None)
        a["cancel_jobs"].setEnabled(bool(self.jobs.running()))
        for k in ("add_key", "delete_key"):
            a[k].setEnabled(s.curves is not None)
        self.panel.busy = tracking
        self.panel.refresh()

    def goto(self, frame: int) -> None:
        self.playback.pause()
        self.session.playhead.set_frame(frame)

    # -- opening --

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", str(Path.home()), VIDEO_FILTER)
        if path:
            self.open_path(path)

    def choose_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DubStudio project folder", str(Path.home()))
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> Job | None:
        """Open a video (its project is created next to it) or a project folder, in a job."""
        if not self.maybe_save("opening another shot"):
            return None
        if self._open_job is not None and self._open_job.running:
            self._open_job.cancel()
        self.playback.pause()
        job = self.jobs.start("Opening", lambda progress: open_shot(path, progress))
        self._open_job = job
        job.succeeded.connect(lambda data, j=job: self._on_opened(j, data))
        job.failed.connect(lambda msg: self._job_error("Opening failed", msg))
        self.statusBar().showMessage(f"Opening {Path(path).name}…")
        return job

    def _on_opened(self, job: Job, data: ShotData) -> None:
        if job is not self._open_job or self._closing:  # a newer open replaced this one
            data.reader.close()
            return
        self._open_job = None
        self._close_frames()
        self.session.open(data)
        try:
            proxy_dir = data.project.cache_dir("proxy")
        except DubStudioError as e:  # a read-only project: the proxy lives in memory only
            log.warning("display proxy not cached: %s", e)
            proxy_dir = None
        self.frames = FrameSource(data.reader, proxy_dir=proxy_dir, defer_proxy=True,  # started on shot_ready
                                  fingerprint=data.project.video_fingerprint or None)
        self.frames.error.connect(lambda i, msg: self.messages.show_message(msg, "error"))
        self.viewer.set_source(self.frames)
        self.recent.add(data.project.root)
        self.panel.refresh_recent()
        self.statusBar().showMessage(f"Opened {data.info.path.name} ({data.info.describe()})", 8000)
        # The frame first, then the tracking, then the audio: one background thread at a time
        # competes with the GUI for the CPU (and the GIL) while the shot comes up.
        self._after_first_frame(lambda: self._load_tracking(data))
        self.shot_loaded.emit()

    def _after_first_frame(self, fn, fallback_ms: int = 400) -> None:
        """Run ``fn`` once, when the first frame is on screen (or after ``fallback_ms``)."""
        state = {"done": False}

        def run(*_: object) -> None:
            if state["done"]:
                return
            state["done"] = True
            try:
                self.viewer.frame_shown.disconnect(run)
            except (RuntimeError, TypeError):
                pass
            fn()

        if self.viewer.shown_frame is not None:
            QTimer.singleShot(0, run)
            return
        self.viewer.frame_shown.connect(run)
        QTimer.singleShot(fallback_ms, run)

    def _load_tracking(self, data: ShotData) -> None:
        s = self.session
        if s.info is not data.info or self._closing:
            return
        project, n, root = data.project, data.info.n_frames, data.project.root
        lj = self.jobs.start("Loading tracking", lambda progress: load_tracking(project, n, progress))
        lj.succeeded.connect(lambda result: self._on_tracking_result(root, result, loaded=True))
        lj.failed.connect(lambda msg: self._job_error("Loading the tracking failed", msg))
        lj.finished.connect(self._emit_ready_if_current(root))
        lj.finished.connect(lambda: self._load_audio(data.info))
        lj.finished.connect(lambda: self._load_thumbnails(data.info))

    def _load_audio(self, info) -> None:
        s = self.session
        if not info.has_audio or s.info is not info or self._closing:
            return
        video = info.path
        wj = self.jobs.start("Audio", lambda progress: load_waveform(video, progress))
        wj.succeeded.connect(lambda w: s.info is info and s.set_waveform(w))
        wj.failed.connect(lambda msg: self.messages.show_message(f"The waveform could not be read: {msg}", "warning"))
        if self.audio.available:
            from dubstudio.io.audio import load_audio

            aj = self.jobs.start("Sound", lambda progress: load_audio(video, sr=48_000, mono=False))
            aj.succeeded.connect(lambda samples: s.info is info and self.dubbing.set_original_sound(samples, 48_000))

    def _load_thumbnails(self, info) -> None:
        """Decode the timeline's thumbnail strip in a job (the GUI thread never decodes)."""
        s = self.session
        if s.info is not info or self._closing:
            return
        self._cancel_thumbnails()
        video = info.path
        job = self.jobs.start("Thumbnails", lambda progress: load_thumbnails(video, progress))
        self._thumb_job = job
        job.succeeded.connect(lambda t, j=job: j is self._thumb_job and s.info is info and self.timeline.set_thumbnails(t))
        job.failed.connect(lambda msg: self.messages.show_message(f"The thumbnails could not be made: {msg}", "warning"))

    def _cancel_thumbnails(self) -> None:
        if self._thumb_job is not None and self._thumb_job.running:
            self._thumb_job.cancel()
        self._thumb_job = None

    def _emit_ready_if_current(self, root: Path):
        def emit() -> None:
            if self.session.project is not None and self.session.project.root == root:
                if self.frames is not None:
                    self.frames.start_proxy()  # now that the shot is up: see gui/frames.py
                self.shot_ready.emit()
        return emit

    def _close_frames(self, wait: bool = False) -> None:
        """Retire the frame source. Switching shots does not wait for a decode in progress (a
        long-GOP seek can take seconds); the old source is kept until its thread has ended."""
        if self.frames is not None:
            old, self.frames = self.frames, None
            self.viewer.set_source(None)
            if not old.close(wait=wait):
                self._retired_frames.append(old)
                old.finished.connect(lambda o=old: o in self._retired_frames and self._retired_frames.remove(o))
        if wait:
            for old in list(self._retired_frames):
                old.close(wait=True)
            self._retired_frames.clear()

    # -- jobs --

    def track(self, face: str | None = None) -> Job | None:
        """Track the shot (``face``: which face, as ``--face``; None keeps the project's choice)."""
        s = self.session
        if not s.is_open:
            self.messages.show_message("Open a video before tracking (File ▸ Open Video…).", "info", 6000)
            return None
        running = self.jobs.running("Tracking")
        if running:
            return running[0]
        project = s.project
        job = self.jobs.start("Tracking", lambda progress: track_shot(project, progress, face))
        s.set_tracking_note("tracking… (see the progress bar below)")
        job.cancelled.connect(lambda _m: s.tracking is None and s.set_tracking_note("tracking cancelled; finished chunks are kept"))
        job.failed.connect(lambda _m: s.tracking is None and s.set_tracking_note("tracking failed (see the message above)"))
        job.succeeded.connect(lambda result, root=project.root: self._on_tracking_result(root, result, loaded=False))
        job.failed.connect(lambda msg: self._job_error("Tracking failed", msg))
        job.cancelled.connect(lambda msg: self.statusBar().showMessage(f"Tracking {msg}", 8000))
        return job

    def _on_tracking_result(self, root: Path, result: TrackingData, loaded: bool) -> None:
        s = self.session
        if s.project is None or s.project.root != root:
            return  # another shot was opened meanwhile
        warning = s.apply_tracking(result)
        if warning:
            self.messages.show_message(warning, "warning")
        if result.tracking is None:
            return
        n = int(result.tracking.has_face.sum())
        if not loaded:
            self.statusBar().showMessage(f"Tracked: {n}/{result.tracking.n_frames} frames with a face", 8000)
        if n == 0:
            self.messages.show_message("No face was found in this shot; pick a shot that shows a face to camera.", "warning")
        elif not loaded and int(result.metrics.get("faces_seen", 1) or 1) > 1:
            face = result.metrics.get("face", "automatic")
            which = "the most prominent one" if face == "automatic" else face
            self.messages.show_message(f"{result.metrics['faces_seen']} faces in this shot; tracking {which}. To dub another: "
                                       "Shot ▸ Choose Face…, then click it.", "info", 12000)
        self.offer_recovery()
        self.tracking_loaded.emit()

    def job_device(self) -> str:
        """The torch device new jobs use (Settings: auto = what the probe found)."""
        return self.prefs.resolve_device(self.device_name)

    def apply_preferences(self, prefs: Preferences) -> None:
        self.prefs = prefs
        prefs.save(self.settings)
        if not self._autosave_fixed:
            self.autosave_timer.setInterval(prefs.autosave_s * 1000)
        self.adapt_panel.preview_every = prefs.preview_every
        self.audio.muted = not prefs.playback_audio
        if prefs.threads:
            import torch

            torch.set_num_threads(prefs.threads)

    def open_settings(self) -> None:
        dlg = SettingsDialog(self.prefs, self.device_name, self)
        if dlg.exec():
            self.apply_preferences(dlg.preferences())
            folder = dlg.projects_dir()
            if folder is not None:
                from dubstudio.core.paths import set_projects_dir

                try:
                    set_projects_dir(folder)  # the CLI and batch follow it too
                except DubStudioError as e:
                    self.messages.show_message(str(e), "error")

    def cancel_jobs(self) -> None:
        for j in self.jobs.running():
            j.cancel()

    def _job_error(self, what: str, msg: str) -> None:
        self.messages.show_message(f"{what}: {msg}", "error")
        self.job_failed.emit(msg)

    # -- saving, autosave, recovery --

    def save(self) -> bool:
        try:
            self.mask_tool.save()
            path = self.session.save()
        except Exception as e:  # a full disk or a permission problem: a message, no crash
            self.messages.show_message(f"Saving failed: {e}", "error")
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def autosave(self) -> None:
        try:
            path = self.session.autosave()
            path = self.mask_tool.autosave() or path
        except Exception as e:
            self.messages.show_message(f"Autosave failed: {e}", "warning")
            return
        if path:
            self.statusBar().showMessage("Autosaved", 2000)

    def offer_recovery(self) -> bool:
        s, masks = self.session, self.mask_tool.controller
        curves, mask = s.recovery_available(), masks.recovery_available()
        if not (curves or mask):
            return False
        auto = s.store.autosave_path if curves else masks.store.autosave_path
        when = datetime.fromtimestamp(auto.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        what = "curve edits" if curves and not mask else "mask edits" if mask and not curves else "curve and mask edits"
        text = (
            f"There are {what} for {s.info.path.name} that were autosaved at {when} but never "
            f"saved (DubStudio may have closed unexpectedly).\n\nRecover them? (No deletes the autosave.)"
        )
        if self.prompter.ask("recover", text, self) == "yes":
            ok = s.recover() if curves else False
            ok = masks.recover() or ok  # after the curves: their recovery resets the undo stack
            if ok:
                self.messages.show_message("Recovered the autosaved edits; save to keep them.", "info", 10000)
            return ok
        s.discard_autosave()
        masks.discard_autosave()
        return False

    def maybe_save(self, reason: str = "closing") -> bool:
        """True when it is fine to drop the current curves (saved, discarded or unchanged)."""
        s = self.session
        if not s.is_dirty:
            return True
        text = f"The curve edits of {s.info.path.name} are not saved. Save them before {reason}?"
        answer = self.prompter.ask("unsaved", text, self)
        if answer == "save":
            return self.save()
        if answer == "discard":
            s.discard_autosave()
            self.mask_tool.discard_autosave()
            return True
        return False

    # -- closing --

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._closing and not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop playback, cancel and wait for jobs, stop the decoder (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self.session.block_events()  # no view updates while Qt tears objects down
        self.settings.setValue("window/geometry", self.saveGeometry())
        for name in OVERLAYS:
            self.settings.setValue(f"overlays/{name}", self.viewer.overlay_enabled(name))
        self.settings.sync()
        self.autosave_timer.stop()
        self.playback.pause()
        self.jobs.shutdown()
        self.mask_tool.shutdown()
        self.correction.shutdown()
        self.compare.shutdown()
        self.dubbing.shutdown()
        self.device.stop()
        self._close_frames(wait=True)
