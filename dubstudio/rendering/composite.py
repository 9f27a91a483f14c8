"""Compositing a generated face crop back into the full-resolution frame.

Per frame with a face:

1. **Alpha** from the rasterized region masks (``rasterizer.region_masks``: 1 lower face, 2 mouth)
   of the frame's tracked expression, united with the *edited* expression's when ``controls`` are
   given (an edit that closes an open mouth must also replace where the old mouth was), opened
   morphologically by ``smooth_px`` (the lower face's top edge follows mesh triangles and is a
   zigzag under the nose; the opening rounds it off and stays inside the regions; the mouth is
   always kept whole). Alpha is 1
   up to ``dilate_px`` from the regions' edge (signed: the default -2 is just inside) and falls to
   0 by a smoothstep over ``feather_px``; the defaults (-2, 8 at R = 256) end the soft edge at
   +6 px, i.e. *inside* the area a mask-based renderer generates (``generator.dilate_px``: 6 px
   at 256), whose own hard edge (real crop outside it) therefore never shows. When the renderer
   reports its generated mask (``render_crops(..., return_masks=True)``) the alpha is also
   feathered to 0 inside that mask. Pixel sizes are crop pixels at ``reference_resolution`` and
   scale with the crop resolution.
2. **Colour matching** of the generated crop to the original on a ring: the band along the soft
   edge, inside the pasted area, away from the mouth and from where an edit moved the face's
   outline (pixels the renderer generated but was not asked to change). ``"lowfreq"`` (default) multiplies each channel by a smooth gain map, the
   ratio of ring-weighted Gaussian averages of original and generated (normalised convolution, so
   the ring's gain reaches into the mask and follows lighting gradients); ``"meanstd"`` maps the
   ring's per-channel mean and standard deviation; ``"none"`` skips it.
3. **Paste** with ``crop_io.paste_crop``: only the crop's rectangle is touched, and pixels where
   alpha is 0 keep their exact original values.

Frames without a face are returned untouched (the same array, bit for bit).

Measured on talk_b (crop 256, frames 150-199 every 7th; a renderer-like fake: real crop outside
the renderer's mask, the real crop under a colour error inside it), crop PSNR after compositing,
none / meanstd / lowfreq: global gain+offset 34.9 / 67.0 / 54.6 dB; vertical light gradient
38.6 / 44.3 / 56.7; horizontal gradient with a tint 38.9 / 42.5 / 57.4; blur + tint 35.3 / 37.7 /
37.4. A perfect render is left exactly as it is by both. lowfreq is the default: real renderer
errors are smooth and spatially varying, and it is only beaten on a purely global affine error.
Visually, an uncorrected tint shows the lower-face region's triangle-edged top as a zigzag seam
under the nose; with lowfreq it is invisible, and ``smooth_px`` rounds the zigzag where the content
itself differs (the opening changes the numbers above by < 0.5 dB, never for the worse).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dubstudio.rendering.crop_io import crop_region, extract_crop, feather, paste_crop, paste_weight
from dubstudio.masks.evaluate import effective_from_maps
from dubstudio.masks.layer import MaskLayer
from dubstudio.masks.mapping import FrameUV, frame_uv
from dubstudio.tracking.crops import MASK_LOWER_FACE, MASK_MOUTH

__all__ = [
    "CompositeSettings",
    "CropMasks",
    "Compositor",
    "alpha_from_regions",
    "match_colour",
    "blend_crop",
    "matched_colour",
    "detail_layer",
    "COLOUR_METHODS",
]

COLOUR_METHODS = ("lowfreq", "meanstd", "none")


@dataclass(frozen=True)
class CompositeSettings:
    regions: tuple[int, ...] = (MASK_LOWER_FACE, MASK_MOUTH)  # region-mask values replaced
    dilate_px: float = -2.0  # alpha = 1 up to this signed distance from the regions' edge (< 0: inside)
    feather_px: float = 8.0  # then falls to 0 over this distance
    colour: str = "lowfreq"  # "lowfreq" | "meanstd" | "none"
    ring_px: float = 12.0  # colour-matching band: from this far inside the alpha = 1 edge to alpha = 0
    mouth_guard_px: float = 6.0  # ring keeps this far from the mouth
    smooth_px: float = 12.0  # morphological opening of the regions (rounds the triangle-edged outline)
    gain_sigma_px: float = 24.0  # Gaussian sigma of the low-frequency gain map
    max_gain: float = 1.5  # gains are clamped to [1/max_gain, max_gain]
    # the original frame's fine detail (skin, stubble, pores) on top of the render, carried along by
    # the edit's motion, never on the mouth (detail_layer); 0 = off (the render's own, softer skin)
    detail: float = 1.0
    detail_sigma_px: float = 3.0  # the detail is the frame minus its Gaussian blur of this sigma
    reference_resolution: int = 256  # the *_px values are crop pixels at this resolution

    def __post_init__(self) -> None:
        if self.colour not in COLOUR_METHODS:
            raise ValueError(f"unknown colour matching {self.colour!r}: use one of {', '.join(COLOUR_METHODS)}")
        bad = [r for r in self.regions if r not in (MASK_LOWER_FACE, MASK_MOUTH)]
        if not self.regions or bad:
            raise ValueError(f"regions must be a non-empty subset of (1 lower face, 2 mouth), got {self.regions}")
        if not 0.0 <= self.detail <= 1.0:
            raise ValueError(f"detail must be in [0, 1], got {self.detail}")

    def px(self, value: float, resolution: int) -> float:
        return float(value) * resolution / self.reference_resolution


@dataclass
class CropMasks:
    """Per-frame compositing masks in crop space (R x R)."""

    alpha: np.ndarray  # float32 in [0, 1]
    ring: np.ndarray  # bool: where colours are matched
    mouth: np.ndarray  # bool: mouth region (lips + interior) of the tracked expression
    regions: np.ndarray  # uint8 0/1/2 (union of tracked and edited)
    has_face: bool
    # (R, R, 2) crop px: where each pixel of the edited face was in the tracked one, minus where it
    # is now (0 off the mesh); None when nothing is edited
    flow: np.ndarray | None = None
    # float32 (R, R) or None: the share of each pixel that the renderer took from the shot's own
    # frames (the mouth detail's references), which are already in the shot's colours: the colour
    # matching, made for the neural render, leaves that share as it is (on talk_d its gain of
    # ~1.03 on the references' mouth cost 0.009 mouth LPIPS; twenty-second session)
    footage: np.ndarray | None = None


def _distance_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest pixel of ``mask`` (0 inside)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (px) to the edge of ``mask``: positive outside, negative inside."""
    out = _distance_outside(mask)
    if mask.all():
        return np.full(mask.shape, -np.inf, np.float32)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(mask, -inside, out).astype(np.float32)


def alpha_from_regions(regions: np.ndarray, settings: CompositeSettings) -> tuple[np.ndarray, np.ndarray]:
    """(alpha float32, ring bool) for an R x R region mask (see the module docstring)."""
    r = regions.shape[0]
    sel = np.isin(regions, settings.regions)
    if not sel.any():
        return np.zeros((r, r), np.float32), np.zeros((r, r), bool)
    k = int(round(settings.px(settings.smooth_px, r)))
    if k > 0:  # an opening stays inside the regions (inside what a renderer generated); keep the mouth whole
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        sel = (cv2.morphologyEx(sel.astype(np.uint8), cv2.MORPH_OPEN, disk) > 0) | (regions == MASK_MOUTH)
    sd = signed_distance(sel)
    dil, fea, ring = (settings.px(v, r) for v in (settings.dilate_px, settings.feather_px, settings.ring_px))
    t = np.clip((sd - dil) / max(fea, 1e-6), 0.0, 1.0)
    alpha = (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)  # 1 up to dil, smoothstep to 0 at dil + fea
    # The ring: a band along the composited edge, inside the pasted area (so it lies where a
    # renderer generated pixels), minus the mouth, whose content an edit changes on purpose.
    ring_mask = (alpha > 0) & (sd > dil - ring)
    if MASK_LOWER_FACE in settings.regions:
        guard = settings.px(settings.mouth_guard_px, r)
        ring_mask &= _distance_outside(regions == MASK_MOUTH) > guard
    return alpha, ring_mask


def _moved_face(tracked: np.ndarray, edited: np.ndarray, settings: CompositeSettings) -> np.ndarray:
    """(B, R, R) bool: where the edit moved the face's outline (the replaced regions of the tracked
    and the edited expression differ), grown by ``mouth_guard_px``. The colour ring leaves it out:
    there the original shows, say, the chin of an open jaw and the render the neck below a closed
    one, a difference the edit asked for; matching it made a bright patch on the chin."""
    sel = lambda m: np.isin(m, settings.regions)  # noqa: E731
    diff = (sel(tracked) != sel(edited)).astype(np.uint8)
    k = int(round(settings.px(settings.mouth_guard_px, tracked.shape[-1])))
    if k > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        diff = np.stack([cv2.dilate(d, disk) for d in diff])
    return diff > 0


def _limit_to_generated(alpha: np.ndarray, ring: np.ndarray, generated: np.ndarray, settings: CompositeSettings) -> tuple[np.ndarray, np.ndarray]:
    """Alpha falling to 0 at the edge of the renderer's generated pixels (smoothstep inward)."""
    if generated.all():
        return alpha, ring
    r = alpha.shape[0]
    inside = cv2.distanceTransform(generated.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip(inside / max(settings.px(settings.feather_px, r), 1e-6), 0.0, 1.0)
    limit = t * t * (3.0 - 2.0 * t)
    return (alpha * limit).astype(np.float32), ring & generated


def match_colour(gen: np.ndarray, ref: np.ndarray, ring: np.ndarray, method: str = "lowfreq", sigma_px: float = 24.0, max_gain: float = 1.5) -> np.ndarray:
    """``gen`` (R, R, 3) adjusted so its colours match ``ref`` on the ``ring`` pixels; float32 0..255."""
    g = gen.astype(np.float32)
    if method == "none" or ring.sum() < 16:
        return g
    o = ref.astype(np.float32)
    w = ring.astype(np.float32)
    if method == "meanstd":
        mg, mo = g[ring].mean(axis=0), o[ring].mean(axis=0)
        sg, so = g[ring].std(axis=0), o[ring].std(axis=0)
        scale = np.clip(so / np.maximum(sg, 1e-3), 1 / max_gain, max_gain)
        return (g - mg) * scale + mo
    if method == "lowfreq":
        # Normalised convolution of the ring values; where the ring is far away the gain tends to
        # the ring's global ratio (the k-weighted prior), so the mask centre gets a sane value.
        blur = lambda a: cv2.GaussianBlur(a, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)  # noqa: E731
        num = blur(o * w[..., None])
        den = blur(g * w[..., None])
        k = 0.02
        go, gg = o[ring].mean(axis=0), g[ring].mean(axis=0)
        gain = (num + k * go) / np.maximum(den + k * gg, 1e-3)
        gain = np.clip(gain, 1 / max_gain, max_gain)
        return g * gain
    raise ValueError(f"unknown colour matching {method!r}: use one of {', '.join(COLOUR_METHODS)}")


def matched_colour(gen_crop: np.ndarray, real_crop: np.ndarray, masks: CropMasks, settings: CompositeSettings) -> np.ndarray:
    """``gen_crop`` colour-matched on the ring (``match_colour``), except the share of each pixel
    taken from the shot's own frames (``masks.footage``); float32 0..255."""
    g = match_colour(gen_crop, real_crop, masks.ring, settings.colour, settings.px(settings.gain_sigma_px, real_crop.shape[0]), settings.max_gain)
    if masks.footage is None:
        return g
    f = np.clip(np.asarray(masks.footage, np.float32), 0.0, 1.0)[..., None]
    return g * (1.0 - f) + gen_crop.astype(np.float32) * f


def blend_crop(real_crop: np.ndarray, gen_crop: np.ndarray, masks: CropMasks, settings: CompositeSettings) -> np.ndarray:
    """The composite in crop space (what the frame shows inside the box), uint8; for metrics."""
    if not masks.has_face:
        return real_crop.copy()
    g = matched_colour(gen_crop, real_crop, masks, settings)
    a = masks.alpha[..., None]
    real = real_crop.astype(np.float32)
    return np.clip(real + (g - real) * a + 0.5, 0, 255).astype(np.uint8)


def frame_user_mask(
    layer: MaskLayer,
    tracking,
    i: int,
    resolution: int,
    controls: np.ndarray | None = None,
    settings: CompositeSettings | None = None,
    model=None,
    regions: np.ndarray | None = None,
    mapping: FrameUV | None = None,
) -> np.ndarray:
    """(R, R) float32 effective mask of frame ``i`` in its crop (zeros without a face).

    ``regions`` (R, R) uint8: the automatic region masks to start from (the compositor passes
    its own); by default the visible-triangle regions of ``mapping`` (tracked) united with the
    edited expression's. ``mapping``: a cached ``frame_uv`` of the tracked frame."""
    r = int(resolution)
    if not tracking.has_face[i]:
        return np.zeros((r, r), np.float32)
    settings = settings or CompositeSettings()
    model = model or tracking.model()
    base = mapping if mapping is not None and mapping.resolution == r and mapping.size == layer.size else frame_uv(tracking, i, r, None, model, layer.size, texels=False)
    maps = [base]
    if controls is not None:
        maps.append(frame_uv(tracking, i, r, controls, model, layer.size, texels=False))
    if regions is None:
        regions = np.maximum.reduce([m.regions for m in maps])
    auto, _ = alpha_from_regions(regions, settings)
    return effective_from_maps(layer, i, maps, auto)


def user_alpha_and_ring(effective: np.ndarray, regions: np.ndarray, settings: CompositeSettings) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, colour-matching ring) from an effective mask: alpha is the mask itself; the ring
    is the band of ``ring_px`` inside its 0.5 edge plus its soft edge, away from the mouth."""
    r = effective.shape[0]
    alpha = np.clip(effective, 0.0, 1.0).astype(np.float32)
    sel = alpha >= 0.5
    if not sel.any():
        return alpha, np.zeros((r, r), bool)
    sd = signed_distance(sel)
    ring = (alpha > 0) & (sd > -settings.px(settings.ring_px, r))
    if MASK_LOWER_FACE in settings.regions:
        ring &= _distance_outside(regions == MASK_MOUTH) > settings.px(settings.mouth_guard_px, r)
    return alpha, ring


class Compositor:
    """Composites generated crops of one tracked shot into its frames.

    ``masks(indices, controls)`` rasterizes a batch of frames once; ``composite(frame, i, crop)``
    pastes one crop (computing its masks if not given). With ``user_mask`` (the project's
    ``shot.masks.load_user_mask``) the alpha is the effective mask of ``frame_user_mask``:
    the automatic alpha plus the user's UV-space paint/erase, grown or shrunk, then limited to
    the generated pixels as usual; the colour ring follows its edge.
    """

    def __init__(self, tracking, resolution: int, settings: CompositeSettings | None = None, model=None, user_mask=None) -> None:
        self.tracking = tracking
        self.resolution = int(resolution)
        self.settings = settings or CompositeSettings()
        self.model = model or tracking.model()
        # The user's mask edits (``masks.MaskLayer``, see ``shot.masks.load_user_mask``); None or an
        # empty layer keeps the automatic alpha bit for bit.
        self.user_mask = user_mask

    def _raster(self, indices: list[int], controls: np.ndarray | None, flow: bool = False):
        """Region masks (B, R, R) uint8, z-buffered (no UV interpolation needed here); with
        ``flow`` also (B, R, R, 2) float32: for each pixel the edited mesh covers, the crop position
        of the same surface point in the *tracked* mesh minus the pixel's own (see CropMasks)."""
        import torch

        from dubstudio.rendering.rasterizer import crop_vertices, mesh_tables, rasterize, region_masks
        from dubstudio.tracking.crops import triangle_groups

        ctrl = [None] * len(indices) if controls is None else controls
        verts = np.stack([crop_vertices(self.tracking, i, self.resolution, c, self.model) for i, c in zip(indices, ctrl)])
        tris = mesh_tables()[0]
        frags = rasterize(torch.as_tensor(verts, dtype=torch.float32), torch.as_tensor(tris), self.resolution)
        lower, mouth = triangle_groups(self.model.identity)
        regions = region_masks(frags, lower, mouth).numpy()
        if not flow:
            return regions
        r = self.resolution
        fid, bary = frags.face_id.numpy(), frags.bary.numpy()
        yy, xx = np.mgrid[0:r, 0:r].astype(np.float32) + 0.5
        out = np.zeros((len(indices), r, r, 2), np.float32)
        for k, i in enumerate(indices):
            cov = fid[k] >= 0
            if not cov.any():
                continue
            tracked = crop_vertices(self.tracking, i, r, None, self.model)[:, :2]
            corners = tracked[tris[fid[k][cov]]]  # (N, 3, 2)
            src = (bary[k][cov][..., None] * corners).sum(axis=1)
            ok = np.isfinite(src).all(axis=1)
            out[k][cov] = np.where(ok[:, None], src - np.stack([xx[cov], yy[cov]], axis=1), 0.0)
        return regions, out

    def masks(self, indices, controls: np.ndarray | None = None, generated: np.ndarray | None = None,
              footage: np.ndarray | None = None) -> list[CropMasks]:
        """Compositing masks for frames ``indices``; ``controls`` (len(indices), C) edited
        expressions (or one (C,) row for all) or None for the tracked ones.

        ``generated`` (len(indices), R, R) bool, when the renderer reports which pixels it
        generated (it passes the real crop through elsewhere, with a hard edge): the alpha is
        then also feathered to 0 *inside* that mask over ``feather_px``, so its hard edge never
        shows, and the colour ring is kept inside it. ``footage`` (len(indices), R, R) float: see
        ``CropMasks.footage``."""
        indices = [int(i) for i in np.atleast_1d(indices)]
        r = self.resolution
        regions = self._raster(indices, None)
        mouth = regions == MASK_MOUTH
        moved = flow = None
        if controls is not None:
            ctrl = np.asarray(controls, np.float64)
            if ctrl.ndim == 1:
                ctrl = np.broadcast_to(ctrl, (len(indices), ctrl.shape[0]))
            if len(ctrl) != len(indices):
                raise ValueError(f"{len(ctrl)} control rows for {len(indices)} frames")
            edited, flow = self._raster(indices, ctrl, flow=True)
            moved = _moved_face(regions, edited, self.settings)
            regions = np.maximum(regions, edited)  # union; mouth wins
        user = self.user_mask is not None and not self.user_mask.is_empty
        out = []
        for k, i in enumerate(indices):
            face = bool(self.tracking.has_face[i])
            if face:
                if user:
                    alpha, ring = self._user_alpha(i, regions[k], None if controls is None else ctrl[k])
                else:
                    alpha, ring = alpha_from_regions(regions[k], self.settings)
                if generated is not None:
                    alpha, ring = _limit_to_generated(alpha, ring, np.asarray(generated[k], bool), self.settings)
                if moved is not None:
                    ring = ring & ~moved[k]
            else:
                alpha, ring = np.zeros((r, r), np.float32), np.zeros((r, r), bool)
            out.append(CropMasks(alpha=alpha, ring=ring, mouth=mouth[k], regions=regions[k], has_face=face,
                                 flow=None if flow is None else flow[k],
                                 footage=None if footage is None or not face else np.asarray(footage[k], np.float32)))
        return out

    def _user_alpha(self, i: int, regions: np.ndarray, controls: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Alpha and ring from the automatic alpha of ``regions`` plus the user's mask edits."""
        effective = frame_user_mask(self.user_mask, self.tracking, i, self.resolution, controls, self.settings, self.model, regions=regions)
        return user_alpha_and_ring(effective, regions, self.settings)

    def composite(self, frame: np.ndarray, i: int, gen_crop: np.ndarray, masks: CropMasks | None = None, controls: np.ndarray | None = None) -> np.ndarray:
        """``frame`` with ``gen_crop`` composited at frame ``i``'s crop box (a new array; the
        frame itself when there is no face)."""
        if not self.tracking.has_face[i]:
            return frame
        if gen_crop.shape[:2] != (self.resolution, self.resolution):
            raise ValueError(f"generated crop is {gen_crop.shape[:2]}, expected {self.resolution}x{self.resolution}")
        if masks is None:
            masks = self.masks([i], None if controls is None else np.asarray(controls)[None])[0]
        box = self.tracking.crop[i]
        s = self.settings
        gen = gen_crop
        if s.colour != "none":
            real_crop = extract_crop(frame, box, self.resolution)
            gen = np.clip(matched_colour(gen_crop, real_crop, masks, s) + 0.5, 0, 255).astype(np.uint8)
        detail = detail_layer(frame, box, gen, masks, s) if s.detail > 0 else None
        return paste_crop(frame, gen, box, masks.alpha, detail)


    def weight(self, frame_shape: tuple[int, ...], i: int, masks: CropMasks) -> tuple[int, int, np.ndarray] | None:
        """``(y0, x0, weight)``: the share of each pixel of frame ``i``'s crop rectangle that
        :meth:`composite` takes from the render (``crop_io.paste_weight``); None without a face."""
        if not self.tracking.has_face[i]:
            return None
        return paste_weight(frame_shape, self.tracking.crop[i], masks.alpha)


def detail_layer(frame: np.ndarray, box: np.ndarray, gen_crop: np.ndarray, masks: CropMasks, settings: CompositeSettings) -> np.ndarray:
    """What to add to the upsampled ``gen_crop`` in the frame rectangle of ``box``
    (``crop_io.crop_region``) so that its fine detail is the original frame's: frequency separation,
    the render's low band plus the original's high band, split by a Gaussian of ``detail_sigma_px``
    (crop pixels at the reference resolution). The render is an L1 regression at R pixels: it keeps
    a face's shape and shading but smooths skin texture, stubble and pores, and upsampling to the
    frame softens it further; this puts the actor's own texture back, and a perfect render (the
    frame's own crop) comes out as the frame, not over-sharpened. An edit moves the face,
    so the detail is carried along by ``masks.flow`` (tracked -> edited surface point); on the
    mouth (lips and interior, tracked or edited, plus ``mouth_guard_px``) the render's content is
    new, so no detail is added there, with a soft edge over half of ``feather_px``. Scaled by
    ``settings.detail``. Looked at on talk_d (a 1080x1920 shot, face ~300 px, crops of 128): the
    band a 128 px crop cannot hold (the frame minus its crop upsampled) brings back almost none of
    the beard, sigmas of 1 and 2 crop pixels most of it (docs/decisions.md, seventh session)."""
    r = gen_crop.shape[0]
    x0, y0, x1, y1, inv = crop_region(frame.shape, box, r)
    size = (x1 - x0, y1 - y0)
    scale = float(box[2]) / r  # frame pixels per crop pixel
    pad = int(np.ceil(3 * settings.px(settings.detail_sigma_px, r) * scale))
    h, w = frame.shape[:2]
    ya, yb, xa, xb = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
    area = frame[ya:yb, xa:xb].astype(np.float32)  # with a margin, so the blur sees past the edge
    blur = cv2.GaussianBlur(area, (0, 0), sigmaX=settings.px(settings.detail_sigma_px, r) * scale)
    hf = (area - blur)[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
    src = cv2.warpAffine(gen_crop, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    src_hf = src - cv2.GaussianBlur(src, (0, 0), sigmaX=settings.px(settings.detail_sigma_px, r) * scale)
    if masks.flow is not None and np.any(masks.flow):
        fx = cv2.warpAffine(masks.flow[..., 0], inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) * scale
        fy = cv2.warpAffine(masks.flow[..., 1], inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) * scale
        gy, gx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
        hf = cv2.remap(hf, gx + fx, gy + fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mouth = masks.regions == MASK_MOUTH
    guard = settings.px(settings.mouth_guard_px, r)
    keep = _distance_outside(mouth) > guard if mouth.any() else np.ones_like(mouth)
    weight = feather(keep.astype(np.uint8), settings.px(settings.feather_px, r) / 2) * float(settings.detail)
    w = cv2.warpAffine(weight.astype(np.float32), inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (hf - src_hf) * w[..., None]
