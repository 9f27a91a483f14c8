"""Atomic writes, fingerprints, the project file, stage currency and resumable chunks."""

from __future__ import annotations

import errno
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import dubstudio.io.atomic as atomic
import dubstudio.project.store as project_mod
from dubstudio.core.errors import ProjectError
from dubstudio.io.atomic import (
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_fingerprint,
    settings_hash,
)
from dubstudio.project.store import ChunkStore, Project


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A stand-in source video (the store only fingerprints it, never decodes it)."""
    p = tmp_path / "src" / "clip.mp4"
    p.parent.mkdir()
    p.write_bytes(os.urandom(4096))
    return p


# --- atomic writes -------------------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    atomic_write_text(f, "old")
    atomic_write_bytes(f, b"new")
    assert f.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_keeps_old_content(tmp_path: Path, monkeypatch, failing: str) -> None:
    f = tmp_path / "project.json"
    atomic_write_json(f, {"v": 1})
    monkeypatch.setattr(atomic.os, failing, _enospc)
    with pytest.raises(ProjectError, match="disk full.*nothing was overwritten"):
        atomic_write_json(f, {"v": 2})
    monkeypatch.undo()
    assert json.loads(f.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["project.json"]


def test_exception_inside_atomic_open_keeps_old_content(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    atomic_write_bytes(f, b"keep")
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(f) as fh:
            fh.write(b"partial")
            raise RuntimeError("cancelled")
    assert f.read_bytes() == b"keep" and len(list(tmp_path.iterdir())) == 1


def test_json_is_sorted_and_indented(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    atomic_write_json(f, {"b": 1, "a": {"d": Fraction(30000, 1001), "c": Path("x/y")}})
    text = f.read_text()
    assert text == '{\n  "a": {\n    "c": "x/y",\n    "d": "30000/1001"\n  },\n  "b": 1\n}\n'


def test_npz_roundtrip_keeps_name(tmp_path: Path) -> None:
    f = tmp_path / "arr.npz"
    atomic_save_npz(f, x=np.arange(5), y=np.eye(2, dtype=np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["arr.npz"]
    with np.load(f) as z:
        np.testing.assert_array_equal(z["x"], np.arange(5))
        assert z["y"].dtype == np.float32


def test_fingerprint_is_content_based(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(os.urandom(10_000))
    b = tmp_path / "b.bin"
    shutil.copyfile(a, b)
    os.utime(b, ns=(1, 1))
    assert file_fingerprint(a) == file_fingerprint(b)
    b.write_bytes(a.read_bytes()[:-1] + b"\x00")
    assert file_fingerprint(a) != file_fingerprint(b)


def test_fingerprint_samples_large_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "_FULL_HASH_LIMIT", 1000)
    monkeypatch.setattr(atomic, "_SAMPLE", 100)
    data = bytearray(os.urandom(5000))
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    fp = file_fingerprint(f)
    data[1000] ^= 1  # outside the three samples: not seen (the point of sampling)
    f.write_bytes(data)
    assert file_fingerprint(f) == fp
    data[2460] ^= 1  # inside the middle sample
    f.write_bytes(data)
    assert file_fingerprint(f) != fp


def test_settings_hash_is_canonical() -> None:
    a = settings_hash({"lr": 1e-3, "steps": 100, "fps": Fraction(25), "w": np.float32(0.5)})
    b = settings_hash({"w": 0.5, "fps": Fraction(25), "steps": 100, "lr": 0.001})
    assert a == b and len(a) == 64
    assert settings_hash({"steps": 101}) != settings_hash({"steps": 100})


# --- project file --------------------------------------------------------------------------------


def test_create_and_open(tmp_path: Path, video: Path) -> None:
    root = tmp_path / "proj"
    p = Project.create(root, video)
    assert (root / "project.json").is_file() and (root / "cache").is_dir()
    data = json.loads((root / "project.json").read_text())
    assert data["schema_version"] == 1
    assert data["video"]["path"] == str(video.resolve())
    assert Path(data["video"]["path"]).is_absolute()
    q = Project.open(root)
    assert q.video_path == video.resolve() and q.video_fingerprint == p.video_fingerprint
    assert q.check_video() == video.resolve()


def test_create_again(tmp_path: Path, video: Path) -> None:
    root = tmp_path / "proj"
    Project.create(root, video).data["note"] = "unsaved"
    moved = tmp_path / "moved.mp4"
    shutil.copyfile(video, moved)
    p = Project.create(root, moved)  # same content elsewhere: opens, follows the new path
    assert p.video_path == moved.resolve()
    other = tmp_path / "other.mp4"
    other.write_bytes(b"different video")
    with pytest.raises(ProjectError, match="another video"):
        Project.create(root, other)
    with pytest.raises(ProjectError, match="video not found"):
        Project.create(tmp_path / "p2", tmp_path / "nope.mp4")


def test_check_video_detects_missing_and_changed(tmp_path: Path, video: Path) -> None:
    p = Project.create(tmp_path / "proj", video)
    video.write_bytes(b"re-encoded")
    with pytest.raises(ProjectError, match="has changed"):
        p.check_video()
    video.unlink()
    with pytest.raises(ProjectError, match="missing"):
        p.check_video()


@pytest.mark.parametrize(
    "content, needle",
    [
        ("{not json", "damaged"),
        ("", "damaged"),
        ('{"video": {}}', "schema_version"),
        ('[1, 2]', "schema_version"),
        ('{"schema_version": 1}', "no source video"),
    ],
)
def test_corrupt_project_json(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "project.json").write_text(content)
    with pytest.raises(ProjectError, match=needle):
        Project.open(tmp_path)


def test_open_missing(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not found"):
        Project.open(tmp_path / "nope")
    with pytest.raises(ProjectError, match="not a DubStudio project"):
        Project.open(tmp_path)


def test_newer_schema_is_refused(tmp_path: Path, video: Path) -> None:
    p = Project.create(tmp_path / "proj", video)
    p.data["schema_version"] = 2
    p.save()
    with pytest.raises(ProjectError, match="newer DubStudio.*update"):
        Project.open(p.root)


def test_older_schema_is_migrated(tmp_path: Path, video: Path, monkeypatch) -> None:
    p = Project.create(tmp_path / "proj", video)
    p.data["stages"] = {"track": {"key": "k", "outputs": {}, "metrics": {}}}
    p.save()
    monkeypatch.setattr(project_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(project_mod, "MIGRATIONS", {})
    with pytest.raises(ProjectError, match="cannot upgrade"):
        Project.open(p.root)

    def v1_to_v2(d: dict) -> dict:
        d["stages"] = {k: {**v, "migrated": True} for k, v in d["stages"].items()}
        return d

    monkeypatch.setattr(project_mod, "MIGRATIONS", {1: v1_to_v2})
    q = Project.open(p.root)
    assert q.data["schema_version"] == 2 and q.stage_record("track")["migrated"]
    assert json.loads((p.root / "project.json").read_text())["schema_version"] == 2
    assert json.loads((p.root / "project.json.v1.bak").read_text())["schema_version"] == 1


# --- stages --------------------------------------------------------------------------------------


def test_stage_currency(tmp_path: Path, video: Path) -> None:
    p = Project.create(tmp_path / "proj", video)
    settings = {"version": 1, "smooth": 0.5}
    key = p.stage_key("track", {"video": video}, settings)
    assert key == p.stage_key("track", {"video": video}, dict(reversed(settings.items())))
    assert not p.stage_is_current("track", key)

    out = p.cache_dir("track") / "tracks.npz"
    atomic_save_npz(out, x=np.zeros(3))
    p.record_stage("track", key, {"tracks": "cache/track/tracks.npz"}, {"frames": np.int64(3)})
    assert p.stage_is_current("track", key)
    assert Project.open(p.root).stage_is_current("track", key)  # persisted
    assert p.stage_record("track")["metrics"] == {"frames": 3}

    changed = p.stage_key("track", {"video": video}, {**settings, "smooth": 0.6})
    assert changed != key and not p.stage_is_current("track", changed)

    shutil.copyfile(video, tmp_path / "copy.mp4")  # inputs are hashed by content, not path
    assert p.stage_key("track", {"video": tmp_path / "copy.mp4"}, settings) == key
    video.write_bytes(b"new content")
    assert p.stage_key("track", {"video": video}, settings) != key

    out.unlink()
    assert not p.stage_is_current("track", key)
    p.invalidate_stage("track")
    assert p.stage_record("track") is None


def test_two_holders_of_a_project_keep_each_others_records(tmp_path: Path, video: Path) -> None:
    """Two jobs (or the editor and a job) hold the same project: each reads what the other saved
    and a save keeps it (read-modify-write of the current file, not of a stale copy)."""
    from dubstudio.shot.dub_audio import DUB_AUDIO_KEY, record_dub_audio, recorded_dub_audio

    a = Project.create(tmp_path / "proj", video)
    b = Project.open(a.root)  # e.g. the editor's copy, opened before the job below
    for name in ("adapt", "export"):
        atomic_save_npz(a.cache_dir(name) / "out.npz", x=np.zeros(1))
    a.record_stage("adapt", "k1", {"actor": "cache/adapt/out.npz"})
    assert b.stage_record("adapt")["key"] == "k1"  # seen without reopening
    record_dub_audio(b, video, "audio", 0.5, 0.5)
    b.record_stage("export", "k2", {"out": "cache/export/out.npz"})
    fresh = Project.open(a.root)
    assert fresh.stage_record("adapt")["key"] == "k1" and fresh.stage_record("export")["key"] == "k2"
    assert recorded_dub_audio(a)["start_in_shot_s"] == 0.5 and DUB_AUDIO_KEY in fresh.data
    a.invalidate_stage("export")  # a's copy knew nothing of "export": it drops it from the current file
    assert Project.open(a.root).stage_record("export") is None and b.stage_record("export") is None
    assert b.stage_record("adapt")["key"] == "k1"


def test_record_stage_checks_outputs(tmp_path: Path, video: Path) -> None:
    p = Project.create(tmp_path / "proj", video)
    with pytest.raises(ProjectError, match="was not written"):
        p.record_stage("fit", "k", {"params": "cache/fit/params.npz"})
    with pytest.raises(ProjectError, match="inside the project"):
        p.path("../outside.txt")
    with pytest.raises(ProjectError, match="inside the project"):
        p.path("/etc/passwd")
    with pytest.raises(ValueError):
        p.cache_dir("../evil")
    with pytest.raises(ProjectError, match="missing"):
        p.stage_key("fit", {"tracks": p.path("cache/none.npz")}, {})


# --- chunk store ---------------------------------------------------------------------------------


def _run_job(store: ChunkStore, n: int, computed: list[int], crash_after: int | None = None) -> None:
    """A long job: one chunk per unit of work, resumable."""
    for i in store.missing(n):
        store.save(i, value=np.full(4, i), sq=np.array([i * i]))
        computed.append(i)
        if crash_after is not None and i == crash_after:
            raise KeyboardInterrupt  # the process is killed here


def test_chunkstore_resumes_after_a_kill(tmp_path: Path) -> None:
    d = tmp_path / "chunks"
    computed: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        _run_job(ChunkStore(d, "key-a"), 6, computed, crash_after=2)
    (d / ".chunk_00003.npz.abcd.tmp").write_bytes(b"half a chunk")  # a writer killed mid-write
    assert computed == [0, 1, 2]

    store = ChunkStore(d, "key-a")
    assert not list(d.glob("*.tmp"))
    assert store.has(2) and not store.has(3)
    _run_job(store, 6, computed)
    assert computed == [0, 1, 2, 3, 4, 5]  # nothing recomputed
    assert store.indices() == list(range(6)) and store.missing(6) == []
    np.testing.assert_array_equal(store.load(4)["value"], np.full(4, 4))


def test_chunkstore_key_change_invalidates(tmp_path: Path) -> None:
    d = tmp_path / "chunks"
    a = ChunkStore(d, "key-a")
    a.save(0, x=np.ones(2))
    assert ChunkStore(d, "key-a").has(0)
    b = ChunkStore(d, "key-b")
    assert not b.has(0) and b.indices() == []
    assert json.loads((d / "meta.json").read_text())["key"] == "key-b"
    with pytest.raises(KeyError):
        b.load(0)


def test_chunkstore_damaged_chunk(tmp_path: Path) -> None:
    s = ChunkStore(tmp_path, "k")
    s.save(1, x=np.ones(2))
    (tmp_path / "chunk_00001.npz").write_bytes(b"garbage")
    with pytest.raises(ProjectError, match="damaged.*recompute"):
        s.load(1)
    assert not s.has(1)


def test_a_second_writer_waits_for_the_lock_or_says_who_holds_it(tmp_path: Path, video: Path, monkeypatch) -> None:
    """Another process saving the project holds its lock: a writer here waits for it, and when
    it is held too long says which process holds it (the CLI and the editor share the lock)."""
    import subprocess
    import sys
    import textwrap
    import time

    import dubstudio.project.store as store

    p = Project.create(tmp_path / "proj", video)
    atomic_save_npz(p.cache_dir("adapt") / "out.npz", x=np.zeros(1))
    holder = textwrap.dedent(f"""
        import sys, time
        from dubstudio.project.store import Project
        p = Project.open({str(p.root)!r})
        with p.locked():
            print("held", flush=True)
            time.sleep(float(sys.argv[1]))
    """)

    def hold(seconds: float) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", holder, str(seconds)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        return proc

    proc = hold(1.5)
    t0 = time.perf_counter()
    p.record_stage("adapt", "k", {"actor": "cache/adapt/out.npz"})  # waits, then writes
    assert time.perf_counter() - t0 > 0.8
    proc.wait(10)
    assert Project.open(p.root).stage_record("adapt")["key"] == "k"
    monkeypatch.setattr(store, "LOCK_WAIT_S", 0.3)
    proc = hold(5)
    try:
        with pytest.raises(ProjectError, match=f"pid {proc.pid} on .*held it for more than"):
            Project.open(p.root).invalidate_stage("adapt")
    finally:
        proc.kill()
        proc.wait(10)
    assert Project.open(p.root).stage_record("adapt") is not None  # nothing changed


def test_a_read_only_project_folder_is_a_clear_error(tmp_path: Path, video: Path) -> None:
    import stat

    p = Project.create(tmp_path / "proj", video)
    p.root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(p.root, os.W_OK):  # root ignores permission bits
            pytest.skip("running as root: a read-only folder is still writable")
        # the lock (when it has to be made) or the atomic write says it, in one line; the file is untouched
        before = (p.root / "project.json").read_bytes()
        with pytest.raises(ProjectError, match=r"cannot write (in the project folder|.*project\.json: Permission denied)") as e:
            p.save()
        assert "\n" not in str(e.value) and (p.root / "project.json").read_bytes() == before
    finally:
        p.root.chmod(0o755)
