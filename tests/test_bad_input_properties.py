"""Property-based bad input (issue 23): generated project files, shot lists and command lines
fed to the loaders and the CLI. Every failure must be a DubStudio error of one line, never a
traceback."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dubstudio.app.batch import read_shot_list
from dubstudio.core.errors import DubStudioError
from dubstudio.project.store import PROJECT_FILE, Project

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# JSON values, with the names a project file uses among the keys
KEYS = st.sampled_from(["schema_version", "video", "path", "fingerprint", "size", "stages", "track", "key", "outputs",
                        "metrics", "dub_audio", "kind", "source", "offset_s", "start_in_shot_s", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
                    max_leaves=12)


def one_line(e: BaseException) -> None:
    assert isinstance(e, DubStudioError), f"{type(e).__name__}: {e}"
    assert "\n" not in str(e) and str(e), repr(str(e))


def _project_file(draw_value, video: Path) -> dict:
    base = {"schema_version": 1, "video": {"path": str(video), "fingerprint": "f", "size": 1}, "stages": {}}
    return base | draw_value if isinstance(draw_value, dict) else draw_value


@SETTINGS
@given(value=JSON, keep_base=st.booleans())
def test_any_project_file_opens_or_says_in_one_line_what_is_wrong(tmp_path_factory, value, keep_base):
    root = tmp_path_factory.mktemp("p")
    video = root / "v.mp4"
    video.write_bytes(b"x")
    data = _project_file(value, video) if keep_base else value
    (root / PROJECT_FILE).write_text(json.dumps(data), encoding="utf-8")
    try:
        p = Project.open(root)
        for name in ("track", "adapt", "x"):
            p.stage_record(name)
        p.video_path  # noqa: B018 - reading it must not fail either
    except Exception as e:  # noqa: BLE001 - the property: only one-line DubStudio errors
        one_line(e)


CELLS = st.one_of(st.just(""), st.sampled_from(["a.mov", "b.wav", "missing.mov", "tc", "1.5", "-2", "nan", "x.avi", "pad", "out/o.mp4",
                                                 "a.mov,b.wav", '"quoted"', "é", "\x00"]),
                  st.text(alphabet=string.printable, max_size=6))
HEADERS = st.lists(st.sampled_from(["shot", "audio", "dubber", "actor", "offset", "output", "audio_policy", "Speaker", ""]),
                   min_size=1, max_size=7)


@SETTINGS
@given(header=HEADERS, rows=st.lists(st.lists(CELLS, max_size=8), max_size=4), raw=st.binary(max_size=40), as_text=st.booleans())
def test_any_shot_list_reads_or_names_its_problems_in_one_line(tmp_path_factory, header, rows, raw, as_text):
    d = tmp_path_factory.mktemp("list")
    (d / "a.mov").write_bytes(b"x")
    (d / "b.wav").write_bytes(b"x")
    lst = d / "shots.csv"
    if as_text:
        lst.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]), encoding="utf-8", errors="surrogateescape")
    else:
        lst.write_bytes(raw)
    try:
        read_shot_list(lst)
    except Exception as e:  # noqa: BLE001
        one_line(e)


COMMANDS = st.sampled_from([["info"], ["track"], ["dub", "--project"], ["export", "--project"], ["relink", "--project"],
                            ["batch"], ["render", "--project"], ["eval", "--project"], ["check-mark"], ["stopped-exports"]])
ARGS = st.lists(st.one_of(st.sampled_from(["--audio", "--dubber", "--offset", "-o", "--frames", "--train-frames", "--test-frames",
                                           "--renderer", "copy", "--steps", "--json", "-q", "tc", "nan", "-1e9", "0:5", "5:0",
                                           "--audio-policy", "loud", "--detail", "2", "--crf", "-3", "--format", "gif"]),
                          st.sampled_from(["JUNK", "EMPTY", "MISSING", "DIR"]),
                          st.text(alphabet=string.ascii_letters + string.digits + "-.:", max_size=6)),
                max_size=6)


@pytest.fixture(scope="module")
def junk(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("junk")
    (d / "junk.mp4").write_bytes(b"\x00not a video" * 50)
    (d / "empty.wav").write_bytes(b"")
    (d / "folder").mkdir()
    return {"JUNK": str(d / "junk.mp4"), "EMPTY": str(d / "empty.wav"), "MISSING": str(d / "missing.mov"), "DIR": str(d / "folder")}


@SETTINGS
@given(command=COMMANDS, args=ARGS)
def test_any_command_line_ends_in_one_line_or_works(junk, capsys, command, args):
    from dubstudio.cli import main

    argv = command + [junk.get(a, a) for a in args]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: --help (0) or a wrong argument (2)
        code = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lstrip().startswith(("W0000", "I0000"))]
    if code == 2:
        assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err, (argv, err)
    else:
        assert code in (0, 1), (argv, code, err)
