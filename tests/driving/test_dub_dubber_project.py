"""`dub --dubber` on real clips: the dubber's mouth drives the actor's curves as a driven layer."""

import subprocess
import sys

import numpy as np
import pytest

from dubstudio.shot.curve_store import CurveStore
from dubstudio.project.store import Project
from dubstudio.app.dub import DubRequest, apply_dub, dub_job
from dubstudio.shot.tracking import load_tracking
from dubstudio.tracking.track import track

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def actor_project(media, tmp_path_factory):
    root = tmp_path_factory.mktemp("dub") / "actor"
    p = Project.create(root, media / "talk_a.mp4")
    track(media / "talk_a.mp4", p)
    return p


def dub_from_dubber(project, video, offset_s=0.0, sync="check"):
    """`dubstudio dub --dubber`, as the CLI does it: the dub computed, then applied and recorded."""
    drive = dub_job(DubRequest(project.root, dubber=video, offset=offset_s, dubber_sync=sync))
    apply_dub(project, drive)
    return drive


def dub_from_audio(project, audio, offset_s=0.0):
    drive = dub_job(DubRequest(project.root, audio=audio, offset=offset_s))
    apply_dub(project, drive)
    return drive


def test_dubber_drives_curves_and_keeps_tracking(actor_project, media):
    actor = load_tracking(actor_project)
    tracked_before = actor.controls.copy()
    res = dub_from_dubber(actor_project, media / "dubber_a.mp4")
    assert res.n_frames == 125 and res.driven_frames == 125
    curves = CurveStore(actor_project).load(actor)
    jaw = curves.evaluate("jaw_open")
    # dubber_a's mouth leads its sound by 5 frames (0.2 s) by the measure; by default that is reported,
    # not applied (the dub follows the dubber's own mouth at r 0.86 unshifted), so the 4.72 s clip's
    # motion covers the shot up to 4.72 s and the last 7 frames (4.76-5.0 s) ease closed.
    av = res.details["av_sync"]
    assert not av["applied"] and av["method"] == "check" and av["measured_seconds"] == pytest.approx(0.2, abs=0.041)
    assert np.all(np.abs(jaw[-6:]) < 1e-9) and np.abs(jaw[100:115]).max() > 0
    from dubstudio.app.dub import describe

    assert any("0.20 s late" in line and "not applied" in line for line in describe(res))
    # Inside the dubber clip the curve differs from the actor's own speech.
    assert np.abs(jaw[:110] - tracked_before[:110, 0]).mean() > 0.02
    # The dubber moves the jaw: a real open/close pattern, in the actor's range.
    assert jaw[:110].std() > 0.03 and jaw.max() < 1.0
    # The tracking file is untouched; the tracked layer equals it.
    np.testing.assert_array_equal(load_tracking(actor_project).controls, tracked_before)
    np.testing.assert_array_equal(curves.tracked, tracked_before)


def test_cli_dub_reports_json(actor_project, media):
    out = subprocess.run(
        [sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(actor_project.root), "--dubber", str(media / "dubber_a.mp4"), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["driven_frames"] == 125 and "jaw_open" in res["map"]


def test_dub_without_tracking_is_a_clear_error(tmp_path, media):
    p = Project.create(tmp_path / "p", media / "talk_a.mp4")
    out = subprocess.run(
        [sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(p.root), "--dubber", str(media / "dubber_a.mp4")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2 and "no tracking" in out.stderr


def test_dubber_sync_off_given_and_auto_without_model(actor_project, media, monkeypatch):
    from dubstudio.driving import a2e_generic
    from dubstudio.driving.dub import drive_from_dubber

    monkeypatch.setattr(a2e_generic, "find_generic", lambda: None)  # no model installed here
    off = drive_from_dubber(actor_project, media / "dubber_a.mp4", sync="off")
    assert off.details["av_sync"] == {"seconds": 0.0, "applied": False, "method": "off"}
    # the dubber's audio is 0.2 s late against their picture: their motion is delayed 5 frames (25 fps)
    late = drive_from_dubber(actor_project, media / "dubber_a.mp4", sync=0.2)
    assert late.details["av_sync"]["applied"] and "sound" not in late.details["av_sync"]  # the user's number is kept
    np.testing.assert_allclose(late.values[20:100], off.values[15:95], atol=1e-6)
    assert not np.allclose(late.values[20:100], off.values[20:100])
    # with no model, auto checks the retargeted mouth against the dubber's sound: without the
    # shift it leads by 5 frames in both halves of the clip (r 0.36 against 0.07 at lag 0)
    auto = drive_from_dubber(actor_project, media / "dubber_a.mp4", sync="auto")
    av = auto.details["av_sync"]
    assert av["applied"] and av["sound"]["applied"] and av["sound"]["lag_best"] <= -4
    assert av["seconds"] == pytest.approx(-av["sound"]["lag_best"] / 25.0)
    k = -av["sound"]["lag_best"]
    np.testing.assert_allclose(auto.values[20:100], off.values[20 - k:100 - k], atol=1e-6)


def test_cli_dubber_sync_flag_is_checked(actor_project, media):
    out = subprocess.run(
        [sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(actor_project.root), "--dubber", str(media / "dubber_a.mp4"),
         "--dubber-sync", "later"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0 and "--dubber-sync" in out.stderr


def test_a_source_that_misses_the_shot_is_refused_and_writes_nothing(actor_project, media, tmp_path):
    """Dialogue or a dubber clip placed past either end of the shot (or shorter than a frame) would
    close the mouth over the whole shot: a clear error instead, and the saved curves are untouched."""
    from dubstudio.core.errors import DubStudioError

    store = CurveStore(actor_project)
    before = store.load(load_tracking(actor_project)).evaluate_all()
    with pytest.raises(DubStudioError, match="does not overlap"):
        dub_from_audio(actor_project, media / "speech_de.wav", offset_s=10.0)  # the shot is 5 s
    with pytest.raises(DubStudioError, match="does not overlap"):
        dub_from_audio(actor_project, media / "speech_de.wav", offset_s=-60.0)
    with pytest.raises(DubStudioError, match="dubber clip dubber_a.mp4"):
        dub_from_dubber(actor_project, media / "dubber_a.mp4", offset_s=-5.0, sync="off")  # the clip is 4.7 s
    np.testing.assert_array_equal(store.load(load_tracking(actor_project)).evaluate_all(), before)
    out = subprocess.run(
        [sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(actor_project.root), "--audio", str(media / "speech_de.wav"),
         "--offset", "6"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "nothing to dub" in out.stderr and "Traceback" not in out.stderr


def test_a_dubber_clip_without_sound_is_driven_unshifted(actor_project, media, tmp_path, monkeypatch):
    """No sound to check the mouth against: auto leaves the motion where the picture puts it and
    says why, instead of failing."""
    import av

    from dubstudio.driving import a2e_generic
    from dubstudio.driving.dub import drive_from_dubber

    monkeypatch.setattr(a2e_generic, "find_generic", lambda: None)
    mute = tmp_path / "dubber_a.mp4"  # same stem: the dubber's cached tracking is reused
    with av.open(str(media / "dubber_a.mp4")) as src, av.open(str(mute), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
    off = drive_from_dubber(actor_project, media / "dubber_a.mp4", sync="off")
    auto = drive_from_dubber(actor_project, mute, sync="auto")
    avs = auto.details["av_sync"]
    assert not avs["applied"] and "cannot be read" in avs["sound"]["reason"], avs
    np.testing.assert_allclose(auto.values, off.values, atol=1e-9)


def test_the_lines_script_shapes_the_dub_from_audio(actor_project, tmp_path):
    """`dub --audio --text`: the script's phones, aligned to the recording, bring the driven mouth
    closer to the mouth the line's phones ask for than the audio model alone; a script in a
    language espeak-ng lacks is a one-line error that changes nothing."""
    import soundfile as sf
    import soxr

    from dubstudio.driving.phone_targets import phone_curves
    from dubstudio.driving.speech_synth import synthesise

    text = "My mother bought a bamboo mat, and a warm woollen blanket, at the market by the pier."
    line = synthesise(text, "en+m3", rate=150, pitch=35)
    wav = tmp_path / "line.wav"
    sf.write(wav, soxr.resample(line.audio, line.sample_rate, 16000), 16000)
    actor = load_tracking(actor_project)
    fps = float(actor.fps)
    truth = phone_curves(line.phones, line.duration_s, actor.n_frames, fps)[:, 0]
    speech = truth > 0.02
    plain = dub_job(DubRequest(actor_project.root, audio=wav))
    scripted = dub_job(DubRequest(actor_project.root, audio=wav, text=text))
    script = scripted.details["adaptation"]["script"]
    assert script["applied"] and script["language"] == "en" and script["phones"] > 40

    def r(d):
        return np.corrcoef(d.values[speech, 0], truth[speech])[0, 1]

    assert r(scripted) > max(0.6, r(plain) + 0.05), (r(scripted), r(plain))
    # --key-visemes: the script's lip contacts become viseme keys where the line has them
    from dubstudio.app.dub import dub_script, script_visemes_edit
    from dubstudio.driving.phone_targets import LEAD_S, phone_visemes
    from dubstudio.shot.curves import load_curves

    said = [(t - LEAD_S, v) for t, v in phone_visemes(line.phones, line.duration_s)]  # where the synthesis put them
    keyed = dub_script(scripted)["visemes"]
    assert [v for _, v in keyed] == [v for _, v in said] and sum(v == "closed" for _, v in said) >= 6
    assert np.median([abs(a - b) for (a, _), (b, _) in zip(keyed, said)]) < 0.04
    curves = load_curves(actor_project, actor)
    scripted.edit.apply(curves)
    keys = script_visemes_edit(curves, dub_script(scripted), fps)
    keys.apply(curves)
    jaw, press = curves.evaluate("jaw_open"), curves.evaluate("lip_press")
    closed = [int(round(t * fps)) for t, v in keyed if v == "closed"]
    assert all(curves.key_at("jaw_open", f) is not None for f in closed)
    assert np.all(jaw[closed] < 0.02) and np.all(press[closed] > 0.4)
    keys.revert(curves)
    assert all(curves.key_at("jaw_open", f) is None for f in closed)
    store = CurveStore(actor_project)
    before = store.load(actor).evaluate_all()
    out = subprocess.run([sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(actor_project.root), "--audio", str(wav),
                          "--text", "Hallo.", "--language", "xx-nope"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "cannot be spoken in 'xx-nope'" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    np.testing.assert_array_equal(store.load(actor).evaluate_all(), before)
    out = subprocess.run([sys.executable, "-m", "dubstudio.cli", "dub", "--project", str(actor_project.root), "--audio", str(wav),
                          "--key-visemes"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "needs the script" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    np.testing.assert_array_equal(store.load(actor).evaluate_all(), before)
    # `dubstudio words`: the saved dub's words, and one re-timed; the lip contacts keyed after follow it
    import json

    from dubstudio.core.retime import remap_frames

    apply_dub(actor_project, scripted)

    def words_cli(*extra):
        return subprocess.run([sys.executable, "-m", "dubstudio.cli", "words", "--project", str(actor_project.root), *extra],
                              capture_output=True, text=True, timeout=300)

    out = words_cli("--json")
    aligned = [(t * fps, w) for t, w in dub_script(scripted)["words"]]
    listed = json.loads(out.stdout.strip().splitlines()[-1])["words"]
    assert out.returncode == 0 and [w for _, w in listed] == [w for _, w in aligned]
    assert np.allclose([f for f, _ in listed], [f for f, _ in aligned], atol=1e-3)
    i = [w for _, w in aligned].index("bamboo")
    out = words_cli("--move", "bamboo", "--by", "3", "--json")
    moved = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0 and moved["number"] == i + 1 and moved["to_frame"] == pytest.approx(aligned[i][0] + 3, abs=1e-3)
    curves = store.load(actor)
    assert curves.words[i][0] == pytest.approx(aligned[i][0] + 3, abs=1e-3)
    assert not np.array_equal(curves.evaluate("jaw_open"), scripted.values[:, 0])  # the mouth under it moved
    keys = script_visemes_edit(curves, dub_script(scripted), fps)
    jaw_i = curves.index("jaw_open")
    contacts = [f for c, f, k in keys.changes if c == jaw_i and k is not None and k.mode == "replace"]
    expect = np.rint(remap_frames([t * fps for t, v in keyed if v == "closed"], aligned, curves.words, curves.n_frames))
    assert set(expect.astype(int)) <= set(contacts)
    out = words_cli("--move", "bamboo", "--back", "--json")
    assert out.returncode == 0 and json.loads(out.stdout.strip().splitlines()[-1])["to_frame"] == pytest.approx(aligned[i][0], abs=1e-3)
    words_cli("--move", "1", "--by", "1")
    out = words_cli("--reset")
    assert out.returncode == 0 and "put the line's" in out.stdout
    assert np.allclose([f for f, _ in store.load(actor).words], [f for f, _ in aligned], atol=1e-3)
    for bad, why in ((("--move", "zebra", "--by", "1"), "not one of the line's words"),
                     (("--reset",), "already where the aligner placed them"),
                     (("--reset", "--move", "1"), "give it alone"),
                     (("--move", "bamboo", "--by", "500"), "can start between frames"),
                     (("--move", "bamboo"), "say where the word goes")):
        out = words_cli(*bad)
        assert out.returncode == 2 and why in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
