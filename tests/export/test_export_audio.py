"""Which audio an export carries, where it starts, and the length policy (never a silent drift)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from dubstudio.core.errors import ProjectError
from dubstudio.export.audio_track import AudioLengthError, AudioRequest, fit_length, prepare_audio, target_samples

SR = 48000
FPS = Fraction(30000, 1001)


def ramp(n: int, ch: int = 1) -> np.ndarray:
    return np.repeat((np.arange(n, dtype=np.float32) + 1)[None] / 1e6, ch, axis=0)


def test_target_samples_are_exact_for_ntsc_rates():
    assert target_samples(24, FPS, SR) == 38438  # 24 * 1601.6 = 38438.4
    assert target_samples(30000, FPS, SR) == 48048000  # 1001 s, exactly
    assert target_samples(25, Fraction(25), SR) == 48000


@pytest.mark.parametrize("policy", ["pad", "fit"])
def test_short_audio_is_padded_with_silence(policy):
    n = target_samples(30, FPS, SR)
    x = ramp(n - 10000)
    y, rep = fit_length(x, 0, n, policy, SR, FPS)
    assert y.shape == (1, n)
    np.testing.assert_array_equal(y[:, : n - 10000], x)
    assert not y[:, n - 10000 :].any()
    assert rep["padded_end_s"] == round(10000 / SR, 6) and rep["trimmed_end_s"] == 0


@pytest.mark.parametrize("policy", ["trim", "fit"])
def test_long_audio_is_trimmed_at_the_shots_end(policy):
    n = target_samples(30, FPS, SR)
    x = ramp(n + 20000, ch=2)
    y, rep = fit_length(x, 0, n, policy, SR, FPS)
    np.testing.assert_array_equal(y, x[:, :n])
    assert rep["trimmed_end_s"] == round(20000 / SR, 6)


def test_policies_refuse_what_they_do_not_do():
    n = target_samples(30, FPS, SR)
    with pytest.raises(AudioLengthError, match="past the end of the shot.*--audio-policy trim"):
        fit_length(ramp(n + 5000), 0, n, "pad", SR, FPS)
    with pytest.raises(AudioLengthError, match="before the shot.*--audio-policy pad"):
        fit_length(ramp(n - 5000), 0, n, "trim", SR, FPS)
    for d in (-5000, 5000):
        with pytest.raises(AudioLengthError):
            fit_length(ramp(n + d), 0, n, "error", SR, FPS)


def test_under_one_frame_is_absorbed_and_reported_by_every_policy():
    n = target_samples(30, FPS, SR)
    for policy in ("pad", "trim", "fit", "error"):
        for d in (-1000, 1000):  # 1000 samples < 1601.6 a frame
            y, rep = fit_length(ramp(n + d), 0, n, policy, SR, FPS)
            assert y.shape == (1, n)
            assert rep["padded_end_s"] + rep["trimmed_end_s"] == round(1000 / SR, 6)


def test_offset_places_the_audio_on_the_shots_timeline():
    n = target_samples(30, FPS, SR)
    x = ramp(n)
    late, rep = fit_length(x, 4800, n, "fit", SR, FPS)  # starts 0.1 s into the shot
    assert not late[:, :4800].any()
    np.testing.assert_array_equal(late[:, 4800:], x[:, : n - 4800])
    assert rep["leading_silence_s"] == 0.1 and rep["trimmed_end_s"] == 0.1
    early, rep = fit_length(x, -4800, n, "fit", SR, FPS)  # its first 0.1 s are skipped
    np.testing.assert_array_equal(early[:, : n - 4800], x[:, 4800:])
    assert rep["skipped_start_s"] == 0.1 and rep["padded_end_s"] == 0.1


def _drive(shot, source: str) -> None:
    """A driven layer on the saved curves, as `dubstudio dub` leaves it (source 'audio:x.wav')."""
    from dubstudio.core.controls import CONTROL_NAMES
    from dubstudio.core.edits import SetDriven
    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.shot.curves import load_curves

    t = shot.tracking
    curves = load_curves(shot.project, t)
    SetDriven(CONTROL_NAMES, np.asarray(t.controls) * 0.5, start=0, weight=np.ones(t.n_frames), source=source).apply(curves)
    CurveStore(shot.project).save(curves)


def test_recorded_dub_audio_is_the_default(derived_shot, media, tmp_path):
    from dubstudio.shot.dub_audio import record_dub_audio, recorded_dub_audio

    shot = derived_shot(n=25, fps=Fraction(25), audio_s=1.0)
    wav = media / "speech_zh.wav"  # 8.0 s, 48 kHz stereo
    _drive(shot, "audio:speech_zh.wav")
    # as `dub --audio speech_zh.wav --offset -2` records it: the shot hears the audio from 2 s on
    rec = record_dub_audio(shot.project, wav, "audio", -2.0, start_in_shot_s=-2.0)
    assert recorded_dub_audio(shot.project) == rec
    from dubstudio.project.store import Project

    assert Project.open(shot.project.root).data["dub_audio"]["start_in_shot_s"] == -2.0  # saved
    with pytest.raises(AudioLengthError, match="trim"):
        prepare_audio(shot.project, 25, Fraction(25))  # 6 s left for a 1 s shot: default pad refuses
    a = prepare_audio(shot.project, 25, Fraction(25), AudioRequest(policy="trim"))
    assert a.report["kind"] == "dubbed" and a.report["skipped_start_s"] == 2.0 and a.samples.shape == (2, 48000)
    import soundfile as sf

    ref, _ = sf.read(wav, dtype="float32", frames=48000, start=96000)
    np.testing.assert_allclose(a.samples.T, ref, atol=1e-6)
    # --audio-offset overrides the recorded one; --original-audio / --no-audio choose explicitly
    a = prepare_audio(shot.project, 25, Fraction(25), AudioRequest(offset_s=-7.5, policy="fit"))
    assert a.report["skipped_start_s"] == 7.5 and a.report["padded_end_s"] == 0.5
    assert prepare_audio(shot.project, 25, Fraction(25), AudioRequest("original")).report["kind"] == "original"
    assert prepare_audio(shot.project, 25, Fraction(25), AudioRequest("none")).samples is None


def test_dubber_without_audio_and_changed_audio_are_clear_errors(derived_shot, media, tmp_path):
    import shutil

    from dubstudio.shot.dub_audio import record_dub_audio

    shot = derived_shot(n=10, fps=Fraction(25), audio_s=0.4)
    silent = derived_shot(n=5, fps=Fraction(25)).clip  # a "dubber video" with no audio track
    _drive(shot, f"dubber:{silent.name}")
    record_dub_audio(shot.project, silent, "dubber", 0.0, start_in_shot_s=0.0)
    with pytest.raises(ProjectError, match="has no audio track.*--audio FILE"):
        prepare_audio(shot.project, 10, Fraction(25))
    wav = tmp_path / "line.wav"
    shutil.copyfile(media / "speech_zh.wav", wav)  # (not the read-only media's mode: the test writes into it)
    _drive(shot, "audio:line.wav")
    record_dub_audio(shot.project, wav, "audio", 0.0, start_in_shot_s=0.0)
    assert prepare_audio(shot.project, 10, Fraction(25), AudioRequest(policy="trim")).report["kind"] == "dubbed"
    with open(wav, "r+b") as f:  # the dialogue was replaced after dubbing
        f.seek(2000)
        f.write(b"\x01\x02\x03\x04")
    with pytest.raises(ProjectError, match="changed since the mouth was driven"):
        prepare_audio(shot.project, 10, Fraction(25), AudioRequest(policy="trim"))
    wav.unlink()
    with pytest.raises(ProjectError, match="missing.*--audio FILE"):
        prepare_audio(shot.project, 10, Fraction(25))


def test_driven_curves_without_a_recorded_audio_refuse_the_original_sound(derived_shot):
    shot = derived_shot(n=10, fps=Fraction(25), audio_s=0.4)
    assert prepare_audio(shot.project, 10, Fraction(25)).report["kind"] == "original"
    _drive(shot, "audio:speech_de.wav")
    with pytest.raises(ProjectError, match="driven from speech_de.wav.*--audio FILE"):
        prepare_audio(shot.project, 10, Fraction(25))
    assert prepare_audio(shot.project, 10, Fraction(25), AudioRequest("original")).report["kind"] == "original"


def test_an_undone_dub_no_longer_brings_its_audio(derived_shot, media):
    """The editor can undo a dub (and save): the recorded dub audio then no longer belongs to the
    mouth, so export falls back to the shot's own sound and says why; a mouth driven from another
    source than the recorded audio is an error."""
    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.core.edits import ResetRange
    from dubstudio.shot.curves import load_curves
    from dubstudio.shot.dub_audio import record_dub_audio

    shot = derived_shot(n=10, fps=Fraction(25), audio_s=0.4)
    _drive(shot, "audio:speech_zh.wav")
    record_dub_audio(shot.project, media / "speech_zh.wav", "audio", 0.0, start_in_shot_s=0.0)
    assert prepare_audio(shot.project, 10, Fraction(25), AudioRequest(policy="trim")).report["kind"] == "dubbed"
    _drive(shot, "audio:speech_ja.wav")  # re-driven from another file without recording it
    with pytest.raises(ProjectError, match="driven from speech_ja.wav but the recorded dubbed audio is speech_zh.wav"):
        prepare_audio(shot.project, 10, Fraction(25))
    curves = load_curves(shot.project, shot.tracking)
    ResetRange().apply(curves)  # the editor's "reset to tracked" over the whole shot (or undoing the dub)
    CurveStore(shot.project).save(curves)
    a = prepare_audio(shot.project, 10, Fraction(25))
    assert a.report["kind"] == "original" and "no longer on the curves" in a.report.get("note", "")


def _stem(path, seconds: float = 40.0, rate: int = SR):
    """A reel's dialogue stem: stereo noise, different in each channel, at ``rate``."""
    import soundfile as sf

    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)
    sf.write(str(path), x, rate, subtype="FLOAT")
    return path, x


def test_a_stem_is_read_only_where_the_shot_plays_it(tmp_path):
    import dubstudio.io.audio as io_audio

    path, x = _stem(tmp_path / "reel1.wav")
    asked = []
    real = io_audio.load_audio

    def spy(*a, **k):
        asked.append(k.get("duration_s"))
        return real(*a, **k)

    io_audio.load_audio = spy
    try:
        a = prepare_audio(None, 100, Fraction(25), AudioRequest("file", path, offset_s=-20.0, policy="fit"))  # 4 s from 20 s on
    finally:
        io_audio.load_audio = real
    assert asked == [4.0]  # a window, not the 40 s file
    np.testing.assert_allclose(a.samples.T, x[20 * SR: 24 * SR], atol=1e-6)
    r = a.report
    assert (r["skipped_start_s"], r["trimmed_end_s"], r["padded_end_s"], r["source_duration_s"]) == (20.0, 16.0, 0.0, 40.0)
    # the same refusals as a whole decode, with the stem's real numbers
    with pytest.raises(AudioLengthError, match=r"runs 16.00 s past the end of the shot"):
        prepare_audio(None, 100, Fraction(25), AudioRequest("file", path, offset_s=-20.0, policy="pad"))
    from dubstudio.export.audio_track import check_audio_length

    with pytest.raises(AudioLengthError, match=r"runs 16.00 s past"):
        check_audio_length(path, 100, Fraction(25), -20.0, "pad")
    check_audio_length(path, 100, Fraction(25), -20.0, "fit")


def test_a_line_placed_by_timecode_defaults_to_fit(derived_shot, tmp_path):
    from dubstudio.shot.dub_audio import record_dub_audio

    shot = derived_shot(n=25, fps=Fraction(25), audio_s=1.0)
    path, x = _stem(tmp_path / "reel1.wav")
    _drive(shot, "audio:reel1.wav")
    record_dub_audio(shot.project, path, "audio", -12.0, start_in_shot_s=-12.0)
    with pytest.raises(AudioLengthError, match="trim"):
        prepare_audio(shot.project, 25, Fraction(25))  # a plain offset: pad refuses what runs past the shot
    record_dub_audio(shot.project, path, "audio", -12.0, start_in_shot_s=-12.0, placement="by timecode: ...")
    a = prepare_audio(shot.project, 25, Fraction(25))
    assert a.report["policy"] == "fit" and "placed by timecode" in a.report["note"]
    np.testing.assert_allclose(a.samples.T, x[12 * SR: 13 * SR], atol=1e-6)
