"""ControlCurves key interpolation, ease, driven layer, visemes, and the project curve store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dubstudio.shot.curve_store import AUTOSAVE_FILE, CURVES_FILE, CurveStore
from dubstudio.core.curves import ControlCurves, Key, neutral_key, smoothstep
from dubstudio.core.edits import EditHistory, SetDriven, SetKey
from dubstudio.core.visemes import VISEMES, insert_viseme, viseme_name
from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import atomic_save_npz, file_fingerprint
from dubstudio.project.store import Project
from dubstudio.core.controls import CONTROL_NAMES

N = 120
JAW = "jaw_open"


def tracked_curves(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return 0.3 + 0.25 * np.sin(t / 5.0 + np.arange(len(CONTROL_NAMES))) + 0.01 * rng.standard_normal((n, len(CONTROL_NAMES)))


@pytest.fixture
def curves() -> ControlCurves:
    return ControlCurves(tracked_curves())


def test_unedited_curves_are_the_tracked_ones_and_tracked_is_read_only(curves):
    assert np.array_equal(curves.evaluate_all(), tracked_curves())
    with pytest.raises(ValueError):
        curves.tracked[0, 0] = 1.0
    with pytest.raises(ValueError):
        curves.evaluate(JAW)[0] = 1.0


def test_single_replace_key_hits_its_value_and_eases_back_over_three_frames(curves):
    u = curves.tracked[:, 0]
    curves.put_key(JAW, Key(50, 0.9))
    f = curves.evaluate(JAW)
    assert f[50] == pytest.approx(0.9, abs=1e-12)
    for dist in (1, 2):
        w = smoothstep(np.array((3 - dist) / 3))
        for fr in (50 - dist, 50 + dist):
            assert f[fr] == pytest.approx(u[fr] + w * (0.9 - u[fr]), abs=1e-12)
    mask = np.ones(N, bool)
    mask[48:53] = False
    assert np.array_equal(f[mask], u[mask])  # 3 frames away and beyond: the tracked curve


@pytest.mark.parametrize("ease", [0, 1, 5])
def test_ease_length_is_configurable(ease):
    c = ControlCurves(tracked_curves(), ease_frames=ease)
    c.put_key(JAW, Key(60, 1.2))
    changed = np.flatnonzero(c.evaluate(JAW) != c.tracked[:, 0])
    lo, hi = 60 - max(ease - 1, 0), 60 + max(ease - 1, 0)
    assert changed.min() == lo and changed.max() == hi


def test_linear_replace_keys_interpolate_the_keyed_values(curves):
    curves.put_key(JAW, Key(10, 0.2, "linear"))
    curves.put_key(JAW, Key(20, 0.7, "linear"))
    f = curves.evaluate(JAW)
    assert np.allclose(f[10:21], np.linspace(0.2, 0.7, 11), atol=1e-12)


def test_hold_keeps_the_value_until_the_next_key(curves):
    curves.put_key(JAW, Key(10, 0.2, "hold"))
    curves.put_key(JAW, Key(20, 0.7, "hold"))
    f = curves.evaluate(JAW)
    assert np.allclose(f[10:20], 0.2, atol=1e-12)
    assert f[20] == pytest.approx(0.7, abs=1e-12)


def test_smooth_between_two_keys_is_an_ease_in_out(curves):
    curves.put_key(JAW, Key(10, 0.0))
    curves.put_key(JAW, Key(20, 1.0))
    t = np.arange(11) / 10
    assert np.allclose(curves.evaluate(JAW)[10:21], smoothstep(t), atol=1e-12)


def test_smooth_never_overshoots_monotone_keys():
    rng = np.random.default_rng(3)
    for trial in range(20):
        c = ControlCurves(tracked_curves(seed=trial))
        frames = np.sort(rng.choice(np.arange(5, N - 5), size=rng.integers(3, 9), replace=False))
        values = np.sort(rng.uniform(-1, 1, len(frames)))
        if trial % 2:
            values = values[::-1]
        for fr, v in zip(frames, values):
            c.put_key(JAW, Key(int(fr), float(v), "smooth"))
        seg = c.evaluate(JAW)[frames[0] : frames[-1] + 1]
        d = np.diff(seg) * (1 if trial % 2 == 0 else -1)
        assert np.all(d >= -1e-12), "not monotone"
        assert seg.min() >= values.min() - 1e-12 and seg.max() <= values.max() + 1e-12
        for fr, v in zip(frames, values):
            assert c.evaluate(JAW)[fr] == pytest.approx(v, abs=1e-12)


def test_smooth_stays_between_adjacent_keys_even_when_not_monotone(curves):
    values = [0.0, 0.8, 0.1, 0.9, 0.85]
    frames = [10, 14, 30, 33, 50]
    for fr, v in zip(frames, values):
        curves.put_key(JAW, Key(fr, v))
    f = curves.evaluate(JAW)
    for (f0, v0), (f1, v1) in zip(zip(frames, values), zip(frames[1:], values[1:])):
        seg = f[f0 : f1 + 1]
        assert seg.min() >= min(v0, v1) - 1e-12 and seg.max() <= max(v0, v1) + 1e-12


def test_offset_keys_let_the_underlying_motion_show_through(curves):
    u = curves.tracked[:, 1]
    curves.put_key("mouth_width", Key(10, 0.1, "linear", "offset"))
    curves.put_key("mouth_width", Key(20, 0.3, "linear", "offset"))
    f = curves.evaluate("mouth_width")
    assert np.allclose(f[10:21] - u[10:21], np.linspace(0.1, 0.3, 11), atol=1e-12)


def test_replace_key_then_neutral_key_crossfades_back_to_tracked(curves):
    u = curves.tracked[:, 0]
    curves.put_key(JAW, Key(40, 0.9, "linear"))
    curves.put_key(JAW, neutral_key(44))
    f = curves.evaluate(JAW)
    s = np.arange(5) / 4
    assert np.allclose(f[40:45], (1 - s) * 0.9 + s * u[40:45], atol=1e-12)
    assert np.array_equal(f[44:], u[44:])


def test_driven_layer_blends_under_the_keys_and_never_touches_tracked(curves):
    before = curves.tracked.copy()
    drv = np.full(N, 0.5)
    w = np.zeros(N)
    w[30:60] = 1.0
    w[60:70] = 0.5
    curves.write_driven(JAW, 0, drv, w)
    u = curves.underlying(JAW)
    assert np.array_equal(u[30:60], drv[30:60])
    assert np.allclose(u[60:70], 0.5 * before[60:70, 0] + 0.25)
    assert np.array_equal(u[:30], before[:30, 0])
    curves.put_key(JAW, Key(45, 0.1, "smooth", "offset"))
    assert curves.evaluate(JAW)[45] == pytest.approx(0.6)
    assert np.array_equal(curves.tracked, before)


def test_values_are_stored_as_set_and_clamped_only_for_display(curves):
    curves.put_key(JAW, Key(5, 1.7))
    assert curves.key_at(JAW, 5).value == 1.7
    assert curves.evaluate(JAW)[5] == pytest.approx(1.7)
    assert curves.display(JAW)[5] == 1.0
    assert curves.display(JAW).min() >= -0.2


def test_key_validation(curves):
    with pytest.raises(ValueError):
        Key(3, 0.1, "bezier")
    with pytest.raises(ValueError):
        Key(3, float("nan"))
    with pytest.raises(IndexError):
        curves.put_key(JAW, Key(N, 0.1))
    with pytest.raises(KeyError):
        curves.put_key("eyebrow", Key(1, 0.1))


def test_changed_event_is_one_per_edit_and_covers_the_change(curves):
    seen = []
    curves.changed.connect(lambda name, a, b: seen.append((name, a, b)))
    hist = EditHistory(curves)
    hist.push(SetKey(JAW, Key(30, 0.9)))
    assert seen == [(JAW, 28, 33)]
    seen.clear()
    insert_viseme(curves, 70, "oh", history=hist)
    assert sorted(name for name, _, _ in seen) == sorted(VISEMES["oh"])


# -- visemes --


@pytest.mark.parametrize("name", list(VISEMES))
def test_viseme_sets_its_controls_at_the_frame_as_one_undo_step(curves, name):
    before = curves.evaluate_all()
    hist = EditHistory(curves)
    insert_viseme(curves, 60, name, width=2, history=hist)
    assert hist.index == 1
    after = curves.evaluate_all()
    for ci, cname in enumerate(CONTROL_NAMES):
        if cname in VISEMES[name]:
            assert after[60, ci] == pytest.approx(VISEMES[name][cname], abs=1e-12)
            assert np.array_equal(after[:58, ci], before[:58, ci])  # back to tracked at frame ± width
            assert np.array_equal(after[63:, ci], before[63:, ci])
        else:
            assert np.array_equal(after[:, ci], before[:, ci])
    hist.undo()
    assert np.array_equal(curves.evaluate_all(), before)
    assert curves.all_keys() == {}


def test_viseme_presets_are_what_the_mouth_shapes_mean():
    closed, ah, ee = VISEMES["closed"], VISEMES["ah"], VISEMES["ee"]
    oh, oo, fv = VISEMES["oh"], VISEMES["oo"], VISEMES["fv"]
    assert closed["jaw_open"] == 0 and closed["lip_press"] > 0
    assert ah["jaw_open"] == pytest.approx(0.7)
    assert ee["mouth_width"] > 0 and ee["jaw_open"] < 0.3 and ee["smile"] > 0
    assert oh["lip_pucker"] > 0 and oh["jaw_open"] == pytest.approx(0.4)
    assert oo["lip_pucker"] > oh["lip_pucker"] and oo["jaw_open"] == pytest.approx(0.15)
    assert fv["lower_lip_depress"] < 0 < fv["upper_lip_raise"] and fv["jaw_open"] == pytest.approx(0.1)
    assert viseme_name("M") == viseme_name("b") == viseme_name("P") == "closed"
    assert viseme_name("F/V") == "fv"
    with pytest.raises(KeyError):
        viseme_name("zz")


@pytest.mark.parametrize("gap", [1, 2, 3])
@pytest.mark.parametrize("order", ["forward", "backward"])
def test_overlapping_visemes_flow_into_each_other(curves, gap, order):
    a, b = 50, 50 + gap
    if order == "forward":
        insert_viseme(curves, a, "closed")
        insert_viseme(curves, b, "ah")
    else:
        insert_viseme(curves, b, "ah")
        insert_viseme(curves, a, "closed")
    jaw = curves.evaluate(JAW)
    assert jaw[a] == pytest.approx(0.0, abs=1e-12) and jaw[b] == pytest.approx(0.7, abs=1e-12)
    assert np.all(np.diff(jaw[a : b + 1]) > 0)  # no dip back to tracked between them
    assert [k.frame for k in curves.keys(JAW)] == [a - 2, a, b, b + 2]


def test_visemes_apart_return_to_tracked_between_them(curves):
    insert_viseme(curves, 30, "oo")
    insert_viseme(curves, 40, "oo")
    assert np.array_equal(curves.evaluate(JAW)[32:39], curves.tracked[32:39, 0])


def test_viseme_strength_blends_towards_the_preset(curves):
    cur = float(curves.evaluate(JAW)[60])
    insert_viseme(curves, 60, "ah", strength=0.5)
    assert curves.evaluate(JAW)[60] == pytest.approx(0.5 * cur + 0.35)


# -- the project store --


@pytest.fixture
def project(tmp_path: Path) -> Project:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(2048))
    proj = Project.create(tmp_path / "proj", video)
    proj.cache_dir("track")
    atomic_save_npz(proj.path("cache/track/tracking.npz"), controls=tracked_curves())
    proj.record_stage("track", "k", {"tracking": "cache/track/tracking.npz"})
    return proj


def edited(curves: ControlCurves) -> ControlCurves:
    hist = EditHistory(curves)
    hist.push(SetKey(JAW, Key(10, 0.123456789, "hold")))
    hist.push(SetKey("smile", Key(30, -0.2, "linear", "offset")))
    insert_viseme(curves, 70, "fv", history=hist)
    hist.push(SetDriven([JAW, "lip_pucker"], np.random.default_rng(1).random((40, 2)), 60, weight=0.75, source="audio:x.wav",
                       words=[(70.0, "world"), (61.25, "hello")]))
    return curves


def assert_same(a: ControlCurves, b: ControlCurves) -> None:
    assert a.all_keys() == b.all_keys()
    assert a.ease_frames == b.ease_frames
    assert a.words == b.words
    for i in range(a.n_controls):
        assert np.array_equal(a.driven_weight(i), b.driven_weight(i))
        assert np.array_equal(a.driven(i)[a.driven_weight(i) > 0], b.driven(i)[b.driven_weight(i) > 0])
        assert a.driven_source(i) == b.driven_source(i)
    assert np.array_equal(a.evaluate_all(), b.evaluate_all())


def test_save_load_round_trip_is_exact_and_never_touches_tracking(project):
    store = CurveStore(project)
    tracking_file = project.path("cache/track/tracking.npz")
    fp = file_fingerprint(tracking_file)
    assert np.array_equal(store.load().evaluate_all(), tracked_curves())  # nothing saved yet
    c = edited(store.load())
    store.save(c)
    back = store.load()
    assert_same(c, back)
    assert np.array_equal(back.tracked, tracked_curves())
    assert np.array_equal(back.at(70), back.evaluate_all()[70])
    assert file_fingerprint(tracking_file) == fp
    d = json.loads(project.path(CURVES_FILE).read_text())
    assert d["schema_version"] == 1 and d["driven"]["sources"]["jaw_open"] == "audio:x.wav"
    assert d["words"] == [[61.25, "hello"], [70.0, "world"]]  # sorted by time
    # Re-saving without a driven layer removes the unreferenced driven file.
    store.save(ControlCurves(tracked_curves()))
    assert list(project.path("edits").glob("driven-*.npz")) == []


def test_curves_saved_before_they_kept_words_take_the_words_recorded_with_the_dub(project):
    """An older version kept the line's words only with the dub audio (seconds): loading its curves
    puts them on the curves; a file that has its own words (even none) keeps them."""
    from types import SimpleNamespace

    from dubstudio.shot.curves import load_curves
    from dubstudio.shot.dub_audio import DUB_AUDIO_KEY

    tracking = SimpleNamespace(controls=tracked_curves(), fps=25.0)
    store = CurveStore(project)
    c = edited(store.load())
    store.save(c)
    project.update(lambda d: d.__setitem__(DUB_AUDIO_KEY, {"kind": "audio", "script": {"words": [[2.0, "hello"], [2.42, "world"]]}}))
    assert load_curves(project, tracking).words == c.words  # the curves' own
    c.set_words(())
    store.save(c)  # a later dub without a script (or one undone) left none: the record stays out
    assert load_curves(project, tracking).words == ()
    d = json.loads(project.path(CURVES_FILE).read_text())
    del d["words"]
    project.path(CURVES_FILE).write_text(json.dumps(d))  # as the older version wrote it
    assert load_curves(project, tracking).words == ((50.0, "hello"), (60.5, "world"))
    store.save(ControlCurves(tracked_curves()))
    d = json.loads(project.path(CURVES_FILE).read_text())
    del d["words"]
    project.path(CURVES_FILE).write_text(json.dumps(d))
    assert load_curves(project, tracking).words == ()  # no driven layer: no dub for the words to belong to


def test_damaged_or_mismatched_curves_file_is_a_clear_project_error(project):
    store = CurveStore(project)
    store.save(edited(store.load()))
    good = project.path(CURVES_FILE).read_text()
    project.path(CURVES_FILE).write_text(good[: len(good) // 2])
    with pytest.raises(ProjectError, match="damaged.*tracked curves"):
        store.load()
    bad = json.loads(good)
    bad["keys"]["jaw_open"][0]["interp"] = "wobbly"
    project.path(CURVES_FILE).write_text(json.dumps(bad))
    with pytest.raises(ProjectError, match="damaged"):
        store.load()
    bad = json.loads(good)
    bad["keys"]["eyebrow_raise"] = bad["keys"].pop("jaw_open")
    project.path(CURVES_FILE).write_text(json.dumps(bad))
    with pytest.raises(ProjectError, match="damaged.*eyebrow_raise"):
        store.load()
    project.path(CURVES_FILE).write_text(json.dumps(dict(json.loads(good), schema_version=99)))
    with pytest.raises(ProjectError, match="newer DubStudio"):
        store.load()
    project.path(CURVES_FILE).write_text(good)
    with pytest.raises(ProjectError, match="re-tracked"):
        store.load(tracked_curves(n=N + 5))
    for f in project.path("edits").glob("driven-*.npz"):
        f.write_bytes(b"not a zip")
    with pytest.raises(ProjectError, match="driven curves"):
        store.load()


def test_autosave_is_offered_when_newer_and_dropped_by_save(project):
    store = CurveStore(project)
    c = store.load()
    assert store.recover() is None
    store.save(c)
    edited(c)
    store.autosave(c)
    assert store.recovery_available()
    assert_same(store.recover(), c)
    assert store.load().all_keys() == {}  # the saved (empty) state is unchanged
    store.save(c)
    assert not project.path(AUTOSAVE_FILE).exists() and store.recover() is None
    # An autosave older than the last save is not offered.
    store.autosave(c)
    auto = json.loads(project.path(AUTOSAVE_FILE).read_text())
    saved = json.loads(project.path(CURVES_FILE).read_text())
    auto["saved_ns"] = saved["saved_ns"] - 1
    project.path(AUTOSAVE_FILE).write_text(json.dumps(auto))
    assert store.recover() is None
    # A damaged autosave never blocks opening.
    auto["saved_ns"] = saved["saved_ns"] + 1
    auto["keys"] = "garbage"
    project.path(AUTOSAVE_FILE).write_text(json.dumps(auto))
    assert store.recover() is None
    assert_same(store.load(), c)
