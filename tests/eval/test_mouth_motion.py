"""In-speech closures and jitter of mouth-opening curves (synthetic curves with known answers)."""

import numpy as np

from dubstudio.tracking.mouth_motion import closed_threshold, closure_events, closure_match, jitter

FPS = 25


def _speech_with_closures(n=200, at=(40, 80, 120, 160), width=2):
    """Silence for 20 frames at each end, open ~0.6 in between, closing to 0.05 at ``at``."""
    jaw = np.full(n, 0.6)
    silent = np.zeros(n, bool)
    silent[:20] = silent[-20:] = True
    jaw[silent] = 0.05
    for a in at:
        jaw[a : a + width] = 0.05
    return jaw, silent


def test_closures_inside_speech_are_found_and_silence_edges_are_not():
    jaw, silent = _speech_with_closures()
    thr = closed_threshold(jaw, silent)
    assert 0.05 < thr < 0.6
    assert closure_events(jaw, silent, thr, FPS) == [(40, 42), (80, 82), (120, 122), (160, 162)]
    # a long closed stretch inside speech is a pause, not a closure
    jaw2 = jaw.copy()
    jaw2[100:115] = 0.05
    assert (100, 115) not in closure_events(jaw2, silent, thr, FPS)


def test_closure_match_scores_a_mumbling_and_a_faithful_driven_mouth():
    tracked, silent = _speech_with_closures()
    faithful = np.roll(tracked, 1)  # one frame late: within tolerance
    m = closure_match(faithful, tracked, silent, FPS)
    assert m["tracked_closures"] == 4 and m["recall"] == 1.0 and m["precision"] == 1.0
    mumbling = tracked.copy()
    mumbling[~silent] = np.maximum(tracked[~silent], 0.35)  # half-closes at most
    m = closure_match(mumbling, tracked, silent, FPS)
    assert m["recall"] == 0.0 and m["driven_closures"] == 0 and m["precision"] is None
    extra = tracked.copy()
    extra[60:62] = 0.0  # one closure the actor did not make
    m = closure_match(extra, tracked, silent, FPS)
    assert m["recall"] == 1.0 and m["precision"] == 0.8


def test_jitter_sees_shake_not_smooth_motion():
    t = np.arange(200) / FPS
    smooth = 0.3 + 0.25 * np.sin(2 * np.pi * 3 * t)
    shaky = smooth + 0.03 * (-1) ** np.arange(200)
    assert jitter(shaky) > 5 * jitter(smooth)
    assert jitter(np.zeros(2)) == 0.0
