"""Frame ranges as users type them: 'A:B' with Python's slice rules (the CLI, the editor, shot lists)."""

from __future__ import annotations

from dubstudio.core.errors import DubStudioError


def parse_frames(spec: str | None, n_frames: int) -> range:
    """'A:B' (Python slice rules: 'A:', ':B', negative counts from the end) -> range, checked.
    None, '' or ':' select the whole shot."""
    if spec is None or str(spec).strip() in ("", ":"):
        return range(n_frames)
    parts = str(spec).split(":")
    if len(parts) != 2:
        raise DubStudioError(f"frame range {spec!r} is not A:B; e.g. --frames 0:100 or --frames 150: .")
    try:
        a = int(parts[0]) if parts[0].strip() else None
        b = int(parts[1]) if parts[1].strip() else None
    except ValueError as e:
        raise DubStudioError(f"frame range {spec!r} is not A:B with whole numbers; e.g. 0:100.") from e
    r = range(n_frames)[slice(a, b)]
    if len(r) == 0:
        raise DubStudioError(f"frame range {spec!r} is empty for a shot of {n_frames} frames; pick frames inside 0:{n_frames}.")
    return r
