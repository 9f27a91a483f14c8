"""A stopped export continues where it stopped: the frames finished are kept beside the output,
the next export to the same name renders only the rest, and the result is the export that was
never stopped. Anything that changes the pixels starts it over."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.core.jobs import CancelToken, Progress
from dubstudio.core.errors import Cancelled, MediaError
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


@pytest.mark.parametrize("name", ["out.mp4", "out.mov", "out.mxf", "frames"])
def test_a_cancelled_export_continues_and_equals_the_uninterrupted_one(derived_shot, knowing, tmp_path, name):
    shot = derived_shot(n=16, fps=Fraction(25), audio_s=0.64)
    s = ExportSettings(render=FAST)
    whole = export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / f"whole_{name}", s)

    out = tmp_path / name
    with pytest.raises(Cancelled, match="8 frames finished are kept.*to continue"):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s, _cancel_after(8))
    assert not out.exists() and resume.work_folder(out).is_dir()

    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, s)
    assert res["frames_reused"] == 8 and "continued a stopped export (8 frames were finished)" in res["resume_note"]
    assert _rendered(r) == list(range(8, 16))  # only what was missing
    from dubstudio.app.export import describe

    assert "exported 16 frames (8 rendered now, 8 reused from the earlier export;" in describe(res)[0]  # what this run did
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
    assert res["frames_reused"] == 8
    assert res["verify"]["ok"], res["verify"]["problems"]


def test_a_change_that_shapes_the_pixels_starts_over(derived_shot, knowing, tmp_path):
    shot = derived_shot(n=16, fps=Fraction(25))
    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, ExportSettings(render=FAST, crf=23))
    assert res["frames_reused"] == 0 and "started over" in res["resume_note"]
    assert _rendered(r) == list(range(16))
    # another renderer (other weights) too
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    r = knowing(shot.tracking, shot.clip, offset=3)
    assert export_shot(shot.project, r, out, ExportSettings(render=FAST))["frames_reused"] == 0
    # and --restart, by request
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST), _cancel_after(8))
    res = export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST, resume=False))
    assert res["frames_reused"] == 0 and res["resume_note"] == "started over, as asked"


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
    assert res["frames_reused"] == 16 and r.calls == [] and out.is_file()
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
    assert export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s)["frames_reused"] == 8
    with VideoReader(out, deep=True) as a, VideoReader(tmp_path / "whole.mov", deep=True) as b:
        for (_, x), (_, y) in zip(a.iter_frames(), b.iter_frames(), strict=True):
            np.testing.assert_array_equal(x, y)


def _edit_jaw(shot, frame: int, value: float) -> None:
    from dubstudio.shot.curve_store import CurveStore
    from dubstudio.core.curves import Key
    from dubstudio.core.edits import SetKey
    from dubstudio.shot.curves import load_curves

    curves = load_curves(shot.project, shot.tracking)
    SetKey("jaw_open", Key(frame, value)).apply(curves)
    CurveStore(shot.project).save(curves)


@pytest.mark.parametrize("name", ["out.mp4", "out.mov", "out.mxf", "frames"])
def test_a_re_export_after_a_fix_renders_only_the_segments_it_touches(derived_shot, knowing, tmp_path, monkeypatch, name):
    """The editor fixes the jaw on one frame and exports again: one segment is rendered, the rest
    is copied from the previous export, and the file equals a fresh export of the fixed shot."""
    monkeypatch.setattr(resume, "MARGIN", 1)  # a frame's render reads one neighbour each side (test renderer: none)
    shot = derived_shot(n=24, fps=Fraction(25), audio_s=0.96)
    s = ExportSettings(render=FAST)
    out = tmp_path / name
    first = export_shot(shot.project, knowing(shot.tracking, shot.clip), out, s)
    assert first["frames_reused"] == 0 and first["frames_rendered"] == 24
    _edit_jaw(shot, 9, 0.9)  # with its 3-frame ease it changes frames 7-11; with their neighbours, segments 4-15
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, s)
    assert _rendered(r) == list(range(4, 16)) and res["frames_reused"] == 12
    assert "12 frames unchanged since the previous export were kept; 12 rendered" in res["resume_note"]
    assert res["frames_with_face"] == first["frames_with_face"] and not resume.work_folder(out).exists()
    fresh = export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / f"fresh_{name}", ExportSettings(render=FAST, resume=False))
    assert fresh["frames_reused"] == 0
    np.testing.assert_array_equal(_frames(out), _frames(tmp_path / f"fresh_{name}"))
    # nothing changed: nothing is rendered
    r = knowing(shot.tracking, shot.clip)
    assert export_shot(shot.project, r, out, s)["frames_reused"] == 24 and r.calls == []
    # --restart renders everything
    r = knowing(shot.tracking, shot.clip)
    assert export_shot(shot.project, r, out, ExportSettings(render=FAST, resume=False))["frames_reused"] == 0 and _rendered(r) == list(range(24))


def test_previous_frames_that_changed_on_disk_are_rendered_again(derived_shot, knowing, tmp_path):
    """A frame of the previous PNG export overwritten by someone: its segment no longer matches
    the digest in the manifest, so it is rendered, not trusted."""
    import cv2

    shot = derived_shot(n=16, fps=Fraction(25))
    out = tmp_path / "frames"
    export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST))
    good = _frames(out)
    cv2.imwrite(str(out / "frame_000005.png"), np.zeros_like(good[5]))
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, ExportSettings(render=FAST))
    assert _rendered(r) == [4, 5, 6, 7] and res["frames_reused"] == 12
    np.testing.assert_array_equal(_frames(out), good)


def test_another_file_under_the_name_is_not_reused(derived_shot, knowing, tmp_path):
    shot = derived_shot(n=8, fps=Fraction(25))
    out = tmp_path / "out.mp4"
    out.write_bytes(shot.clip.read_bytes())  # a copy of the source, not an export
    r = knowing(shot.tracking, shot.clip)
    from dubstudio.export.guard import OutputExistsError

    with pytest.raises(OutputExistsError, match="not an export of this shot.*--overwrite"):
        export_shot(shot.project, r, out, ExportSettings(render=FAST))  # replaced only when asked
    s = ExportSettings(render=FAST, overwrite=True)
    assert export_shot(shot.project, r, out, s)["frames_reused"] == 0 and _rendered(r) == list(range(8))


def test_a_full_disk_keeps_the_finished_segments(derived_shot, knowing, tmp_path, monkeypatch):
    """The disk fills in the third segment: the message names the export and says what is kept;
    once there is space again the export continues from there."""
    import errno

    from dubstudio.io.video_writer import VideoWriter

    shot = derived_shot(n=16, fps=Fraction(25))
    out = tmp_path / "out.mp4"
    real = VideoWriter._mux
    state = {"segments": 0}
    real_close = VideoWriter.close

    def close(self, keep=True):
        real_close(self, keep)
        state["segments"] += bool(keep)

    def mux(self, packet):
        if state["segments"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, packet)

    monkeypatch.setattr(VideoWriter, "close", close)
    monkeypatch.setattr(VideoWriter, "_mux", mux)
    with pytest.raises(MediaError, match="disk full while writing out.mp4.*The 8 frames finished are kept"):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), out, ExportSettings(render=FAST))
    monkeypatch.setattr(VideoWriter, "_mux", real)
    r = knowing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, out, ExportSettings(render=FAST, verify=True))
    assert res["frames_reused"] == 8 and _rendered(r) == list(range(8, 16)) and res["verify"]["ok"]


def test_a_finished_export_points_at_stopped_ones_beside_it(derived_shot, knowing, tmp_path):
    """A stopped export to another name holds disk space in a hidden folder: the next finished
    export in that folder says so (and touches nothing)."""
    shot = derived_shot(n=16, fps=Fraction(25))
    with pytest.raises(Cancelled):
        export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / "take1.mov", ExportSettings(render=FAST), _cancel_after(8))
    res = export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / "take2.mp4", ExportSettings(render=FAST))
    [st] = res["stopped_exports_beside"]
    assert (st["output"], st["frames_finished"], st["frames"], st["work_folder"]) == ("take1.mov", 8, 16, ".take1.mov.dubstudio-export")
    assert st["bytes"] > 0 and resume.work_folder(tmp_path / "take1.mov").is_dir()
    from dubstudio.app.export import describe

    assert "take1.mov (8/16 frames" in " ".join(describe(res))


def test_stopped_exports_are_listed_and_deleted_but_not_a_running_one(derived_shot, knowing, tmp_path, capsys):
    import json

    from dubstudio.cli import main

    shot = derived_shot(n=16, fps=Fraction(25))
    for name in ("take1.mov", "take2.mp4"):
        with pytest.raises(Cancelled):
            export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / name, ExportSettings(render=FAST), _cancel_after(8))
    res = export_shot(shot.project, knowing(shot.tracking, shot.clip), tmp_path / "final.mp4", ExportSettings(render=FAST))
    assert {st["output"] for st in res["stopped_exports_beside"]} == {"take1.mov", "take2.mp4"}
    # take2 is being exported right now (its lock is held by a live process): listed, never deleted
    (resume.work_folder(tmp_path / "take2.mp4") / resume.LOCK).write_text(str(os.getpid()))
    assert main(["stopped-exports", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stopped"]
    assert [(st["output"], st["frames_finished"], st["running"]) for st in listed] == [("take1.mov", 8, False), ("take2.mp4", 8, True)]
    assert main(["stopped-exports", str(tmp_path / "final.mp4"), "--delete", "--json"]) == 1  # one could not go
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(d["output"], d["deleted"]) for d in out["deleted"]] == [("take1.mov", True), ("take2.mp4", False)]
    assert out["bytes_freed"] == listed[0]["bytes"] > 0
    assert not resume.work_folder(tmp_path / "take1.mov").exists() and resume.work_folder(tmp_path / "take2.mp4").is_dir()
    assert (tmp_path / "final.mp4").is_file()  # a finished export is never touched
    (resume.work_folder(tmp_path / "take2.mp4") / resume.LOCK).unlink()
    assert [d["output"] for d in resume.delete_stopped(tmp_path, ["take2.mp4"]) if d["deleted"]] == ["take2.mp4"]
    assert resume.stopped_in(tmp_path) == []
