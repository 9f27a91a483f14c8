"""User mask edits in the face's UV space (issue 5): layers and edits (``layer``), the per-frame
UV mapping (``mapping``), the effective mask (``evaluate``) and project storage (``store``)."""

from dubstudio.masks.layer import ClearMask, Footprint, MaskEdit, MaskLayer, PaintStroke, SetGrow
from dubstudio.masks.store import MaskStore

__all__ = ["ClearMask", "Footprint", "MaskEdit", "MaskLayer", "MaskStore", "PaintStroke", "SetGrow"]
