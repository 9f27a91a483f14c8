"""`export --guide-track`: the shot's own sound as a second audio track beside the dub (a PNG
sequence: audio_original.wav), each track the shot's length, checked with ffprobe."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.core.errors import DubStudioError
from dubstudio.export.audio_track import AudioRequest
from dubstudio.export.job import ExportSettings, export_shot
from dubstudio.rendering.render_job import RenderSettings
from tests.export.test_export_audio import _drive
from tests.export.test_export_resume import knowing  # noqa: F401 - a fixture

pytestmark = pytest.mark.media

FAST = RenderSettings(batch_size=8, background=None)


def _decoded(path, stream: int) -> np.ndarray:
    """Mono float samples of one audio stream, decoded by ffmpeg (not our reader)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:a:{stream}", "-ac", "1", "-ar", "48000",
                          "-f", "f32le", "-"], capture_output=True, check=True, timeout=120).stdout
    return np.frombuffer(raw, np.float32)


def _dubbed(derived_shot, media):
    from dubstudio.shot.dub_audio import record_dub_audio

    shot = derived_shot(n=25, fps=Fraction(25), audio_s=1.0)  # its own sound: a 440 Hz tone
    _drive(shot, "audio:speech_zh.wav")
    record_dub_audio(shot.project, media / "speech_zh.wav", "audio", -2.0, start_in_shot_s=-2.0)
    return shot


@pytest.mark.parametrize("name", ["dub.mp4", "dub.mov", "dub.mxf"])
def test_the_shots_own_sound_is_the_second_track(derived_shot, shifted, media, tmp_path, name):
    shot = _dubbed(derived_shot, media)
    out = tmp_path / name
    s = ExportSettings(render=FAST, audio=AudioRequest(policy="trim"), verify=True, guide_track=True)
    res = export_shot(shot.project, shifted(shot.tracking, shot.clip), out, s)
    assert res["verify"]["ok"], res["verify"]["problems"]
    tracks = res["verify"]["summary"]["audio_tracks"]
    assert len(tracks) == 2 and all(abs(t["duration_s"] - 1.0) < 0.04 for t in tracks)
    dub, guide = _decoded(out, 0), _decoded(out, 1)
    spec = np.abs(np.fft.rfft(guide[4800:43200]))
    assert abs(np.argmax(spec) * 48000 / 38400 - 440) < 5  # track 2 is the shot's own 440 Hz tone
    assert np.abs(np.fft.rfft(dub[4800:43200]))[int(440 * 38400 / 48000)] < 0.2 * spec.max()  # track 1 is not
    from dubstudio.export.mark import read_mark

    assert read_mark(out)["manifest"]["audio_tracks"] == ["dubbed", "original (guide)"]


def test_png_sequences_get_audio_original_wav(derived_shot, shifted, media, tmp_path):
    import soundfile as sf

    shot = _dubbed(derived_shot, media)
    out = tmp_path / "seq"
    res = export_shot(shot.project, shifted(shot.tracking, shot.clip), out,
                      ExportSettings(render=FAST, audio=AudioRequest(policy="trim"), verify=True, guide_track=True))
    assert res["verify"]["ok"], res["verify"]["problems"]
    a, sr = sf.read(out / "audio_original.wav")
    assert sr == 48000 and abs(len(a) - 48000) < 2 and (out / "audio.wav").is_file()
    assert json.loads((out / "manifest.json").read_text())["audio_tracks"][1] == "original (guide)"


def test_turning_the_guide_on_renders_nothing_again(derived_shot, knowing, media, tmp_path):  # noqa: F811
    shot = _dubbed(derived_shot, media)
    out = tmp_path / "dub.mp4"
    base = ExportSettings(render=FAST, audio=AudioRequest(policy="trim"))
    export_shot(shot.project, knowing(shot.tracking, shot.clip), out, base)
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, ExportSettings(render=FAST, audio=AudioRequest(policy="trim"), guide_track=True, verify=True))
    assert res["frames_reused"] == 25 and not r.calls and res["verify"]["ok"]
    assert len(res["verify"]["summary"]["audio_tracks"]) == 2


def test_a_guide_that_adds_nothing_or_does_not_exist_is_refused(derived_shot, shifted, media, tmp_path):
    shot = _dubbed(derived_shot, media)
    with pytest.raises(DubStudioError, match="already the shot's own"):
        export_shot(shot.project, shifted(shot.tracking, shot.clip), tmp_path / "a.mp4",
                    ExportSettings(render=FAST, audio=AudioRequest("original"), guide_track=True))
    silent = derived_shot(n=25, fps=Fraction(25))  # no sound of its own
    with pytest.raises(DubStudioError, match="guide track cannot be made.*no audio track"):
        export_shot(silent.project, shifted(silent.tracking, silent.clip), tmp_path / "b.mp4",
                    ExportSettings(render=FAST, audio=AudioRequest("none"), guide_track=True))
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()
