"""The user's mask edits as images in the face's UV space, and the undoable edits on them.

A ``MaskLayer`` holds a stack of UV images over the template atlas (``template.uv``: u right,
v down, both in [0, 1]; texel (row y, column x) has its centre at ((x + 0.5) / S, (y + 0.5) / S)).
Each ``UVLayer`` is a premultiplied pair (``premul`` in [-1, 1], ``cover`` in [0, 1]) and the
stack is composited bottom to top with Porter-Duff *over*::

    delta = 0
    for layer in [base] + [ranges covering the frame, oldest first]:
        delta = layer.premul + delta * (1 - layer.cover)

so a per-range layer overrides what lies below it exactly as far as it was painted, and later
ranges win over earlier ones. ``delta`` is added to the automatic mask (see ``evaluate``):
+1 includes a texel whatever the automatic regions say, -1 excludes it, 0 leaves it automatic.

A brush stroke is a ``Footprint`` (texel weights in [0, 1] over a bounding box) and a target
value v (+1 paint, -1 erase, 0 back to automatic); applying it blends the footprint *over* the
target layer: ``premul = v w + premul (1 - w)``, ``cover = w + cover (1 - w)``. The stroke keeps
the before-images of its bounding box (napari's paint atom), so ``revert`` restores the layer
bit for bit and a redo reproduces it exactly. ``grow_px`` dilates (> 0) or erodes (< 0) the final
mask in crop pixels at ``REFERENCE_RESOLUTION``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from psygnal import Signal

DEFAULT_UV_SIZE = 256
REFERENCE_RESOLUTION = 256  # grow_px is in crop pixels at this crop resolution
MAX_GROW_PX = 64.0

Frames = tuple[int, int]  # half-open [start, stop)


def _check_frames(frames: Sequence[int] | None) -> Frames | None:
    if frames is None:
        return None
    start, stop = (int(v) for v in frames)
    if start < 0 or stop <= start:
        raise ValueError(f"a mask range needs 0 <= start < stop, got [{start}, {stop})")
    return start, stop


@dataclass
class UVLayer:
    """One premultiplied UV image (see the module docstring)."""

    premul: np.ndarray  # (S, S) float32 in [-1, 1]
    cover: np.ndarray  # (S, S) float32 in [0, 1]

    @classmethod
    def empty(cls, size: int) -> UVLayer:
        return cls(np.zeros((size, size), np.float32), np.zeros((size, size), np.float32))

    @property
    def is_empty(self) -> bool:
        return not self.cover.any() and not self.premul.any()

    def copy(self) -> UVLayer:
        return UVLayer(self.premul.copy(), self.cover.copy())


@dataclass
class RangeLayer:
    start: int
    stop: int  # exclusive
    layer: UVLayer

    def covers(self, frame: int) -> bool:
        return self.start <= frame < self.stop

    @property
    def frames(self) -> Frames:
        return self.start, self.stop


@dataclass(frozen=True)
class Footprint:
    """Brush weights in [0, 1] over the UV texels [y0:y0+h, x0:x0+w] (empty when h or w is 0)."""

    y0: int
    x0: int
    weights: np.ndarray  # (h, w) float32

    @property
    def slices(self) -> tuple[slice, slice]:
        h, w = self.weights.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    @property
    def is_empty(self) -> bool:
        return self.weights.size == 0 or not self.weights.any()

    @classmethod
    def from_full(cls, weights: np.ndarray) -> Footprint:
        """Crop a full (S, S) weight image to its non-zero bounding box."""
        w = np.asarray(weights, np.float32)
        rows, cols = np.flatnonzero(w.any(axis=1)), np.flatnonzero(w.any(axis=0))
        if not len(rows):
            return cls(0, 0, np.zeros((0, 0), np.float32))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return cls(int(y0), int(x0), np.ascontiguousarray(w[y0:y1, x0:x1]))

    def union(self, other: Footprint) -> Footprint:
        """Texel-wise maximum (one stroke never paints a texel twice over itself)."""
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        (ay, ax), (by, bx) = (self.y0, self.x0), (other.y0, other.x0)
        ah, aw = self.weights.shape
        bh, bw = other.weights.shape
        y0, x0 = min(ay, by), min(ax, bx)
        y1, x1 = max(ay + ah, by + bh), max(ax + aw, bx + bw)
        out = np.zeros((y1 - y0, x1 - x0), np.float32)
        out[ay - y0:ay - y0 + ah, ax - x0:ax - x0 + aw] = self.weights
        sub = out[by - y0:by - y0 + bh, bx - x0:bx - x0 + bw]
        np.maximum(sub, other.weights, out=sub)
        return Footprint(y0, x0, out)


def blend_over(layer: UVLayer, footprint: Footprint, value: float) -> None:
    """Composite the footprint with ``value`` over ``layer`` in place (see the module docstring)."""
    if footprint.weights.size == 0:
        return
    ys, xs = footprint.slices
    w = footprint.weights
    keep = np.float32(1.0) - w
    layer.premul[ys, xs] = np.float32(value) * w + layer.premul[ys, xs] * keep
    layer.cover[ys, xs] = w + layer.cover[ys, xs] * keep


class MaskLayer:
    """The user's mask edits of one shot: a base UV layer, per-range UV layers, grow/shrink.

    ``changed(frames)`` is emitted after every change, with the frame range it affects
    (``(start, stop)``) or None for every frame.
    """

    changed = Signal(object)

    def __init__(self, size: int = DEFAULT_UV_SIZE, n_frames: int | None = None) -> None:
        size = int(size)
        if not 8 <= size <= 4096:
            raise ValueError(f"UV mask size must be in [8, 4096], got {size}")
        self.size = size
        self.n_frames = None if n_frames is None else int(n_frames)
        self.base = UVLayer.empty(size)
        self.ranges: list[RangeLayer] = []
        self._grow_px = 0.0
        self._revision = 0

    # -- state --

    @property
    def grow_px(self) -> float:
        return self._grow_px

    @property
    def revision(self) -> int:
        """Bumped by every change (caches and autosave compare it)."""
        return self._revision

    @property
    def is_empty(self) -> bool:
        """No edits at all: the automatic mask is used unchanged."""
        return self._grow_px == 0.0 and self.base.is_empty and all(r.layer.is_empty for r in self.ranges)

    def range_layer(self, frames: Sequence[int]) -> RangeLayer | None:
        """The (newest) layer for exactly this range, if any."""
        start, stop = _check_frames(frames)
        for r in reversed(self.ranges):
            if (r.start, r.stop) == (start, stop):
                return r
        return None

    def layers_at(self, frame: int) -> list[UVLayer]:
        """The layers that apply to ``frame``, bottom to top."""
        return [self.base] + [r.layer for r in self.ranges if r.covers(frame)]

    def delta(self, frame: int) -> np.ndarray:
        """(S, S) float32 in [-1, 1]: the composited edit for ``frame`` (see the module doc)."""
        layers = self.layers_at(frame)
        out = layers[0].premul.copy()
        for lay in layers[1:]:
            out = lay.premul + out * (np.float32(1.0) - lay.cover)
        return out

    def delta_key(self, frame: int) -> tuple:
        """Frames with equal keys have equal ``delta`` (cache key, valid until the next change)."""
        return (self._revision,) + tuple(i for i, r in enumerate(self.ranges) if r.covers(frame))

    def copy(self) -> MaskLayer:
        out = MaskLayer(self.size, self.n_frames)
        out.base = self.base.copy()
        out.ranges = [RangeLayer(r.start, r.stop, r.layer.copy()) for r in self.ranges]
        out._grow_px = self._grow_px
        return out

    def equals(self, other: MaskLayer) -> bool:
        """Bit-identical content (size, grow, every layer and range)."""
        def same(a: UVLayer, b: UVLayer) -> bool:
            return np.array_equal(a.premul, b.premul) and np.array_equal(a.cover, b.cover)

        return (
            self.size == other.size
            and self._grow_px == other._grow_px
            and same(self.base, other.base)
            and [r.frames for r in self.ranges] == [r.frames for r in other.ranges]
            and all(same(a.layer, b.layer) for a, b in zip(self.ranges, other.ranges))
        )

    # -- primitives (called by edits; they emit ``changed``) --

    def _target(self, frames: Frames | None) -> tuple[UVLayer, bool]:
        """The layer a stroke on ``frames`` paints into, and whether it was just created."""
        if frames is None:
            return self.base, False
        found = self.range_layer(frames)
        if found is not None:
            return found.layer, False
        if self.n_frames is not None and frames[1] > self.n_frames:
            raise ValueError(f"mask range [{frames[0]}, {frames[1]}) runs past the shot's {self.n_frames} frames")
        self.ranges.append(RangeLayer(frames[0], frames[1], UVLayer.empty(self.size)))
        return self.ranges[-1].layer, True

    def _set_grow(self, px: float) -> None:
        px = float(px)
        if not np.isfinite(px) or abs(px) > MAX_GROW_PX:
            raise ValueError(f"grow/shrink must be within ±{MAX_GROW_PX:g} px, got {px}")
        self._grow_px = px
        self._touch(None)

    def _touch(self, frames: Frames | None) -> None:
        self._revision += 1
        self.changed.emit(frames)


# --------------------------------------------------------------------------------------------
# Edits (same protocol as dubstudio.core.edits.Edit: apply records the inverse, revert uses it)


class MaskEdit:
    text: str = "Mask edit"
    merge_id: int = -1  # an undo stack merges consecutive edits of one family (``core.undo``)

    def apply(self, layer: MaskLayer) -> None:
        raise NotImplementedError

    def revert(self, layer: MaskLayer) -> None:
        raise NotImplementedError

    def merge(self, other: object) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.text}>"


class PaintStroke(MaskEdit):
    """One brush stroke: ``footprint`` blended with ``value`` (+1 paint, -1 erase, 0 back to the
    automatic mask) into the base layer, or into the layer of ``frames`` = (start, stop) only.

    Build one from a stroke on a frame with ``mapping.FrameUV.stroke_footprint`` (what the
    editor does) or in UV units with ``PaintStroke.from_uv``."""

    def __init__(self, footprint: Footprint, value: float, frames: Sequence[int] | None = None, text: str | None = None) -> None:
        value = float(value)
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"stroke value must be in [-1, 1], got {value}")
        w = footprint.weights
        if w.size and (not np.isfinite(w).all() or w.min() < 0 or w.max() > 1):
            raise ValueError("footprint weights must be finite and in [0, 1]")
        self.footprint = footprint
        self.value = value
        self.frames = _check_frames(frames)
        verb = "Paint" if value > 0 else "Erase" if value < 0 else "Restore"
        where = "" if self.frames is None else f" (frames {self.frames[0]}–{self.frames[1] - 1})"
        self.text = text or f"{verb} mask{where}"
        self._old: tuple[np.ndarray, np.ndarray] | None = None
        self._created = False

    @classmethod
    def from_uv(
        cls,
        points_uv: np.ndarray,
        radius_uv: float,
        feather: float = 0.5,
        value: float = 1.0,
        frames: Sequence[int] | None = None,
        size: int = DEFAULT_UV_SIZE,
    ) -> PaintStroke:
        """A stroke through ``points_uv`` (N, 2) with a round brush of ``radius_uv`` in UV units
        (disc in the atlas, so slightly elliptic on the face where the unwrap stretches)."""
        pts = np.atleast_2d(np.asarray(points_uv, np.float64))
        t = (np.arange(size) + 0.5) / size
        u, v = np.meshgrid(t, t)
        d = _distance_to_polyline(u.ravel(), v.ravel(), pts).reshape(size, size)
        w = brush_profile(d, float(radius_uv), feather, aa=1.0 / size)
        return cls(Footprint.from_full(w), value, frames)

    def apply(self, layer: MaskLayer) -> None:
        if self.footprint.weights.shape and self.footprint.weights.size:
            ys, xs = self.footprint.slices
            if ys.stop > layer.size or xs.stop > layer.size:
                raise ValueError(f"stroke footprint exceeds the {layer.size}² UV mask")
        target, self._created = layer._target(self.frames)
        ys, xs = self.footprint.slices
        self._old = (target.premul[ys, xs].copy(), target.cover[ys, xs].copy())
        blend_over(target, self.footprint, self.value)
        layer._touch(self.frames)

    def revert(self, layer: MaskLayer) -> None:
        assert self._old is not None, "revert before apply"
        if self._created:
            found = layer.range_layer(self.frames)
            layer.ranges.remove(found)
        else:
            target = layer.base if self.frames is None else layer.range_layer(self.frames).layer
            ys, xs = self.footprint.slices
            target.premul[ys, xs], target.cover[ys, xs] = self._old
        layer._touch(self.frames)


class ClearMask(MaskEdit):
    """Remove edits: everything (``frames`` None, incl. grow/shrink), or one range's layer."""

    def __init__(self, frames: Sequence[int] | None = None) -> None:
        self.frames = _check_frames(frames)
        self.text = "Clear mask edits" if self.frames is None else f"Clear mask edits of frames {self.frames[0]}–{self.frames[1] - 1}"
        self._old: MaskLayer | None = None

    def apply(self, layer: MaskLayer) -> None:
        self._old = layer.copy()
        if self.frames is None:
            layer.base = UVLayer.empty(layer.size)
            layer.ranges = []
            layer._grow_px = 0.0
        else:
            layer.ranges = [r for r in layer.ranges if r.frames != self.frames]
        layer._touch(self.frames)

    def revert(self, layer: MaskLayer) -> None:
        assert self._old is not None, "revert before apply"
        old = self._old.copy()
        layer.base, layer.ranges, layer._grow_px = old.base, old.ranges, old._grow_px
        layer._touch(self.frames)


class SetGrow(MaskEdit):
    """Set the global dilate (> 0) / erode (< 0) of the final mask, crop px at 256."""

    merge_id = 0x4D47  # "MG": consecutive grow/shrink steps merge into one undo step

    def __init__(self, px: float) -> None:
        self.px = float(px)
        self.text = f"Mask {'grow' if self.px >= 0 else 'shrink'} {abs(self.px):g} px"
        self._old: float | None = None

    def apply(self, layer: MaskLayer) -> None:
        self._old = layer.grow_px
        layer._set_grow(self.px)

    def revert(self, layer: MaskLayer) -> None:
        assert self._old is not None, "revert before apply"
        layer._set_grow(self._old)

    def merge(self, other: object) -> bool:
        """Consecutive spin-box steps are one undo step."""
        if isinstance(other, SetGrow):
            self.px = other.px
            self.text = other.text
            return True
        return False


# --------------------------------------------------------------------------------------------
# Brush geometry (shared with mapping.py)


def brush_profile(dist: np.ndarray, radius: float, feather: float, aa: float = 1.0) -> np.ndarray:
    """Weights in [0, 1] for distances to the stroke: 1 up to ``radius * (1 - feather)``, a
    smoothstep down to 0 at ``radius`` (at least ``aa`` wide, so a hard brush is anti-aliased)."""
    if radius <= 0:
        raise ValueError(f"brush radius must be positive, got {radius}")
    feather = float(np.clip(feather, 0.0, 1.0))
    inner, outer = radius * (1.0 - feather), radius
    if outer - inner < aa:
        inner, outer = radius - aa / 2, radius + aa / 2
    t = np.clip((outer - np.asarray(dist, np.float64)) / (outer - inner), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _distance_to_polyline(x: np.ndarray, y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance of points (x, y) to the polyline through ``pts`` (N, 2) (a dot when N = 1)."""
    best = np.full(x.shape, np.inf)
    if len(pts) == 1:
        return np.hypot(x - pts[0, 0], y - pts[0, 1])
    for a, b in zip(pts[:-1], pts[1:]):
        best = np.minimum(best, distance_to_segment(x, y, a, b))
    return best


def distance_to_segment(x: np.ndarray, y: np.ndarray, a: Iterable[float], b: Iterable[float]) -> np.ndarray:
    ax, ay = (float(v) for v in a)
    bx, by = (float(v) for v in b)
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    if ll <= 1e-18:
        return np.hypot(x - ax, y - ay)
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / ll, 0.0, 1.0)
    return np.hypot(x - (ax + t * dx), y - (ay + t * dy))
