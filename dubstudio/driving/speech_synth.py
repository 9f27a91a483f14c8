"""Speech synthesised by espeak-ng with each phone's start time: the training data of the built-in
audio-to-expression model (``a2e_synthetic``), whose targets come from the phones.

espeak-ng's library is called through ctypes: its command-line tool can write the sound but not
when each phone starts, which the library reports as phoneme events (in IPA). The library ships
with the ``espeak-ng`` package the installer puts on the machine (the built-in sample clip speaks
with it too). One synthesis at a time (the library keeps global state): calls are serialised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass, field

import numpy as np

from dubstudio.core.errors import DubStudioError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA = 0x0001, 0x0002
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_POS_CHARACTER, _CHARS_AUTO = 1, 0
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER


class SpeechSynthError(DubStudioError):
    """espeak-ng is missing or refused a voice or a text."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT (speak_lib.h)
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class SynthLine:
    audio: np.ndarray  # mono float32
    sample_rate: int
    phones: list[tuple[float, str]]  # (start in seconds, IPA); "" marks a pause or a word boundary
    words: list[tuple[float, str]] = field(default_factory=list)  # (start in seconds, the word as written)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


class _Espeak:
    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as e:
            raise SpeechSynthError("espeak-ng's library is not installed; run `bash installer/install.sh` "
                                   "or `sudo apt-get install espeak-ng`.") from e
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA)
        if self.rate <= 0:
            raise SpeechSynthError(f"espeak-ng did not start (code {self.rate}); check that espeak-ng-data is installed.")
        self._chunks: list[np.ndarray] = []
        self._phones: list[tuple[float, str]] = []
        self._words: list[tuple[float, int, int]] = []  # (start, character position from 1, length)
        self._cb = _CALLBACK(self._on_audio)  # kept referenced: the library calls it later
        self.lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._phones.append((e.audio_position / 1000.0, e.id.string.decode("utf-8", "replace")))
            elif e.type == _EVENT_WORD:
                self._words.append((e.audio_position / 1000.0, e.text_position, e.length))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> SynthLine:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SpeechSynthError(f"espeak-ng has no voice {voice!r}; `espeak-ng --voices` lists them.")
        for p, v in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(p, int(v), 0)
        self._chunks, self._phones, self._words = [], [], []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_AUTO, None, None)
        self.lib.espeak_Synchronize()
        if err != 0:
            raise SpeechSynthError(f"espeak-ng could not speak the text (code {err}).")
        audio = (np.concatenate(self._chunks).astype(np.float32) / 32768.0) if self._chunks else np.zeros(0, np.float32)
        return SynthLine(audio, self.rate, list(self._phones), _words(text, self._words))


def _words(text: str, events: list[tuple[float, int, int]]) -> list[tuple[float, str]]:
    """Every word of ``text`` with its start: espeak's word events (characters counted from 1 in
    the text as given) where it reports one; a word it folds into its neighbour ("in the") or
    spells letter by letter (reported once per letter) is placed between the reported ones, by
    its position in the text."""
    import re

    tokens = [(m.start(), m.group()) for m in re.finditer(r"[^\W_](?:[\w'’-]*[^\W_])?", text)]
    if not tokens:
        return []
    reported: dict[int, float] = {}
    for t, pos, n in events:
        for i, (start, word) in enumerate(tokens):
            if n > 0 and start < pos - 1 + n and pos - 1 < start + len(word):
                reported.setdefault(i, t)
                break
    if not reported:
        return []
    known = sorted(reported)
    pos = np.array([tokens[i][0] for i in known], float)
    times = np.array([reported[i] for i in known])
    return [(float(reported[i]) if i in reported else float(np.interp(start, pos, times)), word)
            for i, (start, word) in enumerate(tokens)]


_lock = threading.Lock()
_engine: _Espeak | None = None


def synthesise(text: str, voice: str = "en", rate: int = 160, pitch: int = 50, pitch_range: int = 50) -> SynthLine:
    """``text`` spoken by espeak-ng's ``voice`` (a language, optionally "+variant": "de+f2"), at
    ``rate`` words a minute, with each phone's start time."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Espeak()
        return _engine.synth(text, voice, rate, pitch, pitch_range)
