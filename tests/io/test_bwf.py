"""Broadcast WAV time reference: written into a finished WAV, read back by ffprobe and by us."""

import subprocess

import numpy as np
import soundfile as sf

from dubstudio.io.bwf import add_bext, read_bext


def test_bext_is_added_replaced_and_leaves_the_sound_alone(tmp_path):
    path = tmp_path / "a.wav"
    x = (0.1 * np.sin(np.arange(4801) / 7.0)).astype(np.float32)  # odd length: a padded data chunk
    sf.write(str(path), x, 48000, subtype="PCM_24")
    assert read_bext(path) is None
    add_bext(path, 172_800_000, description="one hour in")
    add_bext(path, 2**33 + 5, description="replaced")  # past 32 bits: the high word is used
    b = read_bext(path)
    assert b["time_reference"] == 2**33 + 5 and b["description"] == "replaced" and b["version"] == 1
    y, sr = sf.read(str(path), dtype="float32")
    assert sr == 48000 and len(y) == 4801 and np.abs(y - x).max() < 1e-6
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=time_reference", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(2**33 + 5)
    assert path.read_bytes().count(b"bext") == 1


def test_bext_goes_into_a_long_wav_without_reading_it_whole_and_refuses_a_truncated_one(tmp_path):
    import tracemalloc

    import pytest

    path = tmp_path / "long.wav"
    sf.write(str(path), np.zeros((48000 * 60, 2), np.float32), 48000, subtype="PCM_24")  # 17 MB
    tracemalloc.start()
    add_bext(path, 3600 * 48000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # blocks, not the file
    assert read_bext(path)["time_reference"] == 3600 * 48000
    y, sr = sf.read(str(path), dtype="float32", frames=10)
    assert sr == 48000 and y.shape == (10, 2)
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        add_bext(cut, 0)
    assert cut.read_bytes() == data[: len(data) // 2] and not list(tmp_path.glob(".cut.wav.bext-*"))  # left as it was
