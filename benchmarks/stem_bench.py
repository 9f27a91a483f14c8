"""A reel's dialogue stem placed on a shot by timecode: wall time and peak memory of `dub` and
`export` (each its own process); prints one JSON object.

    .venv/bin/python benchmarks/stem_bench.py [--work /tmp/stem_bench] [--minutes 20]

Builds a stem like a dubbing studio's delivery: a Broadcast WAV (48 kHz, 24-bit stereo) of
``--minutes`` of low pink noise starting at 01:00:00:00, with speech_de.wav 10 minutes in; and
talk_b stamped with the source timecode 01:10:00:00, so the shot begins 600 s into the stem. Then
`dubstudio track`, `dubstudio dub --audio STEM --offset tc` and `dubstudio export --renderer copy`
(the neural renderer's own cost is measured elsewhere), and the same two steps with the line cut to
the shot's span by hand (`--offset 0`) for comparison. Peak memory is the child's ru_maxrss.

Files stay under --work (test media: never commit them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from dubstudio.core.paths import media_dir

CLI = [sys.executable, "-m", "dubstudio.cli"]


def measured(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time, peak resident memory and last JSON line."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode})")
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    return {"wall_s": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "json": json.loads(last)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/stem_bench"))
    ap.add_argument("--minutes", type=float, default=20.0)
    args = ap.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    stem, shot, line = w / "reel1_dialogue.wav", w / "sh010.mov", w / "sh010_line.wav"
    ff = ["ffmpeg", "-loglevel", "error", "-y"]
    if not stem.is_file():
        subprocess.run(ff + ["-f", "lavfi", "-i", f"anoisesrc=d={args.minutes * 60}:c=pink:a=0.002:r=48000",
                             "-i", str(media_dir() / "speech_de.wav"), "-filter_complex",
                             "[1:a]aresample=48000,adelay=600000|600000[d];[0:a][d]amix=inputs=2:duration=first:normalize=0,"
                             "aformat=channel_layouts=stereo", "-c:a", "pcm_s24le", str(stem)], check=True)
        # in a child, as every step: a child's ru_maxrss starts from its parent's peak (Linux keeps
        # it across fork and exec), so this process must stay small
        subprocess.run([sys.executable, "-c", "import sys; from dubstudio.io.bwf import add_bext; "
                        "add_bext(sys.argv[1], 3600 * 48000, 'reel 1 dialogue stem')", str(stem)], check=True)
    if not shot.is_file():
        subprocess.run(ff + ["-i", str(media_dir() / "talk_b.mp4"), "-c", "copy", "-timecode", "01:10:00:00", str(shot)], check=True)
    if not line.is_file():  # what an editor would cut by hand: the shot's 8 s of the stem
        subprocess.run(ff + ["-ss", "600", "-i", str(stem), "-t", "8", "-c:a", "pcm_s24le", str(line)], check=True)
    proj = w / "sh010.dubstudio"
    subprocess.run(CLI + ["track", str(shot), "--project", str(proj), "-q"], check=True, capture_output=True)
    res: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "stem_mb": round(stem.stat().st_size / 2**20, 1),
                 "stem_minutes": args.minutes}
    for name, audio, offset in (("cut_line", line, "0"), ("stem_by_timecode", stem, "tc")):
        # the first dub trains the shot's audio model (no generic installed): run it once untimed
        subprocess.run(CLI + ["dub", "--project", str(proj), "--audio", str(audio), "--offset", offset, "-q"], check=True,
                       capture_output=True)
        dub = measured(CLI + ["dub", "--project", str(proj), "--audio", str(audio), "--offset", offset, "--json", "-q"])
        exp = measured(CLI + ["export", "--project", str(proj), "-o", str(w / f"{name}.mov"), "--renderer", "copy",
                              "--train-frames", "0:50", "--restart", "--json", "-q"])
        a = exp["json"].get("audio", {})
        res[name] = {"dub": {k: dub[k] for k in ("wall_s", "peak_rss_mb")}, "placement": dub["json"].get("placement"),
                     "export": {k: exp[k] for k in ("wall_s", "peak_rss_mb")},
                     "export_audio": {k: a.get(k) for k in ("policy", "skipped_start_s", "trimmed_end_s", "duration_s")}}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
