"""Render face crops of an adapted actor: the interface compositing, export and eval build on.

    r = ActorRenderer.load(project, device)            # latest adaptation of the project
    crops = r.render_crops(range(150, 200))            # (n, R, R, 3) uint8, tracked expression
    crops = r.render_crops(idx, controls=edited)       # edited named controls, (7,) or (n, 7)
    crops = r.render_crops(idx, mel=dub_windows)       # another audio track, (n, 80, 16)

Each requested frame i is rendered as the centre of the window i-h..i+h (clamped to the shot),
with the actor's fixed reference frame (chosen at adaptation: the training frame closest to the
median expression) and the audio window of frame i. Outside the mask (rasterized lower face +
mouth, dilated; with edited controls the union of the edited and the tracked mask, so a closed
mouth never leaves the original open chin visible below it) the result is the real crop, exactly;
so it is, away from the mouth, where the face shows texels adaptation never saw (a head turned
further than in any training frame: ``texel_coverage``).
Frames without a tracked face are passed through untouched.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from dubstudio.core.errors import ProjectError
from dubstudio.project.store import Project
from dubstudio.rendering.crop_io import extract_crop
from dubstudio.nn.generator import UNetGenerator, deferred_render, dilate_px, render_mask, sample_textures
from dubstudio.rendering.rasterizer import rasterize_frames
from dubstudio.rendering.texel_coverage import unseen_pixels
from dubstudio.nn import checkpoint as ckpt
from dubstudio.nn.audio_features import mel_windows_for_video
from dubstudio.shot.tracking import tracking_of

log = logging.getLogger(__name__)


class ActorRenderer:
    def __init__(self, project: Project, generator: UNetGenerator, texture, cfg, reference_frame: int,
                 device: torch.device, info: dict, seen_texels: np.ndarray | None = None) -> None:
        self.project = project
        self.gen = generator.eval().requires_grad_(False)
        self.texture = texture.eval().requires_grad_(False)
        self.cfg = cfg
        self.device = device
        self.resolution = int(cfg.resolution)
        self.window = int(cfg.generator.window)
        self.reference_frame = int(reference_frame)
        self.info = info  # mode, actor file, steps, ...
        self.tracking, _ = tracking_of(project)
        self._model = self.tracking.model()
        self._reader = None
        self._mel = None
        self._ref = None
        self.px = dilate_px(self.resolution)
        # (T, T) bool texels adaptation sampled (None for actors adapted before it was stored):
        # pixels on the others are left to the original (``texel_coverage.unseen_pixels``)
        self.seen_texels = seen_texels

    # -- loading --

    @classmethod
    def load(cls, project: Project | str | Path, device: torch.device | str = "cpu", mode: str | None = None,
             actor: str | Path | None = None) -> ActorRenderer:
        """The project's latest adaptation (or that of ``mode``, or the actor file ``actor``)."""
        from dubstudio.shot.adaptation import actor_file_of
        from dubstudio.nn.config import TrainConfig

        if not isinstance(project, Project):
            project = Project.open(project)
        device = torch.device(device)
        if actor is None:
            actor = actor_file_of(project.root, mode)
        a = ckpt.load(actor, "actor", map_location="cpu")
        cfg = TrainConfig.from_dict(a["config"])
        if a["generator"] is not None:
            gstate = a["generator"]
        else:
            p = a["prior"]
            if not Path(p["path"]).is_file():
                raise ProjectError(
                    f"the prior renderer {p['path']} this actor was adapted to is missing; put it back or adapt again."
                )
            if ckpt.fingerprint(p["path"]) != p["fingerprint"]:
                raise ProjectError(
                    f"the prior renderer {p['path']} has changed since this actor was adapted; adapt again "
                    f"(texture mode needs the exact prior it was trained against)."
                )
            gstate = ckpt.load(p["path"], "prior", map_location="cpu")["generator"]
        gen = UNetGenerator(cfg.generator)
        gen.load_state_dict(gstate)
        tex = cfg.new_texture()
        tex.load_state_dict({k: v.float() for k, v in a["texture"].items()})
        _, track_key = tracking_of(project)
        if a.get("tracking_key") != track_key:
            log.warning("the shot was tracked again or its tracking corrected after adaptation; adapt again for best results")
        info = {"mode": a["mode"], "actor_file": str(actor), "steps": int(a["step"]), "frames": a["frames"]}
        seen = a.get("seen_texels")
        seen = None if seen is None else seen.cpu().numpy().astype(bool)
        return cls(project, gen.to(device), tex.to(device), cfg, a["reference_frame"], device, info, seen)

    # -- sources --

    def _reader_(self):
        if self._reader is None:
            from dubstudio.io.video import VideoReader

            self._reader = VideoReader(self.project.check_video())
        return self._reader

    def _crop(self, i: int) -> np.ndarray:
        return extract_crop(self._reader_().frame(int(i)), self.tracking.crop[int(i)], self.resolution)

    def mel_windows(self) -> np.ndarray:
        """(n_frames, 80, 16) mel windows of the shot's own audio (computed once)."""
        if self._mel is None:
            self._mel = mel_windows_for_video(self.project.check_video(), self.tracking.n_frames, self.tracking.fps)
        return self._mel

    def reference_crop(self) -> np.ndarray:
        if self._ref is None:
            self._ref = self._crop(self.reference_frame)
        return self._ref

    def fingerprint(self) -> str:
        """What this renderer draws, as a hash: its weights, reference frame, texel coverage and
        device kind (a CPU and a GPU differ in the last bits). A stopped export resumes only
        with the same one (``dubstudio.export.resume``)."""
        import hashlib

        h = hashlib.sha256(f"actor-renderer:{self.resolution}:{self.window}:{self.reference_frame}:{self.device.type}:".encode())
        for m in (self.gen, self.texture):
            for k, v in m.state_dict().items():
                h.update(k.encode())
                h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
        if self.seen_texels is not None:
            h.update(np.packbits(self.seen_texels).tobytes())
        return h.hexdigest()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> ActorRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rendering --

    @torch.no_grad()
    def render_crops(self, indices, controls: np.ndarray | None = None, mel: np.ndarray | None = None,
                     batch: int = 16, return_masks: bool = False, shot_controls: np.ndarray | None = None):
        """(n, R, R, 3) uint8 rendered crops of frames ``indices`` (tracked or given ``controls``,
        the shot's audio or given ``mel`` windows). With ``return_masks`` also the (n, R, R) bool
        masks of generated pixels (everything else is the real crop).

        Each frame is the centre of a window of neighbours that the generator also sees, so the
        neighbours need the *same* controls as when they are rendered themselves: a caller that
        renders edited/dubbed controls in pieces (batches, one frame) passes the whole shot's
        ``shot_controls`` (n_frames, C); without it, neighbours outside ``indices`` are taken as
        tracked, and a dubbed mouth pops towards the original at every piece boundary.
        ``controls``, when also given, wins for the frames in ``indices``."""
        idx = np.asarray([int(i) for i in np.atleast_1d(indices)], np.int64)
        n, nf, r = len(idx), self.tracking.n_frames, self.resolution
        if n and (idx.min() < 0 or idx.max() >= nf):
            raise ProjectError(f"frames {int(idx.min())}..{int(idx.max())} are outside this {nf}-frame shot")
        n_ctrl = self.tracking.controls.shape[1]
        if shot_controls is not None:
            shot_controls = np.asarray(shot_controls, np.float64)
            if shot_controls.shape != (nf, n_ctrl):
                raise ValueError(f"shot_controls must be ({nf}, {n_ctrl}) for this shot, got {shot_controls.shape}")
            if controls is None:
                controls = shot_controls[idx]
        if controls is not None:
            controls = np.broadcast_to(np.asarray(controls, np.float64), (n, n_ctrl))
        if mel is not None:
            mel = np.asarray(mel, np.float32)
            if mel.shape[0] != n or mel.shape[1:] != self.mel_windows().shape[1:]:
                raise ValueError(f"mel must be (n, 80, 16) for n = {n} frames, got {mel.shape}")
        out = np.empty((n, r, r, 3), np.uint8)
        masks = np.zeros((n, r, r), bool)
        h = self.window // 2
        for s in range(0, n, batch):
            sel = idx[s : s + batch]
            win = np.clip(sel[:, None] + np.arange(-h, self.window - h)[None], 0, nf - 1)  # (b, T)
            need = np.unique(win)
            pos = {int(f): k for k, f in enumerate(need)}
            base = self.tracking.controls if shot_controls is None else shot_controls
            ctrl = base[need].astype(np.float64)
            if controls is not None:
                given = {}
                for k, f in enumerate(idx):
                    given.setdefault(int(f), controls[k])
                for k, f in enumerate(need):
                    if int(f) in given:
                        ctrl[k] = given[int(f)]
            crops = np.stack([self._crop(f) for f in need])
            fr = rasterize_frames(self.tracking, need, r, controls=ctrl, model=self._model)
            extra = None
            if controls is not None:
                extra = rasterize_frames(self.tracking, need, r, model=self._model).regions
            wi = torch.as_tensor(np.vectorize(pos.get)(win))
            dev = self.device
            crops_t = torch.from_numpy(crops).to(dev).permute(0, 3, 1, 2).float() / 255.0
            m = self.mel_windows()[sel] if mel is None else mel[s : s + batch]
            ref = torch.from_numpy(self.reference_crop()).to(dev).permute(2, 0, 1).float()[None] / 255.0
            wd = wi.to(dev)
            mask = render_mask(fr.regions.to(dev)[wd], self.px, None if extra is None else extra.to(dev)[wd])
            tex, _ = sample_textures({"a": self.texture}, ["a"] * len(sel), fr.uv.to(dev)[wd], where=mask)
            pred = deferred_render(
                self.gen, crops_t[wd], tex, mask, ref.expand(len(sel), -1, -1, -1),
                torch.from_numpy(np.ascontiguousarray(m)).to(dev).float(),
            )
            c = h  # centre frame of each window
            gen_u8 = (pred[:, c].permute(0, 2, 3, 1).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
            mk = (mask[:, c] > 0).cpu().numpy()
            real = crops[[pos[int(f)] for f in sel]]
            face = self.tracking.has_face[sel]
            mk &= face[:, None, None]
            if self.seen_texels is not None:
                centre = [pos[int(f)] for f in sel]
                uv, reg = fr.uv[centre].numpy(), fr.regions[centre].numpy()
                if extra is not None:
                    reg = np.maximum(reg, extra[centre].numpy())
                for k in range(len(sel)):
                    mk[k] &= ~unseen_pixels(uv[k], reg[k], self.seen_texels)
            out[s : s + len(sel)] = np.where(mk[..., None], gen_u8, real)
            masks[s : s + len(sel)] = mk
        return (out, masks) if return_masks else out
