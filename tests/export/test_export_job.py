"""The export job: final curves and dubbed audio reach the renderer, cancel/errors/full disk leave
nothing under the final name, clear messages for missing steps, flat memory over long shots."""

from __future__ import annotations

import errno
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

from dubstudio.shot.curve_store import CurveStore
from dubstudio.core.curves import Key
from dubstudio.core.edits import SetKey
from dubstudio.core.jobs import CancelToken, Progress
from dubstudio.shot.curves import load_curves
from dubstudio.core.errors import Cancelled, DubStudioError, MediaError, ProjectError
from dubstudio.export.audio_track import AudioRequest
from dubstudio.export.job import ExportSettings, export_shot
from dubstudio.project.store import Project
from dubstudio.rendering.render_job import RenderSettings

pytestmark = pytest.mark.media

FAST = RenderSettings(batch_size=4, background=None)


def test_exports_the_final_curves_and_feeds_the_dubbed_audio(derived_shot, hearing, media, tmp_path):
    shot = derived_shot(n=12, fps=Fraction(25), audio_s=0.5)
    curves = load_curves(shot.project, shot.tracking)
    SetKey("jaw_open", Key(6, 0.9)).apply(curves)
    CurveStore(shot.project).save(curves)
    want = curves.evaluate_all()
    assert not np.array_equal(want, shot.tracking.controls)
    r = hearing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, tmp_path / "a.mp4", ExportSettings(render=FAST, audio=AudioRequest("file", media / "speech_ja.wav", policy="trim")))
    assert res["curves_edited"] and res["audio_conditioned_renderer"]
    np.testing.assert_allclose(np.concatenate(r.controls), want)  # every frame, keys included
    mels = np.concatenate(r.mels)
    assert mels.shape == (12, 80, 16) and np.abs(mels).sum() > 0
    # --tracked-curves renders the tracked ones; the shot's own audio is not fed to the renderer
    r2 = hearing(shot.tracking, shot.clip)
    res = export_shot(shot.project, r2, tmp_path / "b.mp4", ExportSettings(render=FAST, use_curves=False, audio=AudioRequest("original")))
    assert not res["curves_edited"] and not res["audio_conditioned_renderer"]
    assert all(c is None for c in r2.controls) and all(m is None for m in r2.mels)


@pytest.mark.parametrize("name", ["out.mp4", "out.mov", "frames"])
def test_cancel_leaves_nothing_under_the_final_name(derived_shot, shifted, tmp_path, name):
    shot = derived_shot(n=16, fps=Fraction(25), audio_s=0.64)
    token = CancelToken()
    seen = []

    def cb(ev):
        seen.append((ev.stage, ev.done))
        if ev.stage == "export" and ev.done >= 4:
            token.cancel()

    out = tmp_path / name
    with pytest.raises(Cancelled):
        export_shot(shot.project, shifted(shot.tracking, shot.clip), out, ExportSettings(render=FAST), Progress(cb, token))
    assert ("export", 4) in seen
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]


def test_a_previous_export_survives_a_failed_one(derived_shot, shifted, tmp_path, monkeypatch):
    from dubstudio.io.video_writer import VideoWriter

    shot = derived_shot(n=8, fps=Fraction(25))
    r = shifted(shot.tracking, shot.clip)
    out = tmp_path / "keep.mp4"
    export_shot(shot.project, r, out, ExportSettings(render=FAST, audio=AudioRequest("none")))
    before = out.read_bytes()
    calls = {"n": 0}

    def full(self, packet):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VideoWriter, "_mux", full)
    with pytest.raises(MediaError, match="disk full while writing keep.mp4; free some space"):
        export_shot(shot.project, r, out, ExportSettings(render=FAST, audio=AudioRequest("none")))
    assert calls["n"] >= 1
    assert out.read_bytes() == before  # the old export is intact
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]


def test_full_disk_while_writing_pngs(derived_shot, shifted, tmp_path, monkeypatch):
    from dubstudio.export import writers

    shot = derived_shot(n=8, fps=Fraction(25))

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers, "_write_bytes", full)
    with pytest.raises(MediaError, match="disk full"):
        export_shot(shot.project, shifted(shot.tracking, shot.clip), tmp_path / "seq", ExportSettings(render=FAST))
    assert list(tmp_path.iterdir()) == [] or all(p.name.startswith(("shot", "proj")) for p in tmp_path.iterdir())


def test_clear_errors_before_any_work(derived_shot, shifted, media, tmp_path):
    shot = derived_shot(n=8, fps=Fraction(25))
    r = shifted(shot.tracking, shot.clip)
    with pytest.raises(DubStudioError, match=r"\.mp4.*\.mov.*folder"):
        export_shot(shot.project, r, tmp_path / "a.avi")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(MediaError, match="already holds other files"):
        export_shot(shot.project, r, busy)
    with pytest.raises(DubStudioError, match="cannot be written as"):
        export_shot(shot.project, r, tmp_path / "a.mp4", ExportSettings(format="mov"))
    untracked = Project.create(tmp_path / "untracked", media / "talk_a.mp4")
    with pytest.raises(ProjectError, match="dubstudio track"):
        export_shot(untracked, r, tmp_path / "b.mp4")
    assert not (tmp_path / "b.mp4").exists() and (busy / "notes.txt").exists()


def _peak_mb(shot, renderer, out) -> float:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        export_shot(shot.project, renderer, out, ExportSettings(render=RenderSettings(batch_size=8, background=None)))
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_shots_length(derived_shot, shifted, tmp_path):
    """4x the frames, same peak: frames are streamed, never collected (a leak of the frames
    alone would add 90 x 2 x 192 KB = 34 MB here)."""
    short = derived_shot(n=30, fps=Fraction(25), audio_s=1.2)
    long = derived_shot(n=120, fps=Fraction(25), audio_s=4.8)
    _peak_mb(short, shifted(short.tracking, short.clip, preload=24), tmp_path / "warm.mp4")  # one-time imports and caches
    p_short = _peak_mb(short, shifted(short.tracking, short.clip, preload=24), tmp_path / "s.mp4")
    p_long = _peak_mb(long, shifted(long.tracking, long.clip, preload=24), tmp_path / "l.mp4")
    # what does grow: the audio (6.4 s x 48 kHz x 4 B x ~2 copies) and the tracking arrays
    print(f"peak traced memory: {p_short:.1f} MB for 30 frames, {p_long:.1f} MB for 120")
    assert p_long < p_short + 5, (p_short, p_long)


def test_format_flag_overrides_the_name(derived_shot, shifted, tmp_path):
    from dubstudio.export.verify import summarize

    shot = derived_shot(n=6, fps=Fraction(25))
    r = shifted(shot.tracking, shot.clip)
    res = export_shot(shot.project, r, tmp_path / "take3", ExportSettings(format="mov", render=FAST, audio=AudioRequest("none")))
    assert res["format"] == "mov" and (tmp_path / "take3").is_file()
    assert summarize(tmp_path / "take3")["video"]["codec"] == "prores"


def test_the_painted_mask_reaches_the_export(derived_shot, shifted, tmp_path):
    """A mask erased everywhere in the editor means nothing is replaced: the exported frames are
    the source frames, bit for bit (no synthetic pixels, so no watermark either)."""
    import cv2

    from dubstudio.io.video import VideoReader
    from dubstudio.masks.layer import Footprint, MaskLayer, PaintStroke
    from dubstudio.masks.store import MaskStore

    shot = derived_shot(n=6, fps=Fraction(25))
    r = shifted(shot.tracking, shot.clip)
    export_shot(shot.project, r, tmp_path / "auto", ExportSettings(render=FAST, audio=AudioRequest("none")))
    layer = MaskLayer(n_frames=shot.tracking.n_frames)
    PaintStroke(Footprint.from_full(np.ones((layer.size, layer.size), np.float32)), -1.0).apply(layer)
    MaskStore(shot.project).save(layer)
    export_shot(shot.project, r, tmp_path / "erased", ExportSettings(render=FAST, audio=AudioRequest("none")))
    with VideoReader(shot.clip) as v:
        for i, src in v.iter_frames(0, 6):
            auto = cv2.cvtColor(cv2.imread(str(tmp_path / "auto" / f"frame_{i:06d}.png")), cv2.COLOR_BGR2RGB)
            erased = cv2.cvtColor(cv2.imread(str(tmp_path / "erased" / f"frame_{i:06d}.png")), cv2.COLOR_BGR2RGB)
            assert not np.array_equal(auto, src)  # the automatic mask replaces the lower face
            d = np.abs(erased.astype(int) - src.astype(int))
            assert d.max() == 0, (i, int(d.max()), int((d > 0).sum()), np.argwhere(d.max(axis=2) > 0)[:3].tolist())
