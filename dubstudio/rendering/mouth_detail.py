"""Mouth detail copied from the actor's own frames (issue 21).

The neural renderer gets the mouth's shape, shading and timing right but draws teeth, tongue and
lip creases as a smear: at 128 px with a few minutes of adaptation it cannot learn them. A
mesh-warped copy of the training frame nearest in expression keeps them (it is the actor's real
mouth, moved onto the target's mesh) but gets the shape of the opening less right. So the two
are split by frequency, as reference-guided renderers do with learned features:

    out = low(render, sigma) + sum_k w_k * high(warp(ref_k -> target mesh), sigma)     inside the mouth

``render`` is the neural crop upsampled to the detail resolution, which is the footage's own pixel
density (the crop box's size in frame pixels, capped): the references are cut from the frames at
that density, so the detail is the actor's, not an upscaler's. The k references are the training
frames nearest in the named controls, weighted by a soft-min of their distance so the mix moves
smoothly when the nearest frame changes (a hard switch flickers). A target whose expression no
reference comes close to keeps the render's own mouth (``DetailSettings.match_full``): a wrong
mouth's teeth are worse than a smear.

Two references whose teeth sit a few pixels apart would add up to doubled or cancelled teeth, so
they are first morphed onto one shared layout (optical flow between them, ``morph_offsets``).
Each reference is resampled once, from its frame straight onto that layout: the crop, the mesh
warp and the morph are composed into one map (each bilinear pass softens detail by up to half a
pixel; BENCHMARKS.md, "Mouth detail", twentieth session).

``DetailedRenderer`` wraps any crop renderer with it, so export, eval and the editor use it
unchanged (it reports the detail resolution as its own).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from dubstudio.rendering.crop_io import AREA_RATIO, crop_source, extract_crop
from dubstudio.rendering.rasterizer import Fragments, crop_vertices, interpolate, rasterize_frames
from dubstudio.tracking.crops import MASK_MOUTH

__all__ = ["DetailSettings", "ReferenceBank", "DetailedRenderer", "detail_resolution", "expression_spacing", "warp_map", "warp_to",
           "fuse", "morph", "morph_offsets"]


@dataclass(frozen=True)
class DetailSettings:
    """Chosen on talk_c and talk_b (BENCHMARKS.md, "Mouth detail"); talk_long held out, talk_d held
    out of all but the trust rule (fifteenth session) and of align / direct (twentieth)."""

    k: int = 2  # references per frame
    sigma: float = 1.5  # band split, in the neural render's pixels
    softness: float = 0.2  # soft-min temperature, x the median distance between neighbouring references
    feather: float = 0.01  # the detail fades in over this share of the crop from the mask's edge
    grow: float = 0.02  # the mouth mask grown by this share of the crop (the lips' outer edge is in the detail)
    low_mix: float = 0.0  # share of the low band taken from the references instead of the render
    # the references are morphed onto one layout (optical flow between them, each moved by its
    # share) before their detail is summed: two mouths whose teeth sit a few pixels apart otherwise
    # add up to doubled or cancelled teeth. 0 = off, 1 = the full flow
    align: float = 1.0
    # the references' one resampling, from the frame straight onto the target mesh's layout
    # (frame -> crop -> mesh -> shared layout composed as one map: each bilinear pass softens
    # detail by up to half a pixel)
    interp: str = "linear"  # linear | cubic | lanczos
    direct: bool = True  # False: resampled in three passes, as before (for comparison)
    # a reference lends its detail fully while its expression is within match_full x the bank's
    # spacing (the median distance between neighbouring references) of the target, not at all
    # beyond match_none: an expression the shot never shows keeps the render's own mouth rather than
    # a wrong one's (talk_c / talk_b held-out frames: 90 % within 1.8-2.1)
    match_full: float = 2.0
    match_none: float = 4.0
    max_resolution: int = 512  # detail crops never larger than this (memory, time)
    min_scale: float = 1.0  # never below the render's own resolution
    # frames kept as references: every frame with a face up to bank_size and bank_mb of pixels,
    # beyond that spread over the expressions. A thinned bank keeps the extremes and loses the
    # common expressions' close matches: on talk_c, 200 of 440 frames gave mouth LPIPS 0.121 and
    # inner sharpness 0.70, all of them 0.109 and 0.92 (BENCHMARKS.md, twenty-first session)
    bank_size: int = 2000
    bank_mb: float = 500.0


def detail_resolution(tracking, base: int, settings: DetailSettings) -> int:
    """The footage's own pixel density for the crop: the median crop box size in frame pixels,
    between ``base`` x min_scale and max_resolution, rounded to 8."""
    sizes = np.asarray(tracking.crop)[np.asarray(tracking.has_face, bool), 2]
    px = float(np.median(sizes)) if sizes.size else float(base)
    r = int(np.clip(px, base * settings.min_scale, settings.max_resolution))
    return max(base, int(round(r / 8.0)) * 8)


def _window(frags: Fragments, b: int, box: tuple[int, int, int, int] | None) -> Fragments:
    y0, y1, x0, x1 = box if box is not None else (0, frags.resolution, 0, frags.resolution)
    return Fragments(frags.face_id[b : b + 1, y0:y1, x0:x1], frags.bary[b : b + 1, y0:y1, x0:x1],
                     frags.depth[b : b + 1, y0:y1, x0:x1], frags.triangles)


INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def warp_map(frags: Fragments, b: int, src_verts: np.ndarray, box: tuple[int, int, int, int] | None = None,
             affine: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of frame ``b`` of ``frags`` (the target mesh) finds the same surface point
    in a source whose mesh is ``src_verts`` (crop pixels): (map x, map y, bool coverage) for
    ``cv2.remap``, only inside ``box`` (y0, y1, x0, x1) when given. ``affine`` (2x3) takes source
    crop pixels on to the image actually sampled (a frame region: one resampling, not two)."""
    one = _window(frags, b, box)
    corner = torch.as_tensor(src_verts[:, :2][frags.triangles.numpy()], dtype=torch.float32)  # (F, 3, 2)
    pos = interpolate(one, corner, background=np.nan)[0].numpy()
    cover = np.isfinite(pos[..., 0])
    y0, x0 = (box[0], box[2]) if box is not None else (0, 0)
    yy, xx = np.mgrid[y0 : y0 + pos.shape[0], x0 : x0 + pos.shape[1]].astype(np.float32)
    mapx = np.where(cover, pos[..., 0] - 0.5, xx)
    mapy = np.where(cover, pos[..., 1] - 0.5, yy)
    if affine is not None:
        a = np.asarray(affine, np.float64)
        mapx, mapy = a[0, 0] * mapx + a[0, 1] * mapy + a[0, 2], a[1, 0] * mapx + a[1, 1] * mapy + a[1, 2]
    return mapx.astype(np.float32), mapy.astype(np.float32), cover


def warp_to(frags: Fragments, b: int, src_verts: np.ndarray, src_crop: np.ndarray,
            box: tuple[int, int, int, int] | None = None, interp: int = cv2.INTER_LINEAR,
            affine: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``src_crop`` resampled onto frame ``b`` of ``frags`` (the target mesh, same crop size):
    each covered target pixel looks up the same surface point in the source crop. Returns the
    warped crop (float32) and its bool coverage, both only inside ``box`` (y0, y1, x0, x1) when
    given. With ``affine`` the source is the frame region it maps crop pixels into (``warp_map``)."""
    mapx, mapy, cover = warp_map(frags, b, src_verts, box, affine)
    out = cv2.remap(src_crop.astype(np.float32), mapx, mapy, interpolation=interp, borderMode=cv2.BORDER_REPLICATE)
    return out, cover


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def fuse(render: np.ndarray, refs: Sequence[np.ndarray], weights: Sequence[float], mask: np.ndarray, sigma: float,
         low_mix: float = 0.0) -> np.ndarray:
    """Low band of ``render`` plus the weighted high band of ``refs`` where ``mask`` (float 0..1);
    ``low_mix`` of the low band from the references too."""
    r = render.astype(np.float32)
    ref = np.zeros_like(r)
    for x, w in zip(refs, weights):
        ref += float(w) * x
    low_ref = _blur(ref, sigma)
    out = (1 - low_mix) * _blur(r, sigma) + low_mix * low_ref + (ref - low_ref)
    m = mask[..., None].astype(np.float32)
    return np.clip(r * (1 - m) + out * m + 0.5, 0, 255).astype(np.uint8)


_LOCAL = threading.local()  # one DIS object per thread: OpenCV's are not safe to share (an export beside the editor)


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow F with b(x + F(x)) ~ a(x), for two RGB float crops of one size (DIS, OpenCV)."""
    dis = getattr(_LOCAL, "dis", None)
    if dis is None:
        dis = _LOCAL.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ga = cv2.cvtColor(np.clip(a, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(np.clip(b, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return dis.calc(ga, gb, None)


def morph_offsets(refs: Sequence[np.ndarray], weights: Sequence[float], amount: float = 1.0) -> list[np.ndarray] | None:
    """Per reference, the offset (h, w, 2) at which to sample it so that all share their weighted
    mean layout: each is aligned to the first by optical flow F_j, the shared layout is
    D = sum_j w_j F_j (relative to the first), and reference j is sampled at x + F_j(x) - D(x).
    With weights (1, 0) the first keeps its own layout; as the weights shift the layout slides
    from one to the other, so a change of nearest reference does not jump. None: nothing to do."""
    if len(refs) < 2 or amount <= 0:
        return None
    h, w = refs[0].shape[:2]
    flows = [np.zeros((h, w, 2), np.float32)] + [amount * _flow(refs[0], r) for r in refs[1:]]
    wts = np.asarray(weights, np.float64) / max(float(np.sum(weights)), 1e-9)
    shared = sum(float(wj) * f for wj, f in zip(wts, flows))
    return [(f - shared).astype(np.float32) for f in flows]


def shifted(img: np.ndarray, offset: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``img`` sampled at x + offset(x)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(img, xx + offset[..., 0], yy + offset[..., 1], interpolation=interp, borderMode=cv2.BORDER_REPLICATE)


def morph(refs: Sequence[np.ndarray], weights: Sequence[float], amount: float = 1.0) -> list[np.ndarray]:
    """The references moved onto their weighted mean layout (``morph_offsets``)."""
    offsets = morph_offsets(refs, weights, amount)
    return list(refs) if offsets is None else [shifted(r, d) for r, d in zip(refs, offsets)]


def expression_spacing(controls: np.ndarray) -> float:
    """The median distance from each frame's controls (n, C) to its nearest other frame's (at most
    1500 frames looked at): the unit in which the detail's trust measures how close a reference is."""
    every = np.asarray(controls, np.float64)
    every = every[:: max(1, len(every) // 1500)]
    d = np.sqrt(((every[:, None] - every[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nn = d.min(1)
    return max(float(np.median(nn[np.isfinite(nn)])) if np.isfinite(nn).any() else 1.0, 1e-3)


class ReferenceBank:
    """Training frames as references at the detail resolution, with their controls and vertices.

    Up to ``settings.bank_size`` frames, chosen to spread over the expressions (farthest-point
    sampling in the named controls), decoded in one sequential pass. Each is kept as the frame
    region under its crop box with the affine from crop pixels into it (``sources``,
    ``affines``), so the detail is resampled once, from the frame onto the target; where the
    detail crop is much smaller than the box (a capped resolution) as the crop itself
    (affine None), shrunk with an area filter."""

    def __init__(self, tracking, reader, train: Sequence[int], resolution: int, settings: DetailSettings, model=None) -> None:
        self.tracking = tracking
        self.resolution = int(resolution)
        self.settings = settings
        self.model = model or tracking.model()
        cand = np.array(sorted({int(i) for i in train if 0 <= int(i) < tracking.n_frames and tracking.has_face[int(i)]}), np.int64)
        if cand.size == 0:
            from dubstudio.core.errors import NoFaceError

            raise NoFaceError("no training frame has a face to take mouth detail from.")
        self.frames = self._spread(cand, self._capacity(cand))
        self.controls = np.asarray(tracking.controls, np.float64)[self.frames]
        self.sources, self.affines = self._decode(reader)
        self.verts = [crop_vertices(tracking, int(i), self.resolution, None, self.model) for i in self.frames]
        # the shot's own spacing of expressions, before the bank was thinned out: what "close"
        # means for this actor
        self.scale = expression_spacing(np.asarray(tracking.controls, np.float64)[cand])

    def _capacity(self, cand: np.ndarray) -> int:
        """How many references fit ``settings.bank_size`` and ``settings.bank_mb``: each is the
        frame region under its box (or the crop, where the box is far larger; ``crop_source``)."""
        box = float(np.median(np.asarray(self.tracking.crop, np.float64)[cand, 2]))
        side = self.resolution if box > self.resolution * AREA_RATIO or not self.settings.direct else box + 2
        per = 3.0 * side * side
        return max(1, min(self.settings.bank_size, int(self.settings.bank_mb * 1e6 // per)))

    def _spread(self, cand: np.ndarray, n: int) -> np.ndarray:
        if len(cand) <= n:
            return cand
        c = np.asarray(self.tracking.controls, np.float64)[cand]
        chosen = [int(np.argmax(c[:, 0]))]  # start from the widest jaw: open mouths are the rare ones
        d = ((c - c[chosen[0]]) ** 2).sum(1)
        for _ in range(n - 1):
            j = int(np.argmax(d))
            chosen.append(j)
            d = np.minimum(d, ((c - c[j]) ** 2).sum(1))
        return np.sort(cand[chosen])

    def _source(self, rgb: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        box = np.asarray(self.tracking.crop[i], np.float64)
        if not self.settings.direct:
            return extract_crop(rgb, box, self.resolution), None
        return crop_source(rgb, box, self.resolution)

    def _decode(self, reader) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        out: list = [None] * len(self.frames)
        pos = {int(f): k for k, f in enumerate(self.frames)}
        it = getattr(reader, "iter_frames", None)
        frames = ((f, reader.frame(f)) for f in pos) if it is None else it(int(self.frames[0]), int(self.frames[-1]) + 1)
        for i, rgb in frames:
            k = pos.get(int(i))
            if k is not None:
                out[k] = self._source(rgb, int(i))
        return [s for s, _ in out], [a for _, a in out]

    def crop(self, k: int) -> np.ndarray:
        """Reference ``k`` as a crop at the detail resolution (for looking at it)."""
        src, aff = self.sources[k], self.affines[k]
        if aff is None:
            return src
        m = cv2.invertAffineTransform(aff)
        return cv2.warpAffine(src, m, (self.resolution, self.resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def nearest(self, controls: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, k) bank positions and soft-min weights for (n, C) controls, and (n,) how far the
        nearest is, in units of the bank's spacing."""
        k = max(1, min(k or self.settings.k, len(self.frames)))
        d2 = ((np.asarray(controls, np.float64)[:, None] - self.controls[None]) ** 2).sum(-1)
        idx = np.argsort(d2, axis=1)[:, :k]
        d = np.sqrt(np.take_along_axis(d2, idx, 1))
        t = max(self.settings.softness * self.scale, 1e-6)
        w = np.exp(-((d ** 2 - d[:, :1] ** 2) / (2 * t * t)))
        return idx, w / w.sum(1, keepdims=True), d[:, 0] / self.scale

    def trust(self, distance: np.ndarray) -> np.ndarray:
        """1 for a close reference, 0 for none close enough (see DetailSettings.match_full)."""
        lo, hi = self.settings.match_full, self.settings.match_none
        return np.clip((hi - np.asarray(distance, np.float64)) / max(hi - lo, 1e-6), 0.0, 1.0)

    def fingerprint(self) -> str:
        return hashlib.sha256(repr((self.resolution, self.frames.tolist(), asdict(self.settings))).encode()).hexdigest()[:16]

    def with_settings(self, settings: DetailSettings) -> ReferenceBank:
        """The same references under other settings (sharing their pixels): only settings that
        do not change what is decoded (``direct``, ``bank_size``, ``bank_mb``)."""
        decoded = ("direct", "bank_size", "bank_mb")
        if any(getattr(settings, k) != getattr(self.settings, k) for k in decoded):
            raise ValueError("direct, bank_size and bank_mb change the decoded references: build a new bank.")
        out = copy.copy(self)
        out.settings = settings
        return out

    def without(self, frames: Sequence[int]) -> ReferenceBank:
        """The bank less the references at ``frames`` (sharing the rest's pixels; the shot's
        spacing unchanged): a frame's own neighbours out, as when checking the detail on it."""
        keep = ~np.isin(self.frames, np.asarray(list(frames), np.int64))
        if not keep.any():
            from dubstudio.core.errors import NoFaceError

            raise NoFaceError("no reference frame is left to take mouth detail from.")
        out = copy.copy(self)
        pos = np.flatnonzero(keep)
        out.frames, out.controls = self.frames[pos], self.controls[pos]
        out.sources, out.affines, out.verts = ([xs[k] for k in pos] for xs in (self.sources, self.affines, self.verts))
        return out


class DetailedRenderer:
    """A crop renderer at the footage's pixel density: ``base`` renders the mouth's shape, the
    bank lends its detail (see the module docstring). Same interface as ``base``."""

    def __init__(self, base, bank: ReferenceBank) -> None:
        self.base = base
        self.bank = bank
        self.resolution = bank.resolution
        self.settings = bank.settings
        self._scale = bank.resolution / float(base.resolution)

    @classmethod
    def over(cls, base, reader, train: Sequence[int], settings: DetailSettings | None = None) -> DetailedRenderer:
        settings = settings or DetailSettings()
        r = detail_resolution(base.tracking, int(base.resolution), settings)
        return cls(base, ReferenceBank(base.tracking, reader, train, r, settings))

    def __getattr__(self, name: str):  # the rest of the base renderer's interface (project, mel_windows, ...)
        if name in ("base", "bank"):
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def tracking(self):
        return self.base.tracking

    @tracking.setter
    def tracking(self, value) -> None:  # the editor hands in its latest corrections
        self.base.tracking = value
        self.bank.tracking = value

    @property
    def info(self) -> dict:
        return {**getattr(self.base, "info", {}), "mouth_detail": {"resolution": self.resolution, "references": len(self.bank.frames)}}

    def fingerprint(self) -> str:
        fp = getattr(self.base, "fingerprint", None)
        return hashlib.sha256(f"detail:{fp() if fp else ''}:{self.bank.fingerprint()}".encode()).hexdigest()

    def close(self) -> None:
        close = getattr(self.base, "close", None)
        if close is not None:
            close()

    def render_crops(self, indices, controls: np.ndarray | None = None, mel: np.ndarray | None = None,
                     return_masks: bool = False, shot_controls: np.ndarray | None = None, return_footage: bool = False, **kw):
        """Crops (n, R, R, 3) uint8; with ``return_masks`` also the generated masks; with
        ``return_footage`` (crops, masks, footage): the share of each pixel's low band taken from
        the references (``low_mix`` where the detail is in full), which the composite's colour
        matching leaves as it is (``composite.CropMasks.footage``)."""
        from dubstudio.rendering.render_job import render_with_masks

        idx = [int(i) for i in np.atleast_1d(indices)]
        n, r = len(idx), self.resolution
        crops, gen = render_with_masks(self.base, idx, controls, mel, shot_controls)
        if gen is None:
            gen = np.ones(crops.shape[:3], bool)
        ctrl = (np.asarray(self.tracking.controls, np.float64)[idx] if controls is None
                else np.broadcast_to(np.asarray(controls, np.float64), (n, self.tracking.controls.shape[1])))
        fr = rasterize_frames(self.tracking, idx, r, controls=ctrl, model=self.bank.model)
        mouth = (fr.regions.numpy() == MASK_MOUTH)
        g_px = int(round(self.settings.grow * r))
        if g_px > 0:
            kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g_px + 1, 2 * g_px + 1))
            mouth = np.stack([cv2.dilate(m.astype(np.uint8), kern) > 0 for m in mouth])
        st = self.settings
        refs, weights, dist = self.bank.nearest(ctrl)
        trust = self.bank.trust(dist)
        sigma = self.settings.sigma * self._scale
        feather = max(1.0, self.settings.feather * r)
        out = np.empty((n, r, r, 3), np.uint8)
        masks = np.empty((n, r, r), bool)
        footage = np.zeros((n, r, r), np.float32) if return_footage else None
        for b in range(n):
            up = cv2.resize(crops[b], (r, r), interpolation=cv2.INTER_CUBIC)
            g = cv2.resize(gen[b].astype(np.uint8), (r, r), interpolation=cv2.INTER_NEAREST) > 0
            masks[b] = g
            m = mouth[b] & g
            if not m.any() or trust[b] <= 0:
                out[b] = up
                continue
            # only the mouth's box (with room for the blur) is worked on: the rest is the render
            ys, xs = np.nonzero(m)
            pad = int(np.ceil(4 * sigma)) + 2  # the Gaussian kernel's reach
            box = (max(0, ys.min() - pad), min(r, ys.max() + pad + 1), max(0, xs.min() - pad), min(r, xs.max() + pad + 1))
            y0, y1, x0, x1 = box
            interp = INTERP[st.interp]
            maps = [warp_map(fr.fragments, b, self.bank.verts[j], box, self.bank.affines[j]) for j in refs[b]]
            srcs = [self.bank.sources[j].astype(np.float32) for j in refs[b]]
            warped = [cv2.remap(s_, mx, my, interpolation=interp, borderMode=cv2.BORDER_REPLICATE) for s_, (mx, my, _) in zip(srcs, maps)]
            cover = np.logical_and.reduce([c for _, _, c in maps])
            inside = m[y0:y1, x0:x1] & cover
            soft = np.minimum(cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3) / feather, 1.0)  # fades in from the edge
            soft *= float(trust[b])
            out[b] = up
            offsets = morph_offsets(warped, weights[b], st.align)
            if offsets is not None:  # the shared layout's shift folded into each map: still one resampling
                warped = [cv2.remap(s_, shifted(mx, d), shifted(my, d), interpolation=interp, borderMode=cv2.BORDER_REPLICATE)
                          for s_, (mx, my, _), d in zip(srcs, maps, offsets)]
            out[b, y0:y1, x0:x1] = fuse(up[y0:y1, x0:x1], warped, weights[b], soft, sigma, st.low_mix)
            if footage is not None:
                footage[b, y0:y1, x0:x1] = soft * st.low_mix
        if return_footage:
            return out, masks, footage
        return (out, masks) if return_masks else out
