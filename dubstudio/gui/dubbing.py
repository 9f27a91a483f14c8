"""Dubbing from the editor: Shot ▸ Dub from Audio… / Dub from Dubber Video…, the dubbed
audio's waveform under the original one, and Playback ▸ Play Dubbed Audio.

A dub runs as a job: ``app.dub.dub_job`` with a ``DubRequest``, the same request ``dubstudio dub``
builds, which computes the dub without saving. When it succeeds its ``SetDriven`` edit is pushed on
the session's undo stack on the GUI thread, so a dub is one undo step and never overwrites unsaved
edits (Save writes it), and the dubbed audio is recorded in ``project.json`` (``app.dub.record_dub``:
what export muxes). Its message is ``app.dub.describe``, as the CLI prints it.

Both dialogs ask where the new performance *starts in the shot* (seconds; negative skips its
beginning): ``dubstudio dub --offset`` and export's ``start_in_shot_s``, the same number.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dubstudio.core.edits import Edit
from dubstudio.core.errors import DubStudioError
from dubstudio.app.dub import DubRequest, describe, dub_job, dub_script, record_dub, script_visemes_edit
from dubstudio.app.words import NO_WORDS, aligned_words, reset_edit, retime_edit, word_at
from dubstudio.driving.dub import DubDrive
from dubstudio.gui.dub_words import DubWords
from dubstudio.gui.model.dub_audio import DubAudio, load_dub_audio, waveform_frames
from dubstudio.gui.model.session import ShotSession
from dubstudio.gui.services import EditorServices
from dubstudio.gui.jobs import Job


log = logging.getLogger(__name__)

AUDIO_FILTER = "Audio (*.wav *.flac *.mp3 *.m4a *.aac *.ogg *.opus);;Videos with audio (*.mp4 *.mov *.mkv);;All files (*)"
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mxf *.mkv *.avi *.m4v *.webm);;All files (*)"
DUB_PEN = pg.mkPen(QColor(250, 170, 80), width=1)
START_PEN = pg.mkPen(QColor(250, 170, 80, 160), width=1, style=Qt.PenStyle.DashLine)
JOB_NAME = "Dubbing"


class DubSourceDialog(QDialog):
    """File + where it starts in the shot, for one of the two dubbing sources.

    ``request()`` sets every ``DubRequest`` field a user chooses, as ``dubstudio dub`` does:
    ``audio``/``dubber`` (the file), ``offset`` (Starts at; From timecode is ``--offset tc``, resolved
    here so the number can be checked, and ``placement`` says how it was found), ``dubber_sync``
    (Dubber's own sync: auto | off | seconds), ``audio_model`` (auto | shot | a file), and ``text`` /
    ``language`` (Script: the line's words, optional, as ``--text`` / ``--language``). Not here:
    ``adapt_config``, the per-shot audio model's training settings, a test-only knob (the CLI has no
    flag for it either; the controller's ``audio_config``)."""

    def __init__(self, kind: str, settings: QSettings, parent: QWidget | None = None, shot_video: Path | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.settings = settings
        self.shot_video = shot_video
        audio = kind == "audio"
        self.setWindowTitle("Dub from Audio" if audio else "Dub from Dubber Video")
        self.path = QLineEdit(str(settings.value(f"dub/{kind}_path", "")))
        self.path.setPlaceholderText("the dubbed dialogue (wav, or any file with audio)" if audio else "video of the dubbing actor")
        self.path.setMinimumWidth(360)
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.start = QDoubleSpinBox()
        self.start.setRange(-86400.0, 86400.0)  # a reel's stem: the shot may begin far into it
        self.start.setDecimals(3)
        self.start.setSingleStep(0.04)
        self.start.setSuffix(" s")
        self.start.setValue(float(settings.value(f"dub/{kind}_start", 0.0)))
        what = "dialogue" if audio else "dubber's performance (and its audio)"
        help_ = QLabel(
            f"Starts at: seconds into the shot where the {what} begins; negative skips its first seconds "
            "(From timecode reads it from a dialogue stem's Broadcast WAV time reference or the file's timecode). "
            + ("The mouth is predicted from the audio: a generic model (the built-in one, or one your studio "
               "trained) is fitted to the actor on the shot's own audio the first time. Script (optional): the line's "
               "words, aligned to the audio; their phones shape half of the mouth and the words show on the timeline. "
               "Key lip contacts also puts the script's closures (M/B/P) and F/V on the curves as viseme keys to adjust."
               if audio else
               "The dubber's video is tracked once (cached in the project) and retargeted onto the actor.")
            + " The result is one undo step; the tracked curves are kept under it."
        )
        help_.setWordWrap(True)
        help_.setStyleSheet("color: #9aa0a6;")
        # a reel's dialogue stem (Broadcast WAV) or a timecoded clip placed by the shot's timecode
        self.by_timecode = QPushButton("From timecode")
        self.by_timecode.setToolTip("Place the file by timecode: the shot's start timecode against the file's Broadcast WAV "
                                    "time reference (a dialogue stem) or its own start timecode (dubstudio dub --offset tc).")
        self.by_timecode.clicked.connect(self._from_timecode)
        self.by_timecode.setEnabled(shot_video is not None)
        start_row = QHBoxLayout()
        start_row.setContentsMargins(0, 0, 0, 0)
        start_row.addWidget(self.start, 1)
        start_row.addWidget(self.by_timecode)
        self.placement = QLabel()
        self.placement.setWordWrap(True)
        self.placement.setStyleSheet("color: #9aa0a6;")
        self.placement.hide()
        self._placed = None  # the last From timecode result, while the file and start are unchanged
        self.path.textChanged.connect(self.placement.hide)  # it described the previous file
        form = QFormLayout()
        form.addRow("Audio file" if audio else "Dubber video", row)
        form.addRow("Starts at", start_row)
        form.addRow("", self.placement)
        # the dubber clip's own audio/picture offset (dubstudio dub --dubber-sync)
        self.sync_mode = QComboBox()
        for label, mode in (("Check: measure and report", "check"), ("Auto: measure and correct", "auto"), ("Off", "off"),
                            ("Set by hand", "seconds")):
            self.sync_mode.addItem(label, mode)
        self.sync_mode.setToolTip("Recordings with a separate sound recorder are often a few frames off. Check and Auto "
                                  "measure the offset between the dubber's mouth and their sound (with the audio model when "
                                  "one is trained); Check only reports it (a mouth that opens before its sound reads the same "
                                  "way), Auto shifts their motion when it is clear. The audio itself is never moved.")
        self.sync_s = QDoubleSpinBox()
        self.sync_s.setRange(-2.0, 2.0)  # what --dubber-sync accepts (app.dub.parse_sync)
        self.sync_s.setDecimals(3)
        self.sync_s.setSingleStep(0.04)
        self.sync_s.setSuffix(" s late")
        self.sync_mode.setCurrentIndex(max(0, self.sync_mode.findData(str(settings.value("dub/dubber_sync", "check")))))
        self.sync_s.setValue(float(settings.value("dub/dubber_sync_s", 0.0)))
        self.sync_s.setEnabled(self.sync_mode.currentData() == "seconds")
        self.sync_mode.currentIndexChanged.connect(lambda _i: self.sync_s.setEnabled(self.sync_mode.currentData() == "seconds"))
        # which model turns the dialogue into mouth motion (dubstudio dub --audio-model)
        self.model = QComboBox()
        self.model.addItem("Auto: the generic model (built-in or your studio's), or this shot's own where it fits the actor better", "auto")
        self.model.addItem("This shot's own (trained on the shot alone)", "shot")
        self.model.addItem("A generic model file…", "file")
        self.model_file = QLineEdit(str(settings.value("dub/audio_model_file", "")))
        self.model_file.setPlaceholderText("a checkpoint from dubstudio audio2expr train")
        self.model.setCurrentIndex(max(0, self.model.findData(str(settings.value("dub/audio_model", "auto")))))
        self.model_file.setEnabled(self.model.currentData() == "file")
        self.model.currentIndexChanged.connect(lambda _i: self.model_file.setEnabled(self.model.currentData() == "file"))
        if audio:
            model_row = QVBoxLayout()
            model_row.setContentsMargins(0, 0, 0, 0)
            model_row.addWidget(self.model)
            model_row.addWidget(self.model_file)
            form.addRow("Audio model", model_row)
        # the line's script (dubstudio dub --text / --language): not remembered, it belongs to one line
        self.script = QPlainTextEdit()
        self.script.setPlaceholderText("optional: the line's words, as written in the dubbing script")
        self.script.setFixedHeight(64)
        self.language = QLineEdit(str(settings.value("dub/language", "en")))
        self.language.setMaximumWidth(80)
        self.language.setToolTip("The script's language as an espeak-ng voice: en, en-us, de, fr, es, it, ja, cmn, …")
        self.key_visemes = QCheckBox("Key lip contacts (M/B/P, F/V) from the script")
        self.key_visemes.setToolTip("Also put the script's lip closures and lip-on-teeth contacts on the curves as viseme keys, "
                                    "which you can move or delete (dubstudio dub --key-visemes)")
        self.key_visemes.setChecked(settings.value("dub/key_visemes", False, type=bool))
        if audio:
            script_row = QHBoxLayout()
            script_row.setContentsMargins(0, 0, 0, 0)
            script_row.addWidget(self.script, 1)
            lang = QVBoxLayout()
            lang.addWidget(QLabel("Language"))
            lang.addWidget(self.language)
            lang.addStretch(1)
            script_row.addLayout(lang)
            form.addRow("Script", script_row)
            form.addRow("", self.key_visemes)
        if not audio:
            sync_row = QHBoxLayout()
            sync_row.setContentsMargins(0, 0, 0, 0)
            sync_row.addWidget(self.sync_mode, 1)
            sync_row.addWidget(self.sync_s)
            form.addRow("Dubber's own sync", sync_row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Dub")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        self.error = QLabel()
        self.error.setStyleSheet("color: #ff8a80;")
        self.error.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(help_)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    def _browse(self) -> None:
        start = self.path.text() or str(Path.home())
        flt = AUDIO_FILTER if self.kind == "audio" else VIDEO_FILTER
        path, _ = QFileDialog.getOpenFileName(self, self.windowTitle(), start, flt)
        if path:
            self.path.setText(path)

    def _from_timecode(self) -> None:
        """Set the start from timecode, and say how it was found (or why it cannot be)."""
        from dubstudio.driving.placement import place_by_timecode

        p = Path(self.path.text().strip()).expanduser()
        if not self.path.text().strip() or not p.is_file():
            self.error.setText("Choose an existing file first.")
            return
        try:
            placed = place_by_timecode(self.shot_video, p)
        except DubStudioError as e:
            self.error.setText(str(e))
            self.placement.hide()
            return
        self.error.setText("")
        self.start.setValue(placed.offset_s)
        self.placement.setText(placed.describe()[0].upper() + placed.describe()[1:] + ".")
        self.placement.show()
        self._placed = placed

    def placement_text(self) -> str | None:
        """How the start was found by timecode, when it still is the From timecode result."""
        p = self._placed
        if p is None or self.placement.isHidden() or abs(self.start.value() - p.offset_s) > 5e-4:
            return None
        return p.describe()

    def _accept(self) -> None:
        p = Path(self.path.text().strip()).expanduser()
        if not self.path.text().strip() or not p.is_file():
            self.error.setText("Choose an existing file.")
            return
        self.settings.setValue(f"dub/{self.kind}_path", str(p))
        self.settings.setValue(f"dub/{self.kind}_start", self.start.value())
        if self.kind != "audio":
            self.settings.setValue("dub/dubber_sync", self.sync_mode.currentData())
            self.settings.setValue("dub/dubber_sync_s", self.sync_s.value())
        elif self.model.currentData() == "file":
            f = Path(self.model_file.text().strip()).expanduser()
            if not self.model_file.text().strip() or not f.is_file():
                self.error.setText("Choose an existing audio model file, or Auto.")
                return
        if self.kind == "audio":
            if self.script_text() is not None and not self.language.text().strip():
                self.error.setText("Give the script's language (en, de, fr, …), or clear the script.")
                return
            self.settings.setValue("dub/audio_model", self.model.currentData())
            self.settings.setValue("dub/audio_model_file", self.model_file.text().strip())
            self.settings.setValue("dub/language", self.language.text().strip())
            self.settings.setValue("dub/key_visemes", self.key_visemes.isChecked())
        self.accept()

    def script_text(self) -> str | None:
        """The line's words (``DubRequest.text``), None when the field is empty."""
        text = self.script.toPlainText().strip()
        return text or None

    def values(self) -> tuple[Path, float]:
        return Path(self.path.text().strip()).expanduser(), float(self.start.value())

    def sync(self) -> str | float:
        """The dubber clip's audio/picture offset: "check", "auto", "off" or seconds (> 0: their audio is late)."""
        mode = self.sync_mode.currentData()
        return float(self.sync_s.value()) if mode == "seconds" else mode

    def audio_model(self) -> str:
        """auto | shot | a checkpoint file (``DubRequest.audio_model``)."""
        kind = self.model.currentData()
        return str(Path(self.model_file.text().strip()).expanduser()) if kind == "file" else kind

    def request(self, project: Path) -> DubRequest:
        """What this dialog asks for, as the request ``dubstudio dub`` makes."""
        path, start = self.values()
        if self.kind == "audio":
            return DubRequest(project, audio=path, offset=start, audio_model=self.audio_model(), placement=self.placement_text(),
                              text=self.script_text(), language=self.language.text().strip() or "en",
                              key_visemes=self.key_visemes.isChecked() and self.script_text() is not None)
        return DubRequest(project, dubber=path, offset=start, dubber_sync=self.sync(), placement=self.placement_text())


class DubWaveRow:
    """The dubbed audio's waveform in the timeline's row under the original one, placed where
    it plays in the shot (a dashed line marks its first sample)."""

    def __init__(self, timeline, controller: DubController) -> None:
        self.timeline, self.controller = timeline, controller
        self.plot = p = timeline.dub_wave
        p.getAxis("left").setTicks([[(0.0, "dubbed")], []])
        self.item = pg.PlotDataItem(pen=DUB_PEN, connect="pairs")
        self.start_line = pg.InfiniteLine(angle=90, movable=False, pen=START_PEN)
        self.note = pg.TextItem("", color=(200, 170, 120), anchor=(0, 0.5))
        for it in (self.item, self.start_line, self.note):
            p.addItem(it)
        self.line = DubWords(p, self.note, controller.retime_word, controller.put_words_back,
                             lambda text: controller.services.status(text, 6000))
        timeline.ruler.getViewBox().sigXRangeChanged.connect(lambda *_: self.update())
        controller.dub_audio_changed.connect(self.update)
        controller.session.words_changed.connect(self.update)
        controller.session.tracking_changed.connect(self.update)  # the curves (and their words) replaced

    @property
    def words(self) -> list:
        """The word items (shown or pooled)."""
        return self.line.items

    @property
    def visible(self) -> bool:
        return self.plot.isVisible()

    def update(self) -> None:
        a, info = self.controller.dub_audio, self.controller.session.info
        show = a is not None and info is not None
        self.plot.setVisible(show)
        self.timeline.wave.getAxis("left").setTicks([[(0.0, "original" if show else "audio")], []])
        if not show:
            self.item.setData([], [])
            self.line.show((), 0.0, 0.0, 1.0, 0)
            return
        fps = float(info.fps)
        (x0, x1), _ = self.timeline.ruler.getViewBox().viewRange()
        self.start_line.setValue(a.start_in_shot_s * fps - 0.5)
        self.line.show(self.controller.line_words(), x0, x1, (x1 - x0) / max(1, self.plot.getViewBox().width()), info.n_frames)
        if a.waveform is None:
            self.item.setData([], [])
            self.note.setText(a.note)
            self.note.setPos(x0 + 1, 0)
            return
        self.note.setText("")
        px = max(200, int(self.plot.getViewBox().width()))
        x, lo, hi = waveform_frames(a.waveform, fps, a.wave_at, x0, x1, px)
        xs = np.repeat(x, 2)
        ys = np.empty(2 * len(x))
        ys[0::2], ys[1::2] = lo, np.maximum(hi, lo + 1e-3)
        self.item.setData(xs, ys)


class DubController(QObject):
    """Dubbing actions, the dub job, the dubbed audio (timeline row + playback) of one window."""

    dubbed = Signal(object)  # DubDrive: pushed on the undo stack and recorded
    dub_audio_changed = Signal()  # the dubbed audio was loaded (or cleared)

    def __init__(self, session: ShotSession, services: EditorServices, timeline, panel, audio, playback, shot_ready,
                 parent: QObject | None = None) -> None:
        """``timeline``: where the dubbed waveform's row goes; ``panel``: the project panel the
        Dub section is added to; ``audio``/``playback``: the window's sound output and transport;
        ``shot_ready``: the signal that an opened shot's tracking is loaded."""
        super().__init__(parent)
        self.services = services
        self.session = s = session
        self.audio, self.playback = audio, playback
        self.job: Job | None = None
        self.audio_config = None  # AdaptConfig for audio dubs (None: the defaults); tests make it tiny
        self.dub_audio: DubAudio | None = None
        self.want_sound: bool | None = None  # load dubbed samples for playback (None: when a device exists)
        self._original: tuple[np.ndarray, int] | None = None
        self._sound_key: object = None
        self._audio_job: Job | None = None
        self._build_actions()
        self._build_panel(panel)
        self.row = DubWaveRow(timeline, self)
        s.tracking_changed.connect(self._update_enabled)
        s.shot_opened.connect(self._update_enabled)
        s.curves_changed.connect(lambda *_: self._update_status())  # a dub undone or reset
        s.words_changed.connect(self._update_word_actions)
        s.shot_closed.connect(self._on_closed)
        shot_ready.connect(self.load_dub_audio)
        services.jobs.job_finished.connect(lambda _j: self._update_enabled())
        self._update_enabled()

    # -- actions, menus, panel --

    def _build_actions(self) -> None:
        sv = self.services

        def act(key: str, text: str, slot, shortcut: str | None = None, checkable: bool = False, tip: str = "") -> QAction:
            return sv.new_action(key, text, slot, QKeySequence(shortcut) if shortcut else None, checkable, tip)

        self.audio_action = act("dub_audio", "Dub from &Audio…", lambda: self.choose("audio"), "Ctrl+Shift+A",
                                tip="Drive the mouth from the dubbed dialogue (background job; one undo step)")
        self.dubber_action = act("dub_dubber", "Dub from Dubber &Video…", lambda: self.choose("dubber"), "Ctrl+Shift+D",
                                 tip="Track a dubbing actor's video and retarget their mouth onto the actor (one undo step)")
        self.play_action = act("play_dubbed", "Play &Dubbed Audio", self._on_play_toggled, "Ctrl+Shift+P", checkable=True,
                               tip="Playback plays the dubbed audio (checked) or the shot's original audio")
        self.play_action.setEnabled(False)
        self.visemes_action = act("dub_key_visemes", "&Key the Script's Visemes", lambda: self.key_script_visemes(),
                                  tip="Key the dub script's lip contacts (M/B/P closures, F/V) as viseme keys you can move or "
                                      "delete (one undo step)")
        self.visemes_action.setEnabled(False)
        self.word_earlier_action = act("dub_word_earlier", "Move the Word at the Playhead a Frame &Earlier",
                                       lambda: self.nudge_word(-1), "Alt+,",
                                       tip="Re-time the dubbed line's word being said at the playhead one frame earlier; "
                                           "the mouth between its neighbours follows and the playhead goes with it")
        self.word_later_action = act("dub_word_later", "Move the Word at the Playhead a Frame &Later",
                                     lambda: self.nudge_word(1), "Alt+.",
                                     tip="Re-time the dubbed line's word being said at the playhead one frame later; "
                                         "the mouth between its neighbours follows and the playhead goes with it")
        words = (self.word_earlier_action, self.word_later_action)
        for a in words:
            a.setEnabled(False)
        shot = sv.menu("&Shot") if sv.has_menu("Shot") else None
        if shot is not None:  # Track Face | Dub from Audio…, Dub from Dubber Video… | Cancel Jobs
            acts = shot.actions()
            before = acts[1] if len(acts) > 1 else None
            if before is None:
                shot.addSeparator()
                shot.addActions([self.audio_action, self.dubber_action, self.visemes_action, *words])
            else:
                shot.insertSeparator(before)
                shot.insertActions(before, [self.audio_action, self.dubber_action, self.visemes_action, *words])
                shot.insertSeparator(before)
        playback = sv.menu("&Playback") if sv.has_menu("Playback") else None
        if playback is not None:
            playback.addSeparator()
            playback.addAction(self.play_action)

    def _build_panel(self, panel) -> None:
        box = QGroupBox("Dub")
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.audio_button = QPushButton("From Audio…")
        self.dubber_button = QPushButton("From Dubber Video…")
        for b, a in ((self.audio_button, self.audio_action), (self.dubber_button, self.dubber_action)):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(a.toolTip())
            b.clicked.connect(a.trigger)
            row.addWidget(b)
        self.status = QLabel("—")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addLayout(row)
        lay.addWidget(self.status)
        self.box = box
        panel.add_section(box)

    def _running(self) -> bool:
        return self.job is not None and self.job.running

    def _update_enabled(self, *_: object) -> None:
        s = self.session
        ok = s.is_tracked and not self._running()
        for a in (self.audio_action, self.dubber_action):
            a.setEnabled(ok)
        self.audio_button.setEnabled(ok)
        self.dubber_button.setEnabled(ok)
        self._update_status()

    def _driven_sources(self) -> str | None:
        """'speech_de.wav' when the editor's curves carry a driven layer (from audio or a dubber)."""
        from dubstudio.core.controls import CONTROL_NAMES

        c = self.session.curves
        if c is None:
            return None
        names = {src.split(":", 1)[-1] for n in CONTROL_NAMES if c.has_driven(n) and (src := c.driven_source(n))}
        return ", ".join(sorted(names)) or None

    def _update_status(self) -> None:
        s = self.session
        if not s.is_open:
            text = "—"
        elif self._running():
            text = "dubbing… (see the progress bar below)"
        elif not s.is_tracked:
            text = "track the shot first"
        else:
            from dubstudio.shot.dub_audio import recorded_dub_audio

            rec = recorded_dub_audio(s.project)
            driven = self._driven_sources()
            if rec is None and driven:
                # driven outside the editor and `dubstudio dub` (the core API, a script): say so, since
                # export cannot know which dialogue goes with this mouth
                text = f"Mouth driven from {driven}; its dialogue is not recorded: choose it when exporting"
            elif rec is None:
                text = "not dubbed yet"
            else:
                start = float(rec.get("start_in_shot_s", 0.0))
                what = "Dialogue" if rec.get("kind", "audio") == "audio" else "Dubber video"
                text = f"{what} {Path(rec.get('source', '?')).name}, starts at {start:+.2f}\u00a0s"
                if rec.get("placement"):
                    text += " (placed by timecode)"
                if not rec.get("path"):
                    text += f"; {rec.get('note', 'no audio track')}"
        self.status.setText(text)
        self._update_visemes_action()
        self._update_word_actions()

    def _update_visemes_action(self) -> None:
        from dubstudio.shot.dub_audio import recorded_dub_audio

        s = self.session
        rec = recorded_dub_audio(s.project) if s.is_tracked and not self._running() else None
        self.visemes_action.setEnabled(bool(rec and (rec.get("script") or {}).get("visemes")))

    def _update_word_actions(self) -> None:
        has = bool(self.line_words()) and not self._running()
        for a in (self.word_earlier_action, self.word_later_action):
            a.setEnabled(has)

    # -- dubbing --

    def choose(self, kind: str) -> Job | None:
        """Ask for the file and the start (a dialog), then dub."""
        if not self.session.is_tracked:
            self.services.messages.show_message("Track the shot before dubbing it (Shot ▸ Track Face).", "info", 6000)
            return None
        dlg = DubSourceDialog(kind, self.services.settings, self.services.parent, shot_video=self.session.project.video_path)
        if not dlg.exec():
            return None
        return self.dub(dlg.request(self.session.project.root))

    def dub_from_audio(self, path: str | Path, start_s: float = 0.0, placement: str | None = None,
                       audio_model: str = "auto", text: str | None = None, language: str = "en") -> Job | None:
        """Drive the mouth from dubbed audio that starts ``start_s`` seconds into the shot
        (``placement``: how that start was found by timecode, recorded with the audio; ``text``:
        the line's script in ``language``)."""
        if self.session.project is None:
            return self._start(None)
        return self.dub(DubRequest(self.session.project.root, audio=Path(path), offset=float(start_s), audio_model=audio_model,
                                   placement=placement, adapt_config=self.audio_config, text=text, language=language))

    def dub_from_dubber(self, path: str | Path, start_s: float = 0.0, sync: str | float = "check",
                        placement: str | None = None) -> Job | None:
        """Drive the mouth from a dubbing actor's video that starts ``start_s`` s into the shot
        (``sync``: the clip's own audio/picture offset, as ``dubstudio dub --dubber-sync``)."""
        if self.session.project is None:
            return self._start(None)
        return self.dub(DubRequest(self.session.project.root, dubber=Path(path), offset=float(start_s), dubber_sync=sync,
                                   placement=placement))

    def dub(self, request: DubRequest) -> Job | None:
        """Run the dub job for ``request``; its edit lands on the undo stack when it succeeds."""
        if request.audio is not None and request.adapt_config is None and self.audio_config is not None:
            from dataclasses import replace

            request = replace(request, adapt_config=self.audio_config)
        self._last_request = request
        return self._start(request)

    def _start(self, request: DubRequest | None) -> Job | None:
        s, sv = self.session, self.services
        if request is None or not s.is_tracked:
            sv.messages.show_message("Track the shot before dubbing it (Shot ▸ Track Face).", "info", 6000)
            return None
        if self._running():
            sv.messages.show_message("A dub is already running; wait for it or cancel it.", "info", 6000)
            return None
        root = s.project.root
        job = sv.jobs.start(JOB_NAME, lambda progress: dub_job(request, progress))
        self.job = job
        job.succeeded.connect(lambda drive: self._on_drive(root, drive, request))
        job.failed.connect(lambda msg: sv.report_error("Dubbing failed", msg))
        job.cancelled.connect(lambda _m: sv.status("Dubbing cancelled; nothing changed", 8000))
        job.finished.connect(self._update_enabled)
        self._update_enabled()
        return job

    def _on_drive(self, root: Path, drive: DubDrive, request: DubRequest | None = None) -> None:
        s, sv = self.session, self.services
        if s.project is None or s.project.root != root or s.curves is None:
            sv.messages.show_message("The dub finished after its shot was closed; nothing was changed.", "warning", 8000)
            return
        if drive.n_frames != s.curves.n_frames:
            sv.messages.show_message(f"The dub covers {drive.n_frames} frames but the shot has {s.curves.n_frames}; track the shot again.", "error")
            return
        try:
            s.push(drive.edit)
        except (ValueError, IndexError, RuntimeError) as e:
            sv.messages.show_message(f"The dub could not be applied: {e}", "error")
            return
        try:
            record_dub(s.project, drive)
        except (DubStudioError, OSError) as e:
            sv.messages.show_message(f"The dub is applied, but project.json could not record its audio ({e}); "
                                      f"choose the audio file in File ▸ Export….", "warning")
        else:
            sv.messages.show_message(summary(drive, getattr(self, "_last_request", None)), "info", 12000)
        if request is not None and request.key_visemes and dub_script(drive).get("visemes"):
            self.key_script_visemes(dub_script(drive))  # its own undo step, after the dub's
        self._update_status()
        self.load_dub_audio()
        self.dubbed.emit(drive)

    def key_script_visemes(self, script: dict | None = None) -> Edit | None:
        """The dub script's lip contacts as viseme keys on the curves (one undo step); ``script``
        defaults to the recorded dub audio's."""
        from dubstudio.shot.dub_audio import recorded_dub_audio

        s, sv = self.session, self.services
        if s.curves is None or s.info is None:
            return None
        if script is None:
            script = (recorded_dub_audio(s.project) or {}).get("script")
        try:
            edit = s.push(script_visemes_edit(s.curves, script, float(s.info.fps)))
        except DubStudioError as e:
            sv.messages.show_message(str(e), "info", 8000)
            return None
        n = len(script.get("visemes", []))
        sv.status(f"Keyed {n} lip contact{'' if n == 1 else 's'} from the script; move or delete them like any key "
                  f"(undo removes them all)", 10000)
        return edit

    def line_words(self) -> tuple[tuple[float, str], ...]:
        """The dubbed line's words as the row shows them ((frame, word), ...; () when none)."""
        return self.session.curves.words if self.session.curves is not None else ()

    def retime_word(self, index: int, frame: int) -> Edit | None:
        """Move word ``index`` of the dubbed line to start on ``frame``: the mouth between its
        neighbours' starts follows (one undo step)."""
        words = self.line_words()
        edit = self._push_words(lambda: retime_edit(self.session.curves, words, index, float(frame)))
        if edit is None:
            self.row.update()  # the word back where it was
            return None
        d = frame - words[index][0]
        self.services.status(f"Re-timed “{words[index][1]}” {abs(d):.0f} frame{'' if round(abs(d)) == 1 else 's'} "
                             f"{'later' if d > 0 else 'earlier'}; the mouth between its neighbours follows (Ctrl+Z undoes)", 10000)
        return edit

    def nudge_word(self, frames: int) -> Edit | None:
        """Move the word being said at the playhead ``frames`` earlier (< 0) or later; the playhead
        follows its start, so the next press moves the same word."""
        words, playhead = self.line_words(), self.session.playhead
        if not words:
            self.services.messages.show_message(NO_WORDS, "info", 6000)
            return None
        i = word_at(words, playhead.frame)
        if i is None:
            self.services.messages.show_message(f"The playhead is before the line's first word (“{words[0][1]}”, frame "
                                                f"{words[0][0]:.0f}): put it on the word to move.", "info", 6000)
            return None
        to = int(round(words[i][0])) + int(frames)
        edit = self.retime_word(i, to)
        if edit is not None:
            playhead.set_frame(to)
        return edit

    def put_words_back(self, index: int | None = None) -> Edit | None:
        """Word ``index`` (None: every word) back where the aligner placed it (one undo step)."""
        s, words = self.session, self.line_words()
        edit = self._push_words(lambda: reset_edit(s.curves, words, aligned_words(words, self.dub_audio.words, float(s.info.fps)), index))
        if edit is not None:
            what = "All words are back where the aligner placed them" if index is None else \
                f"“{words[index][1]}” is back where the aligner placed it"
            self.services.status(f"{what}; the mouth followed (Ctrl+Z undoes)", 10000)
        return edit

    def _push_words(self, make) -> Edit | None:
        """Push the word edit ``make()`` builds; its refusal is a message, nothing pushed."""
        if not self.line_words():
            return None
        try:
            return self.session.push(make())
        except (DubStudioError, ValueError, IndexError) as e:
            self.services.messages.show_message(str(e), "info", 8000)
            return None

    # -- the dubbed audio --

    def load_dub_audio(self) -> Job | None:
        """(Re)load the recorded dubbed audio in a job: waveform, and sound for playback."""
        from dubstudio.shot.dub_audio import recorded_dub_audio

        s = self.session
        rec = recorded_dub_audio(s.project) if s.project is not None else None
        self._update_status()
        if rec is None:
            self._set_dub_audio(None)
            return None
        if self._audio_job is not None and self._audio_job.running:
            self._audio_job.cancel()
        root = s.project.root
        sound = self.audio.available if self.want_sound is None else self.want_sound
        shot_s = s.info.duration_s if s.info is not None else None
        job = self.services.jobs.start("Dubbed audio", lambda progress: load_dub_audio(rec, sound, progress, shot_s))
        self._audio_job = job
        job.succeeded.connect(lambda a, j=job: j is self._audio_job and s.project is not None and s.project.root == root and self._set_dub_audio(a))
        job.failed.connect(lambda msg: self.services.messages.show_message(f"The dubbed audio could not be read: {msg}", "warning"))
        return job

    def _set_dub_audio(self, audio: DubAudio | None) -> None:
        had = self.dub_audio is not None and self.dub_audio.waveform is not None
        self.dub_audio = audio
        playable = audio is not None and audio.waveform is not None
        self.play_action.setEnabled(playable)
        if playable and not had:
            self.play_action.setChecked(True)  # a new dub: hear it
        self._apply_sound()
        self.dub_audio_changed.emit()

    def _on_closed(self) -> None:
        if self._audio_job is not None and self._audio_job.running:
            self._audio_job.cancel()
        self._audio_job = None
        self._original = None
        self._set_dub_audio(None)
        self._update_enabled()

    def set_original_sound(self, samples: np.ndarray | None, rate: int) -> None:
        """The shot's own sound for playback (the window's Sound job)."""
        self._original = None if samples is None else (samples, int(rate))
        self._apply_sound()

    @property
    def sound_source(self) -> str:
        """What playback plays: 'dubbed', 'original' or 'none'."""
        a = self.dub_audio
        if self.play_action.isChecked() and self.play_action.isEnabled() and a is not None and a.sound is not None:
            return "dubbed"
        return "original" if self._original is not None else "none"

    def _on_play_toggled(self, _on: bool = False) -> None:
        self._apply_sound()
        what = "dubbed" if self.play_action.isChecked() else "original"
        self.services.status(f"Playback plays the {what} audio", 4000)

    def _apply_sound(self) -> None:
        src = self.sound_source
        if src == "dubbed":
            samples, rate = self.dub_audio.sound, 48_000
        elif src == "original":
            samples, rate = self._original
        else:
            samples, rate = None, 0
        key = (src, id(samples))
        if key == self._sound_key:
            return
        self._sound_key = key
        audio, pb = self.audio, self.playback
        audio.set_audio(samples, rate)
        if pb.playing and pb.speed == 1.0 and samples is not None:
            audio.play_from(self.session.playhead.seconds())

    def shutdown(self) -> None:
        if self._audio_job is not None and self._audio_job.running:
            self._audio_job.cancel()


def summary(drive: DubDrive, request: DubRequest | None = None) -> str:
    """The dub's description (``app.dub.describe``, as the CLI prints it) as one message."""
    lines = describe(drive, request.audio_model if request is not None else "auto")
    text = "; ".join(lines)
    return text[0].upper() + text[1:] + ". Undo (Ctrl+Z) puts the previous mouth back."
