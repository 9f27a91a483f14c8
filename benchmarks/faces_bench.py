"""Several faces: does the face signature tell people apart, and does a chosen face follow its person?

    .venv/bin/python benchmarks/faces_bench.py [--frames 40] [--json OUT.json]

For each clip, every ``step``-th frame's face is compared with the clip's first frame (the same
person: the gap a threshold must accept); for each pair of clips, their first frames (two people:
what it must refuse). Then, for each pair, a side-by-side clip in which the two trade places
halfway (a cut) is tracked with ``--face 1`` and with a click on the other side after the swap:
the share of frames whose tracked face is the right person. ``tracking.faces.MAX_SHAPE_GAP`` was
chosen on talk_a and talk_b; the other clips are held out of that choice and reported apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from dubstudio.app.track import TrackRequest, track_job
from dubstudio.core.paths import media_dir
from dubstudio.io.video import VideoReader
from dubstudio.io.video_writer import VideoWriter
from dubstudio.tracking.faces import MAX_SHAPE_GAP, shape_gap, signature
from dubstudio.tracking.landmarks import LandmarkDetector

TUNED_ON = ("talk_a", "talk_b")
CLIPS = ("talk_a", "talk_b", "talk_c", "talk_e")
SIDE = 320


def frames(clip: str, n: int) -> list[np.ndarray]:
    with VideoReader(media_dir() / f"{clip}.mp4") as r:
        n = min(n, r.n_frames)
        out = []
        for i in range(n):
            f = r.frame(i)
            s = min(f.shape[:2])  # centre square (talk_d is portrait)
            y, x = (f.shape[0] - s) // 2, (f.shape[1] - s) // 2
            out.append(cv2.resize(f[y:y + s, x:x + s], (SIDE, SIDE), interpolation=cv2.INTER_AREA))
        return out


def signatures(imgs: list[np.ndarray], step: int) -> list[np.ndarray]:
    with LandmarkDetector(video=False) as det:
        out = []
        for im in imgs[::step]:
            lm = det.detect(im)
            if lm is not None:
                out.append(signature(lm))
        return out


def swap_accuracy(a: list[np.ndarray], b: list[np.ndarray], folder: Path) -> dict:
    n = min(len(a), len(b))
    swap = n // 2
    clip = folder / "two.mp4"
    with VideoWriter(clip, 25, 2 * SIDE, SIDE) as w:
        for i in range(n):
            w.write(np.hstack([a[i], b[i]] if i < swap else [b[i], a[i]]))
    want = np.array([1] * swap + [0] * (n - swap))  # b: right, then left
    out = {}
    for name, face in (("index", "1"), ("click", f"{SIDE // 2},{SIDE // 2}@{swap + 2}"), ("auto", "auto")):
        r = track_job(TrackRequest(clip, folder / f"p_{name}", face=face))
        x = np.nanmean(r.tracking.landmarks[:, :, 0], axis=1)
        side = (x > SIDE).astype(int)
        ok = r.tracking.has_face & (side == want)
        out[name] = round(float(ok.mean()), 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    imgs = {c: frames(c, args.frames) for c in CLIPS}
    sigs = {c: signatures(imgs[c], args.step) for c in CLIPS}
    same = {c: [round(shape_gap(s[0], t), 4) for t in s[1:]] for c, s in sigs.items()}
    pairs = []
    with tempfile.TemporaryDirectory() as d:
        for a, b in itertools.combinations(CLIPS, 2):
            folder = Path(d) / f"{a}_{b}"
            folder.mkdir()
            pairs.append({"pair": f"{a}+{b}", "held_out": not {a, b} <= set(TUNED_ON),
                          "gap": round(shape_gap(sigs[a][0], sigs[b][0]), 4),
                          "right_person": swap_accuracy(imgs[a], imgs[b], folder)})
    res = {"machine": f"{platform.machine()}, {platform.python_version()}", "threshold": MAX_SHAPE_GAP,
           "same_person_max": {c: max(v) for c, v in same.items()}, "same_person_median": {c: float(np.median(v)) for c, v in same.items()},
           "pairs": pairs}
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
