"""Which audio the driven mouth belongs to, recorded in ``project.json`` (key ``dub_audio``).

Every driving path records it when its edit lands (the CLI's dub, the editor's dub after the
edit is pushed), so export muxes that audio in sync by default: the audio file (or the dubber
video's own audio track), its fingerprint, the offset as given, and ``start_in_shot_s``, the shot
time at which the audio's first sample plays (the one number export needs, whatever sign
convention the driving path uses for its offset).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from dubstudio.io.audio import has_audio
from dubstudio.project.store import Project, cached_fingerprint

DUB_AUDIO_KEY = "dub_audio"


def record_dub_audio(project: Project, source: Path, kind: str, offset_s: float, start_in_shot_s: float,
                     placement: str | None = None, script: dict | None = None) -> dict:
    """Remember in project.json which audio the driven mouth belongs to (atomic save).

    ``kind``: "audio" (a dialogue file) or "dubber" (a dubbing actor's video: its own audio
    track, when it has one; ``path`` is None otherwise). ``placement``: how the start was found
    by timecode (``driving.placement``); such a file is usually a reel's stem that runs on past
    the shot, so export's default length policy for it is fit rather than pad. ``script``: the
    line's script as aligned to it ({"language", "words": [[shot seconds, word], ...], "visemes":
    [[shot seconds, viseme], ...]}): the editor's timeline shows the words, and the visemes can be
    keyed on the curves (``core.visemes.visemes_edit``)."""
    source = Path(source).expanduser().resolve()
    has = has_audio(source)
    rec = {
        "kind": kind,
        "source": str(source),
        "path": str(source) if has else None,
        "fingerprint": cached_fingerprint(source) if has else None,
        "offset_s": float(offset_s),
        "start_in_shot_s": float(start_in_shot_s),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if not has:
        rec["note"] = f"{source.name} has no audio track"
    if placement:
        rec["placement"] = placement
    if script:
        rec["script"] = {"language": str(script.get("language", "")),
                         "words": [[round(float(t), 3), str(w)] for t, w in script.get("words", [])],
                         "visemes": [[round(float(t), 3), str(v)] for t, v in script.get("visemes", [])]}
    project.update(lambda data: data.__setitem__(DUB_AUDIO_KEY, rec))  # never clobber what another step saved meanwhile
    return rec


def recorded_dub_audio(project: Project) -> dict | None:
    """What ``record_dub_audio`` stored, or None (never dubbed, or dubbed by an older version)."""
    project.refresh()
    rec = project.data.get(DUB_AUDIO_KEY)
    return dict(rec) if isinstance(rec, dict) else None


def recorded_words(project: Project) -> list:
    """The line's words where the aligner placed them, recorded with the dub audio ((seconds,
    word), ...; [] when the dub had no script)."""
    return ((recorded_dub_audio(project) or {}).get("script") or {}).get("words") or []
