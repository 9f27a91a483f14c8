"""Shots with two faces: the shot says so, and a chosen face is followed by who it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dubstudio.app.track import TrackRequest, track_job
from dubstudio.core.errors import DubStudioError
from dubstudio.io.video import VideoReader
from dubstudio.project.store import Project
from dubstudio.tracking.faces import FaceChoice, FaceFollower, parse_face, shape_gap, signature
from dubstudio.tracking.track import TrackSettings, chosen_face
from media_helpers import two_face_clip

N, SWAP, SIDE = 40, 20, 320


@pytest.fixture(scope="module")
def two_faces(media, tmp_path_factory) -> Path:
    """talk_a on the left and talk_b on the right; at frame SWAP they trade places (a cut)."""
    return two_face_clip(media, tmp_path_factory.mktemp("two") / "two.mp4", N, SWAP, SIDE)


def _side(tracking) -> np.ndarray:
    """Per frame: 0 when the tracked face is on the left half, 1 on the right."""
    x = np.nanmean(tracking.landmarks[:, :, 0], axis=1)
    return (x > SIDE).astype(int)


def test_parse_face():
    assert parse_face(None) is None and parse_face("auto") is None and parse_face(" ") is None
    assert parse_face("1") == FaceChoice(index=1)
    assert parse_face("640,360@12") == FaceChoice(point=(640.0, 360.0), frame=12)
    for bad in ("x", "9", "-1", "1,2,3", "nan,3", "1@-2", "1@x"):
        with pytest.raises(DubStudioError, match="--face"):
            parse_face(bad)


def test_signature_tells_people_apart_not_poses(two_faces):
    """The shape gap between two frames of one person is well below the gap between the two people."""
    from dubstudio.tracking.landmarks import LandmarkDetector

    with VideoReader(two_faces) as r, LandmarkDetector(video=False, max_faces=4) as det:
        first = sorted(det.detect_all(r.frame(0)), key=lambda f: f[:, 0].mean())
        later = sorted(det.detect_all(r.frame(SWAP - 1)), key=lambda f: f[:, 0].mean())
    assert len(first) == len(later) == 2
    same = max(shape_gap(signature(first[k]), signature(later[k])) for k in (0, 1))
    other = shape_gap(signature(first[0]), signature(first[1]))
    assert same < other / 1.5, (same, other)


def test_follower_keeps_the_person_when_they_trade_places():
    rng = np.random.default_rng(0)
    base = [rng.normal(size=(478, 3)) * 50 for _ in range(2)]
    left, right = base[0] + [100, 200, 0], base[1] + [500, 200, 0]
    f = FaceFollower(FaceChoice(index=1))
    assert f.pick([right, left]) is right  # the right one, whatever the detector's order
    swapped = [base[1] + [100, 200, 0], base[0] + [500, 200, 0]]
    got = f.pick(swapped)
    assert got is swapped[0]  # the same person, now on the left
    assert f.pick([swapped[1]]) is None  # only the other person on the frame: no face


def test_two_faces_automatic_says_so_and_chosen_face_follows_identity(two_faces, tmp_path):
    proj = tmp_path / "p"
    auto = track_job(TrackRequest(two_faces, proj))
    assert auto.metrics["faces_seen"] == 2 and auto.metrics["face"] == "automatic"
    assert "2 faces in this shot" in auto.describe() and "--face" in auto.describe()

    right = track_job(TrackRequest(two_faces, proj, face="1"))  # talk_b: right, then left after the swap
    side = _side(right.tracking)
    assert right.tracking.has_face.all()
    assert (side[:SWAP] == 1).all() and (side[SWAP:] == 0).all(), side
    assert right.metrics["face_spec"] == "1"

    # the project keeps the choice: tracking again without --face is the cached result, and the key agrees
    again = track_job(TrackRequest(two_faces, proj))
    assert again.metrics["cached"] and chosen_face(Project.open(proj), TrackSettings()) == "1"

    # a click on the left face after the swap (talk_b again) picks the same person as "1"
    click = track_job(TrackRequest(two_faces, proj, face=f"{SIDE // 2},{SIDE // 2}@{SWAP + 5}"))
    np.testing.assert_array_equal(_side(click.tracking), side)

    back = track_job(TrackRequest(two_faces, proj, face="auto"))
    assert back.metrics["face"] == "automatic" and "face_spec" not in back.metrics


def test_face_errors_are_one_line_and_keep_the_tracking(two_faces, tmp_path):
    proj = tmp_path / "p"
    track_job(TrackRequest(two_faces, proj, face="0"))
    for bad, msg in (("3", "no frame shows 4 faces"), (f"0@{N + 5}", "the shot has frames")):
        r = subprocess.run([sys.executable, "-m", "dubstudio.cli", "track", str(two_faces), "--project", str(proj), "--face", bad],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode != 0
        last = r.stderr.strip().splitlines()[-1]
        assert msg in last and "Traceback" not in r.stderr, r.stderr
    assert chosen_face(Project.open(proj), TrackSettings()) == "0"  # the earlier choice is intact

    # corrections made on face 0 are not moved onto face 1: refused, nothing changed
    from dubstudio.tracking.correction_store import CorrectionStore

    corrections = CorrectionStore(Project.open(proj)).path
    corrections.parent.mkdir(parents=True, exist_ok=True)
    corrections.write_text("{}")
    with pytest.raises(DubStudioError, match="tracking corrections made on the face tracked now"):
        track_job(TrackRequest(two_faces, proj, face="1"))
    assert track_job(TrackRequest(two_faces, proj, face="0")).metrics["cached"]  # the same face: fine
    assert chosen_face(Project.open(proj), TrackSettings()) == "0" and corrections.read_text() == "{}"
