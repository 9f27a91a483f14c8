"""The shot's painted mask edits, as compositing uses them."""

from __future__ import annotations

from dubstudio.masks.layer import MaskLayer
from dubstudio.masks.store import MaskStore
from dubstudio.project.store import Project


def load_user_mask(project: Project) -> MaskLayer | None:
    """The project's saved mask edits, or None when there are none (the automatic mask is used).
    Raises ``ProjectError`` with what to do when they are damaged."""
    store = MaskStore(project)
    if not store.exists():
        return None
    layer = store.load()
    return None if layer.is_empty else layer
