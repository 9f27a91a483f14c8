"""Which mouth-detail settings suit this shot, measured on its own frames (issue 21).

How much of the mouth's picture should come from the actor's frames rather than from the neural
render depends on the shot. Where the render carries over well to expressions it was not trained
on (talk_c), its own low band is the better mouth; where it does not (talk_b, talk_long), a wider
band from the references is. No one setting wins on every clip (BENCHMARKS.md, "Mouth detail,
twenty-first session").

So each candidate is rendered on a few runs of check frames that the adaptation did not train on,
with every check frame's neighbours taken out of the references (they are near copies of it,
which a dubbed frame never has), and scored against the real mouth with masked LPIPS. The default
keeps its place unless another beats it clearly (``CheckSettings.margin``, in the median and frame
by frame); then the lowest median wins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from dubstudio.core.jobs import Progress
from dubstudio.rendering.crop_io import extract_crop
from dubstudio.rendering.mouth_detail import DetailedRenderer, DetailSettings, ReferenceBank, detail_resolution
from dubstudio.rendering.rasterizer import rasterize_frames
from dubstudio.rendering.render_job import render_with_masks
from dubstudio.tracking.crops import MASK_MOUTH

__all__ = ["CANDIDATES", "TRUST", "CheckSettings", "DetailCheck", "check_runs", "held_out", "check_detail"]

STAGE = "mouth detail check"  # the progress stage's name (the editor shows it)
# DetailSettings overrides tried on each shot; the first is the default
CANDIDATES: tuple[dict, ...] = ({}, {"sigma": 2.2}, {"low_mix": 0.3}, {"sigma": 2.2, "low_mix": 0.3})
# How far from the nearest reference the detail is still trusted (DetailSettings.match_full /
# match_none, in spacings of the shot's expressions). A dub's widest mouths are often beyond the
# default's reach (talk_d driven by dubber_a: 3-6 spacings at its five most open frames), where the
# render's own mouth shows. With every reference within 3 spacings of the test frames left out,
# wider trust was better on talk_b (mouth LPIPS 0.30 -> 0.19) and talk_c (0.155 -> 0.135) and worse
# on talk_d (0.130 -> 0.165): so it is checked per shot too, on the check runs with their near
# references left out (twenty-second session)
TRUST: tuple[dict, ...] = ({}, {"match_none": 8.0}, {"match_full": 4.0, "match_none": 12.0})


@dataclass(frozen=True)
class CheckSettings:
    # runs of check frames, spread over the shot: about ``share`` of its frames, between min_runs
    # and max_runs runs (more frames, a steadier choice; fewer, more to train on)
    min_runs: int = 3
    max_runs: int = 5
    share: float = 0.1
    length: int = 8  # consecutive frames per run
    exclude: int = 12  # references kept this many frames away from a check run
    # another candidate replaces the default only when its LPIPS is this share lower, in the
    # median and frame by frame: on talk_c the candidates came within 0-7 % either way on check
    # frames and were 4-10 % worse on its last 50; on the other clips the winner was 7-32 % better
    margin: float = 0.05
    min_frames: int = 150  # shorter shots are not checked (the held-out frames would be too large a share)
    # the trust is checked with every reference within this many spacings of a check frame's
    # expression left out (as a dubbed expression the shot never shows); 0: not checked
    far: float = 3.0


@dataclass
class DetailCheck:
    chosen: dict  # DetailSettings overrides
    frames: list[int]  # the check frames
    scores: list[dict] = field(default_factory=list)  # per candidate: its settings and median mouth LPIPS
    reason: str = ""  # why nothing was checked (then ``chosen`` is the default)
    far_scores: list[dict] = field(default_factory=list)  # per trust candidate, with the near references left out

    def settings(self, base: DetailSettings | None = None) -> DetailSettings:
        return replace(base or DetailSettings(), **self.chosen)

    def to_json(self) -> dict:
        return asdict(self)

    def _split(self) -> tuple[dict, dict]:
        """The chosen overrides as (band split, reach)."""
        reach = {k for t in TRUST for k in t}
        return ({k: v for k, v in self.chosen.items() if k not in reach},
                {k: v for k, v in self.chosen.items() if k in reach})

    def summary(self) -> str:
        """One short line for the editor's panel (``describe`` says why)."""
        if not self.scores:
            return f"default settings ({self.reason})"
        band, trust = self._split()
        parts = [f"more of the mouth from the shot's own frames ({_band_words(band, False)})"] if band else []
        if trust:
            parts.append(f"reaching up to {trust.get('match_none', DetailSettings().match_none):g} expression steps from the nearest frame")
        return ", ".join(parts or ["default settings"]) + f" (checked on {len(self.frames)} held-out frames)"

    def describe(self) -> str:
        if not self.scores:
            return f"mouth detail: default settings ({self.reason})"
        d = DetailSettings()
        band, trust = self._split()
        n = len(self.frames)
        if not band:
            text = f"mouth detail: the default settings, checked on {n} held-out frames (no other setting clearly better)."
        else:
            won = next(s["vs_default"] for s in self.scores if s["settings"] == band)
            text = (f"mouth detail: more of the mouth from the shot's own frames, {_band_words(band)}; mouth LPIPS "
                    f"{100 * (1 - won):.0f} % below the default's on {n} held-out frames.")
        if trust:
            won = next(s["vs_default"] for s in self.far_scores if s["settings"] == trust)
            full, none = trust.get("match_full", d.match_full), trust.get("match_none", d.match_none)
            text += (f" It also reaches further in expression: in full up to {full:g} steps from the nearest frame "
                     f"and not at all beyond {none:g} (default {d.match_full:g} and {d.match_none:g}; a step is the "
                     f"shot's typical change between neighbouring expressions); mouth LPIPS {100 * (1 - won):.0f} % "
                     f"below the default's where no frame of the shot is near.")
        return text


def _band_words(band: dict, defaults: bool = True) -> str:
    """A band split in an editor's words, not the settings' names."""
    d, parts = DetailSettings(), []
    if "sigma" in band:
        parts.append(f"detail finer than {band['sigma']:g} px" + (f" (default {d.sigma:g} px)" if defaults else ""))
    if "low_mix" in band:
        parts.append(f"{100 * band['low_mix']:.0f} % of its shading" + (f" (default {100 * d.low_mix:.0f} %)" if defaults else ""))
    return " and ".join(parts)


def check_runs(has_face: Sequence[bool], settings: CheckSettings = CheckSettings()) -> list[list[int]]:
    """Runs of ``settings.length`` consecutive frames with a face, centred at even shares of the
    shot (1/4, 1/2, 3/4 for three) and kept clear of its ends; [] for a shot shorter than
    ``settings.min_frames``. How many: about ``settings.share`` of the shot, within the bounds."""
    face = np.asarray(has_face, bool)
    n, L = len(face), settings.length
    count = int(np.clip(round(settings.share * n / L), settings.min_runs, settings.max_runs))
    count = min(count, n // (L + 2 * settings.exclude) - 1)  # each run's references clear of the next
    if n < settings.min_frames or count < settings.min_runs:
        return []
    runs = []
    for k in range(1, count + 1):
        start = int(round(k * n / (count + 1))) - L // 2
        run = [i for i in range(start, start + L) if face[i]]
        if len(run) >= L // 2:
            runs.append(run)
    return runs


def held_out(n_frames: int, runs: Sequence[Sequence[int]]) -> list[int]:
    """The shot's frames less the check runs: what the adaptation trains on."""
    out = set().union(*(set(r) for r in runs)) if runs else set()
    return [i for i in range(n_frames) if i not in out]


class _Once:
    """The base renderer's crops for each check run rendered once, shared by every candidate."""

    def __init__(self, base) -> None:
        self.base = base
        self.resolution = base.resolution
        self._memo: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray | None]] = {}

    def __getattr__(self, name: str):
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def render_crops(self, indices, controls=None, return_masks: bool = False):
        key = tuple(int(i) for i in np.atleast_1d(indices))
        if key not in self._memo:
            self._memo[key] = render_with_masks(self.base, list(key), controls)
        crops, masks = self._memo[key]
        if masks is None:
            masks = np.ones(crops.shape[:3], bool)
        return (crops, masks) if return_masks else crops


def check_detail(base, reader, references: Sequence[int], runs: Sequence[Sequence[int]], scorer,
                 candidates: Sequence[dict] = CANDIDATES, settings: CheckSettings = CheckSettings(),
                 progress: Progress | None = None, trust: Sequence[dict] = TRUST) -> DetailCheck:
    """Score each of ``candidates`` on the check ``runs`` (frames the adaptation of ``base`` did
    not train on) against the real mouths read from ``reader``; references from ``references``,
    less those within ``settings.exclude`` of the run. ``scorer``: an ``eval.metrics.LpipsScorer``."""
    frames = [int(i) for r in runs for i in r]
    default = dict(candidates[0]) if candidates else {}
    if not frames:
        return DetailCheck(default, [], reason="the shot is too short to hold out check frames")
    if not getattr(scorer, "available", True):
        return DetailCheck(default, frames, reason=f"no LPIPS to measure with: {scorer.reason}")
    tracking = base.tracking
    base_settings = DetailSettings()
    res = detail_resolution(tracking, int(base.resolution), base_settings)
    bank = ReferenceBank(tracking, reader, references, res, base_settings)
    once = _Once(base)
    real = np.stack([extract_crop(reader.frame(i), tracking.crop[i], res) for i in frames])
    mouth = rasterize_frames(tracking, frames, res).regions.numpy() == MASK_MOUTH
    # per run, the bank less the references within ``exclude`` of it (the same for every candidate)
    subs = []
    for run in runs:
        gap = np.abs(bank.frames[:, None] - np.asarray(run)[None]).min(1)
        if (gap <= settings.exclude).all():
            return DetailCheck(default, frames, reason="every reference frame is next to a check frame")
        subs.append(bank.without(bank.frames[gap <= settings.exclude].tolist()))
    total = (len(candidates) + len(trust)) * len(frames)  # progress in frames rendered
    if progress is not None:
        progress.stage(STAGE)
    done, scores = _score(once, runs, subs, candidates, base_settings, scorer, real, mouth, progress, 0, total)
    best = _clearly_best(scores, settings)
    chosen = dict(candidates[best])
    far_scores: list[dict] = []
    if trust and settings.far > 0:
        # the same runs with every reference near a check frame's expression left out: how far
        # the detail should still be trusted, under the band split just chosen
        c = np.asarray(tracking.controls, np.float64)
        far_subs = []
        for run, sub in zip(runs, subs):
            d = np.sqrt(((sub.controls[:, None] - c[run][None]) ** 2).sum(-1)).min(1) / bank.scale
            near_frames = sub.frames[d < settings.far].tolist()
            if len(near_frames) == len(sub.frames):
                far_subs = []
                break
            far_subs.append(sub.without(near_frames) if near_frames else sub)
        if far_subs:
            _, far_scores = _score(once, runs, far_subs, [{**chosen, **t} for t in trust], base_settings, scorer, real, mouth,
                                   progress, done, total)
            for sc, t in zip(far_scores, trust):
                sc["settings"] = dict(t)
            chosen.update(trust[_clearly_best(far_scores, settings)])
    return DetailCheck(chosen, frames, scores, far_scores=far_scores)


def _score(once, runs, subs, candidates, base_settings, scorer, real, mouth, progress=None, done=0, total=0):
    """Each candidate rendered on the runs (each with its bank) and scored: (frames done, scores)."""
    per_frame: list[np.ndarray] = []
    for cand in candidates:
        outs = []
        for run, sub in zip(runs, subs):
            outs.append(DetailedRenderer(once, sub.with_settings(replace(base_settings, **cand))).render_crops(run))
            done += len(run)
            if progress is not None:
                progress.update(done, total)
        per_frame.append(np.asarray(scorer.score_batch(np.concatenate(outs), real, mouth), float))
    # each candidate against the first frame by frame (some frames are harder for all of them):
    # the median of the ratios, so a few frames cannot decide
    ends = np.cumsum([0] + [len(r) for r in runs])
    scores = [{"settings": dict(cand), "lpips": round(float(np.median(lp)), 4),
               "vs_default": round(float(np.median(lp / np.maximum(per_frame[0], 1e-6))), 4),
               "runs": [round(float(np.median(lp[a:b])), 4) for a, b in zip(ends[:-1], ends[1:])]}
              for cand, lp in zip(candidates, per_frame)]
    return done, scores


def _clearly_best(scores: list[dict], settings: CheckSettings) -> int:
    """The first candidate unless another is clearly better: lower by the margin both in level
    (the median) and frame by frame (the median ratio); on talk_c one candidate was better on
    most frames and much worse on the rest. Then the lowest median wins."""
    ok = [k for k in range(1, len(scores)) if scores[k]["lpips"] <= scores[0]["lpips"] * (1 - settings.margin)
          and scores[k]["vs_default"] <= 1 - settings.margin]
    return min(ok, key=lambda k: scores[k]["lpips"]) if ok else 0
