"""A cut through the farm path, timed: conform import -> farm submit -> the bundle run here by the
OpenJD runner with 1 worker, then again from scratch with 2 parallel workers (issue 25).

    .venv/bin/python benchmarks/farm_bench.py --work DIR [--steps 120 --from-shot-steps 40] [--json OUT]

The cut is the one the end-to-end test builds (tests/farm/test_cut_to_farm_and_back.py): an EDL of
three shots from talk_a and talk_b (two actors, anna's second shot started from her first), with
source timecodes, and a German stem. Each run starts from empty projects, so both do the same work.
Per task, the wall time of each stage comes from the OpenJD session logs. Run it alone: the point
is the ratio of the two runs on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "farm"))


def build_cut(work: Path, media: Path) -> tuple[Path, Path, Path]:
    import soundfile as sf

    from dubstudio.io.bwf import add_bext
    from test_cut_to_farm_and_back import with_timecode

    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    with_timecode(media / "talk_a.mp4", src / "A001C003.mov", "10:00:00:00")
    with_timecode(media / "talk_b.mp4", src / "B002C001.mov", "14:20:05:00")
    cut = work / "reel1.edl"
    cut.write_text("\n".join([
        "TITLE: REEL 1", "FCM: NON-DROP FRAME", "",
        "001  A001C003 V     C        10:00:00:05 10:00:01:15 01:00:00:00 01:00:01:10",
        "* FROM CLIP NAME: sh010 [anna]",
        "002  B002C001 V     C        14:20:06:00 14:20:07:10 01:00:01:10 01:00:02:20",
        "* FROM CLIP NAME: sh020 [ben]",
        "003  A001C003 V     C        10:00:02:10 10:00:03:20 01:00:02:20 01:00:04:05",
        "* FROM CLIP NAME: sh030 [anna]", ""]))
    speech, sr = sf.read(media / "speech_de.wav", dtype="float32", always_2d=True)
    stem = work / "reel1_de.wav"
    sf.write(stem, speech[sr : sr + 5 * sr], sr, subtype="PCM_24")
    add_bext(stem, 3600 * sr)
    return cut, stem, src


def stage_times(logs: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for log in sorted(logs.glob("*.log")):
        m = re.search(r"line (\d+) (\w+): done in (\d+) s", log.read_text())
        if m:
            out.setdefault(m[2], []).append(float(m[3]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--from-shot-steps", type=int, default=40)
    ap.add_argument("--json")
    args = ap.parse_args()
    from dubstudio.app.conform import ConformRequest, ImportRequest, conform_export_job, import_cut_job
    from dubstudio.app.farm import LocalRunRequest, SubmitRequest, run_bundle_job, submit_job
    from dubstudio.core.paths import media_dir

    shutil.rmtree(args.work, ignore_errors=True)
    cut, stem, src = build_cut(args.work, media_dir())
    runs = {}
    for workers in (1, 2):
        job, bundle = args.work / f"job_{workers}", args.work / f"bundle_{workers}"
        t0 = time.perf_counter()
        imp = import_cut_job(ImportRequest(cut, stem, media=(src,), rate=None, out=job, handles=4, language="de"))
        t_import = time.perf_counter() - t0
        submit_job(SubmitRequest(Path(imp["shot_list"]), bundle, steps=args.steps, from_shot_steps=args.from_shot_steps))
        ran = run_bundle_job(LocalRunRequest(bundle, workers=workers))
        conformed = conform_export_job(ConformRequest(job, args.work / f"reel1_de_{workers}.otio"))
        runs[workers] = {"ok": ran.ok and not conformed.kept, "import_s": round(t_import, 1), "run_s": round(ran.wall_s, 1),
                         "steps": ran.to_json()["steps"], "stage_task_s": stage_times(bundle / "logs"),
                         "relinked": conformed.relinked}
        print(json.dumps({"workers": workers} | runs[workers]), flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "adapt_steps": args.steps,
              "from_shot_steps": args.from_shot_steps, "runs": runs,
              "speed_up_2_workers": round(runs[1]["run_s"] / runs[2]["run_s"], 2)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
