"""The open shot's mask edits for the editor: layer, storage, per-frame mappings, strokes, undo.

``MaskController`` owns the shot's ``masks.MaskLayer`` (loaded with the shot, saved with Ctrl+S,
autosaved and recovered like the curves) and a small cache of per-frame mappings
(``masks.mapping.frame_uv`` + the automatic alpha), computed in a background thread when a frame
is shown, so a brush press never waits for a rasterization. One stroke is one core
``PaintStroke``: while dragging, its footprint grows and the live edit is re-applied (revert +
apply, bit-exact); on release it lands on the session's undo stack as one edit of the layer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from dubstudio.core.errors import ProjectError
from dubstudio.masks.evaluate import effective_from_maps
from dubstudio.masks.layer import Footprint, MaskEdit, MaskLayer, PaintStroke
from dubstudio.masks.mapping import FrameUV, frame_uv
from dubstudio.masks.store import MaskStore
from dubstudio.rendering.composite import CompositeSettings, alpha_from_regions

if TYPE_CHECKING:
    from dubstudio.gui.model.session import ShotSession

log = logging.getLogger(__name__)

MAP_RESOLUTION = 256  # crop resolution of the mappings and of the mask shown
CACHE_FRAMES = 16



@dataclass
class FrameMasks:
    """What painting and showing the mask of one frame need (computed off the GUI thread)."""

    frame: int
    maps: list[FrameUV]  # tracked mapping first, then the edited expression's (if edited)
    auto: np.ndarray  # (R, R) automatic alpha (as compositing computes it)

    @property
    def has_face(self) -> bool:
        return self.maps[0].has_face


def compute_frame_masks(tracking, model, i: int, controls: np.ndarray | None, settings: CompositeSettings) -> FrameMasks:
    r = MAP_RESOLUTION
    maps = [frame_uv(tracking, i, r, None, model)]
    if controls is not None and maps[0].has_face:
        maps.append(frame_uv(tracking, i, r, controls, model, texels=False))
    if maps[0].has_face:
        auto, _ = alpha_from_regions(np.maximum.reduce([m.regions for m in maps]), settings)
    else:
        auto = np.zeros((r, r), np.float32)
    return FrameMasks(i, maps, auto)


@dataclass
class _Stroke:
    frame: int
    mapping: FrameUV
    radius: float  # crop pixels
    feather: float
    value: float
    frames: tuple[int, int] | None
    last: np.ndarray
    footprint: Footprint
    live: PaintStroke | None = None


class MaskController(QObject):
    """The open shot's mask edits: layer, storage, per-frame mappings, strokes, undo."""

    changed = Signal(object)  # frames (start, stop) or None: the effective mask may have changed there
    frame_ready = Signal(int)  # the mapping of this frame is cached now
    warning = Signal(str)
    _computed = Signal(object, object)  # (key, future), from the worker thread

    def __init__(self, session: ShotSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.settings = CompositeSettings()
        self.layer: MaskLayer | None = None
        self.store: MaskStore | None = None
        self._saved_revision: int | None = None
        self._autosaved_revision: int | None = None
        self._load_failed = False
        self._cache: OrderedDict[tuple, FrameMasks] = OrderedDict()
        self._pending: dict[tuple, Future] = {}
        self._cache_tracking = None
        self._stroke: _Stroke | None = None
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mask-map")
        self._computed.connect(self._on_computed)
        session.shot_opened.connect(self._on_opened)
        session.shot_closed.connect(self._on_closed)
        session.tracking_changed.connect(self.clear_cache)
        corrected = getattr(session, "tracking_corrected", None)  # tracking-correction mode, if present
        if corrected is not None:
            corrected.connect(lambda *_: self.clear_cache())

    # -- the layer --

    def _set_layer(self, layer: MaskLayer | None) -> None:
        if self._stroke is not None:
            self._stroke = None
        if self.layer is not None:
            self.layer.changed.disconnect(self._on_layer_changed)
        self.layer = layer
        if layer is not None:
            layer.changed.connect(self._on_layer_changed)
        self.changed.emit(None)

    def _on_layer_changed(self, frames) -> None:
        self.changed.emit(frames)

    def _on_opened(self) -> None:
        s = self.session
        self.store = MaskStore(s.project)
        n = s.info.n_frames if s.info is not None else None
        self._load_failed = False
        try:
            layer = self.store.load(n)
        except ProjectError as e:
            self._load_failed = True
            layer = MaskLayer(n_frames=n)
            self.warning.emit(f"The saved mask edits could not be read, so the automatic mask is used (the file is left as it is): {e}")
        self._saved_revision = self._autosaved_revision = layer.revision
        self.clear_cache()
        self._set_layer(layer)

    def _on_closed(self) -> None:
        self.store = None
        self.clear_cache()
        self._set_layer(None)

    # -- per-frame mappings (cached, computed in a worker thread) --

    def clear_cache(self) -> None:
        self._cache.clear()
        self._pending.clear()  # late results of old requests are dropped by key
        self._cache_tracking = None

    def _key(self, i: int) -> tuple | None:
        s = self.session
        t = s.tracking
        if t is None or s.geometry is None or not 0 <= i < t.n_frames:
            return None
        if self._cache_tracking is not t:
            self._cache.clear()
            self._pending.clear()
            self._cache_tracking = t
        ctrl = s.controls_at(i)
        edited = ctrl is not None and not np.allclose(ctrl, t.controls[i], atol=1e-9)
        return (id(t), i, ctrl.tobytes() if edited else None)

    def frame_data(self, i: int, wait: bool = False) -> FrameMasks | None:
        """The frame's mappings if cached; otherwise starts computing them (``frame_ready``
        follows) and returns None, or with ``wait`` computes/awaits them here."""
        key = self._key(i)
        if key is None:
            return None
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        s = self.session
        ctrl = None if key[2] is None else s.controls_at(i)
        fut = self._pending.get(key)
        if fut is None:
            if self._executor is None or wait:
                data = compute_frame_masks(s.tracking, s.geometry.model, i, ctrl, self.settings)
                self._store(key, data)
                return data
            for k, f in list(self._pending.items()):  # only the latest frame matters (playback)
                if f.cancel():
                    del self._pending[k]
            fut = self._executor.submit(compute_frame_masks, s.tracking, s.geometry.model, i, ctrl, self.settings)
            self._pending[key] = fut
            fut.add_done_callback(lambda f, k=key: self._computed.emit(k, f))
        if not wait:
            return None
        data = fut.result()
        self._store(key, data)
        return data

    def _store(self, key: tuple, data: FrameMasks) -> None:
        self._pending.pop(key, None)
        self._cache[key] = data
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_FRAMES:
            self._cache.popitem(last=False)

    def _on_computed(self, key: tuple, fut: Future) -> None:
        if self._pending.get(key) is not fut:
            return  # superseded (new tracking, closed shot) or already taken by a waiting press
        try:
            data = fut.result()
        except Exception as e:  # never expected; a message, not a crash
            self._pending.pop(key, None)
            log.exception("mask mapping of frame %s failed", key[1])
            self.warning.emit(f"The mask of frame {key[1]} could not be computed: {e}")
            return
        self._store(key, data)
        self.frame_ready.emit(data.frame)

    def effective(self, i: int, wait: bool = False) -> tuple[np.ndarray, FrameMasks] | None:
        """(effective mask (R, R), frame data) of frame ``i``, None while not computed yet."""
        if self.layer is None:
            return None
        data = self.frame_data(i, wait)
        if data is None:
            return None
        if not data.has_face:
            return np.zeros_like(data.auto), data
        return effective_from_maps(self.layer, i, data.maps, data.auto), data

    # -- edits --

    def push(self, edit: MaskEdit) -> MaskEdit:
        """Apply a core mask edit and put it on the session's undo stack."""
        if self.layer is None:
            raise RuntimeError("no shot is open")
        edit.apply(self.layer)
        self.session.record(self.layer, edit)
        return edit

    @property
    def stroking(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, i: int, image_xy, radius_px: float, feather: float, value: float, frames: tuple[int, int] | None = None) -> bool:
        """Start a stroke on frame ``i`` at image position ``image_xy`` with a brush of
        ``radius_px`` image pixels. False (nothing done) where there is no face."""
        self.cancel_stroke()
        if self.layer is None:
            return False
        data = self.frame_data(i, wait=True)
        if data is None or not data.has_face:
            return False
        m = data.maps[0]
        p = m.image_to_crop(np.asarray(image_xy, np.float64)[None])[0]
        self._stroke = _Stroke(i, m, max(0.5, radius_px * m.pixels_per_image_pixel), feather, value, frames, p,
                               Footprint(0, 0, np.zeros((0, 0), np.float32)))
        self._extend(p[None])
        return True

    def extend_stroke(self, image_xy) -> None:
        st = self._stroke
        if st is None:
            return
        p = st.mapping.image_to_crop(np.asarray(image_xy, np.float64)[None])[0]
        if np.hypot(*(p - st.last)) < 0.25:
            return
        self._extend(np.stack([st.last, p]))
        st.last = p

    def _extend(self, points: np.ndarray) -> None:
        st = self._stroke
        seg = st.mapping.stroke_footprint(points, st.radius, st.feather)
        if seg.is_empty:
            return
        st.footprint = st.footprint.union(seg)
        if st.live is not None:
            st.live.revert(self.layer)
        st.live = PaintStroke(st.footprint, st.value, st.frames)
        st.live.apply(self.layer)

    def end_stroke(self) -> MaskEdit | None:
        """Finish the stroke: one undo step (None if it touched no texel)."""
        st, self._stroke = self._stroke, None
        if st is None or st.live is None:
            return None
        self.session.record(self.layer, st.live)
        return st.live

    def cancel_stroke(self) -> None:
        st, self._stroke = self._stroke, None
        if st is not None and st.live is not None and self.layer is not None:
            st.live.revert(self.layer)

    # -- saving --

    def save(self) -> str | None:
        """Write the edits (nothing for a shot never painted; a damaged file that could not be
        loaded is only replaced once there are new edits)."""
        layer, store = self.layer, self.store
        if layer is None or store is None:
            return None
        if layer.is_empty and (not store.exists() or self._load_failed):
            store.discard_autosave()
            return None
        path = store.save(layer)
        self._load_failed = False
        self._saved_revision = self._autosaved_revision = layer.revision
        return str(path)

    def needs_autosave(self) -> bool:
        layer = self.layer
        return (layer is not None and self.store is not None and not self.session.undo_stack.is_clean()
                and layer.revision not in (self._saved_revision, self._autosaved_revision))

    def autosave(self) -> str | None:
        if not self.needs_autosave():
            return None
        path = self.store.autosave(self.layer)
        self._autosaved_revision = self.layer.revision
        return str(path)

    def discard_autosave(self) -> None:
        if self.store is not None:
            self.store.discard_autosave()

    def recovery_available(self) -> bool:
        return self.store is not None and self.store.recovery_available()

    def recover(self) -> bool:
        """Replace the layer by the autosaved one (unsaved afterwards). False if none."""
        if self.store is None:
            return False
        n = self.session.info.n_frames if self.session.info is not None else None
        layer = self.store.recover(n)
        if layer is None:
            return False
        stack = self.session.undo_stack
        stack.clear()  # commands refer to the replaced layer
        self._saved_revision = None
        self._autosaved_revision = layer.revision
        self._set_layer(layer)
        stack.reset_clean()
        return True

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
