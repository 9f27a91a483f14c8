"""The mouth detail's settings chosen per shot, on frames the adaptation held out (issue 21): where
the check frames sit, the bank views it uses, and the choice itself on real footage with renderers
whose low band is known to be right or wrong."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dubstudio.app.detail import plan_check
from dubstudio.core.errors import NoFaceError
from dubstudio.eval.detail_check import TRUST, CheckSettings, check_detail, check_runs
from dubstudio.eval.metrics import LpipsScorer
from dubstudio.io.video import VideoReader
from dubstudio.rendering.crop_io import extract_crop
from dubstudio.rendering.mouth_detail import DetailSettings, ReferenceBank, detail_resolution


def test_check_runs_are_spread_over_the_shot_and_short_shots_have_none():
    runs = check_runs([True] * 200)
    assert [len(r) for r in runs] == [8, 8, 8]
    assert np.allclose([np.mean(r) for r in runs], [50, 100, 150], atol=1)  # at 1/4, 1/2, 3/4
    assert all(np.array_equal(np.diff(r), np.ones(7)) for r in runs)  # consecutive frames
    assert [len(check_runs([True] * n)) for n in (149, 150, 300, 500, 5000)] == [0, 3, 4, 5, 5]  # ~10 %, 3 to 5 runs
    face = [True] * 200
    face[90:110] = [False] * 20  # no face in the middle: that run is dropped, not moved
    assert np.allclose([np.mean(r) for r in check_runs(face)], [50, 150], atol=1)
    assert len(check_runs([True] * 300, CheckSettings(min_runs=5, max_runs=5, length=4))) == 5


def test_the_adaptation_trains_on_the_shot_less_the_check_frames():
    runs, train = plan_check([True] * 200, None)
    held = {i for r in runs for i in r}
    assert len(held) == 24 and set(train) == set(range(200)) - held
    # given training frames stay as given; the check keeps only frames outside them
    runs, train = plan_check([True] * 200, list(range(100)))
    assert train == list(range(100)) and len(runs) == 2 and all(i >= 100 for r in runs for i in r)
    assert plan_check([True] * 120, None) == ([], None)  # a short shot: every frame trains, nothing is checked
    assert plan_check([True] * 200, list(range(120))) == ([], list(range(120)))  # one run left: too few to decide


@pytest.fixture(scope="module")
def shot(talk_b_shot):
    return talk_b_shot


@pytest.mark.media
def test_a_bank_without_some_frames_or_under_other_settings_shares_the_pixels(shot):
    _, tracking, clip = shot
    with VideoReader(clip) as rd:
        bank = ReferenceBank(tracking, rd, range(0, 100), 64, DetailSettings(bank_size=20))
    sub = bank.without(bank.frames[:5].tolist() + [999])  # a frame not in the bank is ignored
    assert sub.frames.tolist() == bank.frames[5:].tolist() and len(sub.sources) == len(sub.verts) == 15
    assert sub.sources[0] is bank.sources[5] and sub.scale == bank.scale  # the shot's spacing is kept
    assert len(bank.frames) == 20  # the bank itself is untouched
    other = bank.with_settings(DetailSettings(bank_size=20, sigma=2.2))
    assert other.settings.sigma == 2.2 and bank.settings.sigma == 1.5 and other.sources is bank.sources
    with pytest.raises(ValueError):
        bank.with_settings(DetailSettings(bank_size=20, direct=False))  # decodes other pixels
    with pytest.raises(NoFaceError):
        bank.without(bank.frames.tolist())


class Real:
    """A renderer whose mouth is right: the real crop at the footage's density (then blurred by
    ``blur`` px: its low band washed out)."""

    def __init__(self, tracking, clip: Path, blur: float = 0.0) -> None:
        self.tracking, self.clip, self.blur = tracking, clip, blur
        self.resolution = detail_resolution(tracking, 128, DetailSettings())

    def render_crops(self, indices, controls=None):
        with VideoReader(self.clip) as r:
            crops = [extract_crop(r.frame(int(i)), self.tracking.crop[int(i)], self.resolution) for i in indices]
        return np.stack([cv2.GaussianBlur(c, (0, 0), self.blur) if self.blur else c for c in crops])


@pytest.mark.media
def test_the_check_keeps_a_right_render_and_takes_more_from_the_frames_for_a_washed_out_one(shot):
    _, tracking, clip = shot
    runs = check_runs(tracking.has_face)
    refs = [i for i in range(tracking.n_frames) if tracking.has_face[i]]
    scorer = LpipsScorer()
    with VideoReader(clip) as rd:
        right = check_detail(Real(tracking, clip), rd, refs, runs, scorer)
        washed = check_detail(Real(tracking, clip, blur=6.0), rd, refs, runs, scorer)
    assert right.frames == [i for r in runs for i in r] and len(right.scores) == 4
    assert right.chosen == {}, right.describe()  # the render's own low band is the real one: nothing to gain
    assert washed.chosen != {}, washed.describe()  # a wider band, or a share of the low band, from the frames
    assert min(s["lpips"] for s in washed.scores) < washed.scores[0]["lpips"] * 0.98
    assert right.scores[0]["lpips"] < washed.scores[0]["lpips"]  # the scores see the blur
    assert right.settings() == DetailSettings() and washed.settings() != DetailSettings()
    # how far the detail is trusted, checked with each run's near references left out: a right
    # render's own mouth beats a far reference's, so it keeps the default reach
    assert [s["settings"] for s in right.far_scores] == list(TRUST)
    assert not {"match_full", "match_none"} & set(right.chosen), right.far_scores
    assert right.far_scores[0]["lpips"] <= min(s["lpips"] for s in right.far_scores[1:])
    assert len(washed.far_scores) == len(TRUST) and "mouth detail" in washed.describe()
    # and a check without far frames only chooses the band
    with VideoReader(clip) as rd:
        plain = check_detail(Real(tracking, clip), rd, refs, runs, scorer, settings=CheckSettings(far=0.0))
    assert plain.far_scores == [] and plain.chosen == {}
    # nothing to check on: the default, with the reason
    with VideoReader(clip) as rd:
        none = check_detail(Real(tracking, clip), rd, refs, [], scorer)
    assert none.chosen == {} and none.scores == [] and "too short" in none.describe()


def test_the_check_says_what_it_chose_in_an_editors_words():
    from dubstudio.eval.detail_check import DetailCheck

    band = {"sigma": 2.2, "low_mix": 0.3}
    far = {"match_full": 4.0, "match_none": 12.0}
    chk = DetailCheck({**band, **far}, list(range(24)),
                      scores=[{"settings": {}, "vs_default": 1.0}, {"settings": band, "vs_default": 0.9}],
                      far_scores=[{"settings": {}, "vs_default": 1.0}, {"settings": far, "vs_default": 0.8}])
    text = chk.describe()
    assert "10 % below the default's on 24 held-out frames" in text
    assert "more of the mouth from the shot's own frames, detail finer than 2.2 px (default 1.5 px) and 30 % of its shading" in text
    assert "in full up to 4 steps from the nearest frame and not at all beyond 12 (default 2 and 4;" in text
    assert "20 % below the default's where no frame of the shot is near" in text and "match_" not in text and "low_mix" not in text
    assert chk.summary() == ("more of the mouth from the shot's own frames (detail finer than 2.2 px and 30 % of its shading), "
                             "reaching up to 12 expression steps from the nearest frame (checked on 24 held-out frames)")
    assert DetailCheck({}, [], reason="the shot is too short").summary() == "default settings (the shot is too short)"
    assert "no other setting clearly better" in DetailCheck({}, list(range(24)), scores=[{"settings": {}, "vs_default": 1.0}]).describe()
