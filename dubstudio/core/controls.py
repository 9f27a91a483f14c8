"""The named expression controls: what a curve, an edit, a driving model and the renderer agree on.

Each control is a displacement field of the face model (``tracking.face_model``) with an
amplitude in inter-ocular-distance units, so one person's curves can drive another's. The
schema lives in the core because everything above it (curves, edits, driving, rendering, the
editor) speaks it; the geometry behind each name stays in the face model.
"""

from __future__ import annotations

CONTROL_NAMES = (
    "jaw_open",
    "mouth_width",
    "lip_pucker",
    "upper_lip_raise",
    "lower_lip_depress",
    "lip_press",
    "smile",
)
JAW = 0  # index of jaw_open
# Soft range shown to editors; fits may exceed it slightly.
CONTROL_RANGE = {name: (-1.0, 1.0) for name in CONTROL_NAMES} | {"jaw_open": (-0.2, 1.0)}
