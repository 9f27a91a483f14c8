"""A stopped export continues where it stopped: the frames finished are kept beside the output,
the next export to the same name renders only the rest, and the result is the export that was
never stopped. Anything that changes the pixels starts it over."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.core.jobs import CancelToken, Progress
from dubstudio.errors import Cancelled, MediaError
from dubstudio.export import resume
from dubstudio.export.audio_track import AudioRequest
from dubstudio.export.job import ExportSettings, export_shot
from dubstudio.io.video import VideoReader
from dubstudio.rendering.render_job import RenderSettings

pytestmark = pytest.mark.media

FAST = RenderSettings(batch_size=4, background=None)


@pytest.fixture(autouse=True)
def short_segments(monkeypatch):
    monkeypatch.setattr(resume, "SEGMENT_S", 0.16)  # 4 frames at 25 fps: a 16-frame shot has 4 segments


@pytest.fixture
def knowing(shifted):
    class Knowing(shifted):
        """The test renderer, able to say what it draws (the neural renderer hashes its weights)."""

        def fingerprint(self):
            return f"shifted:{self.offset}:{self.resolution}"

    return Knowing


def _cancel_after(frames: int):
    """Cancel so that the export stops with ``frames`` written (a cancel takes effect at the
    progress report after the one that asked for it: one 4-frame batch later)."""
    token = CancelToken()

    def cb(ev):
        if ev.stage == "export" and ev.done >= frames - 4:
            token.cancel()

    return Progress(cb, token)


def _frames(out) -> np.ndarray:
    if out.is_dir():
        import cv2

        return np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(out.glob("frame_*.png"))])
    with VideoReader(out) as r:
        return np.stack([rgb for _, rgb in r.iter_frames()])


def _rendered(r) -> list[int]:
    return sorted(i for call in r.calls for i in call)


@pytest.mark.parametrize("name", ["out.mp4", "out.mov", "frames"])
def test_a_cancelled_export_continues_and_equals_the_uninterrupted_one(derived_shot, knowing, tmp_path, name):
    shot = derived_shot(n=16, fps=Fraction(25), audio_s=0.64)
    s = ExportSettings(render=FAST)
    whole = export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / f"whole_{name}", s)

    out = tmp_path / name
    with pytest.raises(Cancelled, match="8 frames finished are kept.*continue from frame 8"):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s, _cancel_after(8))
    assert not out.exists() and resume.work_folder(out).is_dir()

    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, s)
    assert res["resumed_from_frame"] == 8 and "frames 0-7 were kept" in res["resume_note"]
    assert _rendered(r) == list(range(8, 16))  # only what was missing
    assert not resume.work_folder(out).exists()
    for k in ("frames_with_face", "frames_watermarked", "width", "height"):
        assert res[k] == whole[k], k
    np.testing.assert_array_equal(_frames(out), _frames(tmp_path / f"whole_{name}"))


def test_the_continued_file_passes_ffprobe_with_its_sound(derived_shot, knowing, media, tmp_path):
    shot = derived_shot(n=16, fps=Fraction(30000, 1001), audio_s=0.6)
    s = ExportSettings(render=FAST, audio=AudioRequest("file", media / "speech_de.wav", policy="trim"), verify=True)
    out = tmp_path / "dub.mp4"
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s, _cancel_after(8))  # segments of 8 frames here
    res = export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s)
    assert res["resumed_from_frame"] == 8
    assert res["verify"]["ok"], res["verify"]["problems"]


def test_a_change_that_shapes_the_pixels_starts_over(derived_shot, knowing, tmp_path):
    shot = derived_shot(n=16, fps=Fraction(25))
    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, ExportSettings(render=FAST, crf=23))
    assert res["resumed_from_frame"] == 0 and "started over" in res["resume_note"]
    assert _rendered(r) == list(range(16))
    # another renderer (other weights) too
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    r = knowing(shot.tracking, shot.clip, offset=3)
    assert export_shot(shot.project, r, out, ExportSettings(render=FAST))["resumed_from_frame"] == 0
    # and --restart, by request
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    res = export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST, resume=False))
    assert res["resumed_from_frame"] == 0 and res["resume_note"] == "started over, as asked"


def test_a_failed_assembly_keeps_every_frame(derived_shot, knowing, tmp_path, monkeypatch):
    """A full disk while joining the segments: the next export only joins them."""
    from dubstudio.io import video_concat

    shot = derived_shot(n=16, fps=Fraction(25))
    out = tmp_path / "out.mov"
    real = video_concat.concat_segments

    def full(*a, **kw):
        raise MediaError("disk full while writing out.mov; free some space and export again.")

    monkeypatch.setattr(video_concat, "concat_segments", full)
    with pytest.raises(MediaError, match="16 frames finished are kept"):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST))
    assert not out.exists()
    monkeypatch.setattr(video_concat, "concat_segments", real)
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, ExportSettings(render=FAST))
    assert res["resumed_from_frame"] == 16 and r.calls == [] and out.is_file()
    assert res["frames_with_face"] == 16 and _frames(out).shape[0] == 16


def test_a_renderer_that_cannot_say_what_it_draws_leaves_nothing(derived_shot, shifted, tmp_path):
    shot = derived_shot(n=16, fps=Fraction(25))
    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled) as e:
        export_shot(shot.project, shifted(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    assert "kept" not in str(e.value)
    assert not resume.work_folder(out).exists() and not out.exists()


def test_a_second_export_to_the_same_name_waits_for_the_first(derived_shot, knowing, tmp_path):
    shot = derived_shot(n=8, fps=Fraction(25))
    out = tmp_path / "out.mp4"
    w = resume.work_folder(out)
    w.mkdir()
    (w / resume.LOCK).write_text(str(os.getppid()))  # a live process
    with pytest.raises(MediaError, match="another export to out.mp4 is running"):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST))
    (w / resume.LOCK).write_text("999999999")  # left by a killed export
    export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST))
    assert out.is_file() and not w.exists()


def test_segments_are_whole_batches():
    assert resume.segment_length(Fraction(24000, 1001), 8) % 8 == 0
    assert resume.segment_length(Fraction(25), 3) % 3 == 0
    assert resume.segment_length(Fraction(25), 1) == 4


def test_a_10_bit_source_continues_in_step(derived_shot, knowing, tmp_path):
    """The source's 16-bit decode restarts at the resumed frame, in step with the render."""
    shot = derived_shot(n=12, fps=Fraction(25), prores10=True)
    s = ExportSettings(render=FAST, audio=AudioRequest("none"))
    whole = export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / "whole.mov", s)
    assert whole["source_bits_kept"]
    out = tmp_path / "out.mov"
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s, _cancel_after(8))
    assert export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s)["resumed_from_frame"] == 8
    with VideoReader(out, deep=True) as a, VideoReader(tmp_path / "whole.mov", deep=True) as b:
        for (_, x), (_, y) in zip(a.iter_frames(), b.iter_frames(), strict=True):
            np.testing.assert_array_equal(x, y)
