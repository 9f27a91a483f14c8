"""The dubbed line's words, and re-timing one: the job the editor's drag and `dubstudio words` share.

A dub with its script puts the line's words on the curves, each where the recording says it
(``driving.script_align``); the editor's dubbed row shows them. Moving a word re-times the mouth
under it (``core.retime.RetimeWord``: the curves between its neighbours' starts are warped, one
undo step). The words the aligner placed stay recorded with the dub audio
(``dub_audio.script.words``, in seconds): "put back" returns to them. Projects saved before the
curves kept the words get those when their curves are loaded (``shot.curves.load_curves``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dubstudio.core.curves import ControlCurves
from dubstudio.core.errors import DubStudioError
from dubstudio.core.retime import RetimeLine, RetimeWord, in_frames, inside, word_limits
from dubstudio.project.store import Project
from dubstudio.shot import Shot
from dubstudio.shot.curve_store import CurveStore
from dubstudio.shot.curves import load_curves
from dubstudio.shot.dub_audio import recorded_words

Words = tuple[tuple[float, str], ...]
NO_WORDS = "this shot's dub has no words: dub the line with its script (--text) first."


def find_word(words: Words, which: str | int) -> int:
    """The index of a word given as its number in the line (1 = the first) or as its text; a word
    said twice is "text#2" for the second time."""
    if not words:
        raise DubStudioError(NO_WORDS)
    s = str(which).strip()
    if s.isdigit():
        k = int(s)
        if not 1 <= k <= len(words):
            raise DubStudioError(f"the line has {len(words)} words; give a number from 1 to {len(words)}.")
        return k - 1
    text, _, nth = s.partition("#")
    hits = [i for i, (_, w) in enumerate(words) if w.casefold() == text.casefold()]
    if not hits:
        raise DubStudioError(f"“{text}” is not one of the line's words ({' '.join(w for _, w in words)}).")
    if not nth:
        if len(hits) > 1:
            raise DubStudioError(f"“{text}” is said {len(hits)} times (words {', '.join(str(i + 1) for i in hits)}): "
                                 f"give its number, or “{text}#2” for the second.")
        return hits[0]
    if not nth.isdigit() or not 1 <= int(nth) <= len(hits):
        raise DubStudioError(f"“{text}” is said {len(hits)} time{'s' if len(hits) > 1 else ''}; “{s}” is not one of them.")
    return hits[int(nth) - 1]


def word_at(words: Words, frame: float) -> int | None:
    """The index of the word being said on ``frame``: the last one starting on or before it (None:
    the frame is before the line's first word)."""
    starts = [round(f) for f, _ in words]
    i = int(np.searchsorted(starts, round(frame), side="right")) - 1
    return i if i >= 0 else None


def retime_edit(curves: ControlCurves, words: Words, index: int, to_frame: float) -> RetimeWord:
    """The edit that moves word ``index`` to start on ``to_frame``, checked against its neighbours
    with a message in the editor's terms."""
    if not inside(words, index, curves.n_frames):
        raise DubStudioError(f"“{words[index][1]}” is spoken outside the shot (frame {words[index][0]:.0f} of "
                             f"0-{curves.n_frames - 1}): only the words the shot shows can move.")
    lo, hi = word_limits(words, index, curves.n_frames)
    if hi < lo:
        raise DubStudioError(f"“{words[index][1]}” has no room to move: its neighbours start within 2 frames of each "
                             f"other; move one of them first.")
    if not lo <= to_frame <= hi:
        raise DubStudioError(f"“{words[index][1]}” can start between frames {lo:.0f} and {hi:.0f} (its neighbours' "
                             f"starts); frame {to_frame:.0f} is outside: move its neighbour first.")
    return RetimeWord(words, index, to_frame)


def aligned_words(words: Words, recorded, fps: float) -> Words:
    """Where the aligner placed the line's ``words`` (``recorded`` with the dub audio, (seconds,
    word), ...), as frames."""
    aligned = in_frames(recorded, fps)
    if [w for _, w in aligned] != [w for _, w in words]:
        raise DubStudioError("the words recorded with the dub audio are not this line's (the dub was replaced or undone): "
                             "there is no aligned timing to go back to.")
    return aligned


def reset_edit(curves: ControlCurves, words: Words, aligned: Words, index: int | None = None) -> RetimeLine:
    """Word ``index`` (None: every word) back where the aligner placed it; the mouth follows."""
    if index is not None:
        edit = retime_edit(curves, words, index, aligned[index][0])
        edit.text = f"Put “{words[index][1]}” back"
        return edit
    if all(abs(a[0] - b[0]) < 1e-6 for a, b in zip(words, aligned)):
        raise DubStudioError("the words are already where the aligner placed them.")
    return RetimeLine(words, aligned, "Put the words back where the aligner placed them")


@dataclass
class Retimed:
    word: str
    number: int  # 1 = the line's first word
    from_frame: float
    to_frame: float
    words: Words  # the line after the move

    def describe(self) -> str:
        d = self.to_frame - self.from_frame
        return (f"moved “{self.word}” (word {self.number}) from frame {self.from_frame:.1f} to {self.to_frame:.1f} "
                f"({abs(d):.1f} frames {'later' if d > 0 else 'earlier'}); the mouth between its neighbours' starts follows")

    def to_json(self) -> dict:
        return {"word": self.word, "number": self.number, "from_frame": round(self.from_frame, 3),
                "to_frame": round(self.to_frame, 3), "words": [[round(f, 3), w] for f, w in self.words]}


def shot_words(project: Project) -> Words:
    shot = Shot(project)
    return load_curves(project, shot.tracking).words


def retime_word(project: Path | Project, which: str | int | None, to_frame: float | None = None, by: float | None = None,
                back: bool = False) -> Retimed | Words:
    """Move a word of the shot's dubbed line (``find_word``) to start on ``to_frame``, or ``by``
    frames, or ``back`` where the aligner placed it, and save the curves (under the project's lock:
    another writer waits). ``which`` None with ``back``: every word back (returns the line)."""
    if sum((to_frame is not None, by is not None, back)) != 1:
        raise DubStudioError("say where the word goes: a frame (--to), a number of frames (--by) or back (--back).")
    project = project if isinstance(project, Project) else Project.open(project)
    with project.locked():
        shot = Shot(project)
        curves = load_curves(project, shot.tracking)
        fps = float(shot.tracking.fps)
        recorded = recorded_words(project)
        words = curves.words
        if which is None:
            if not words:
                raise DubStudioError(NO_WORDS)
            reset_edit(curves, words, aligned_words(words, recorded, fps)).apply(curves)
            CurveStore(project).save(curves)
            return curves.words
        i = find_word(words, which)
        start = words[i][0]
        if back:
            edit = reset_edit(curves, words, aligned_words(words, recorded, fps), i)
        else:
            edit = retime_edit(curves, words, i, float(to_frame) if to_frame is not None else start + float(by))
        edit.apply(curves)
        CurveStore(project).save(curves)
    return Retimed(words[i][1], i + 1, start, curves.words[i][0], curves.words)
