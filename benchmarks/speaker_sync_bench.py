"""Lip sync against real mouths: a shot dubbed with another real speaker's audio, compared with that
speaker's own mouth while they said it (issue 22), through the product's own CLI.

With ``--scripts FILE`` (``transcribe.py``'s output: {speaker: {text, language}}) each pair is dubbed
twice from the speaker's whole clip, without and with its script (`dub --text`), and both are
scored: the script path against the audio path on the same lines. ``--key-visemes`` adds a third
dub with the script's lip contacts keyed (`dub --text ... --key-visemes`).

    .venv/bin/python benchmarks/speaker_sync_bench.py --shot talk_a=PROJECT --shot talk_b=PROJECT \
        --speakers talk_a,talk_b,talk_e,dubber_a --work DIR [--json OUT]

Each shot is a tracked and adapted project (the export renders with its adaptation). For each pair
(shot, speaker) with speaker != shot: the speaker's audio from the start, cut to the shot's length,
is dubbed onto a copy of the project with `dubstudio dub --audio` (whatever audio model the install
has: a fresh install trains the shot's own), exported with `dubstudio export`, and scored with
`../shared/tools/mouth_vs_speaker.py SPEAKER_VIDEO EXPORT` (independent of our code: r at lag 0 and
the best lag within +-10 frames, > 0: the dub's mouth is late). Each speaker's own clip is first
checked (``audio_mouth_ceiling.speaker_truth``: does their sound predict their mouth, and at what
offset?): a speaker whose sound trails their picture is scored with the tool's --offset-frames at
that offset, and one whose sound does not predict their mouth at any lag is no ground truth: their
pairs still run and are reported, apart from the ground-truth summary. The pause measure: in the frames where the speaker pauses with their mouth closed, how many
show the dub's mouth at or below the actor's own rest (``pause_closure``). Run alone: each pair takes 1-3 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT.parent / "shared" / "tools" / "mouth_vs_speaker.py"
SPEAKER_AV_OFFSET = {"talk_c": 6}  # frames the speaker's own sound trails their picture (measured, decisions.md)


def run(cmd: list[str], log: Path, env: dict | None = None) -> None:
    with log.open("a") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        out = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[1:3]} failed; see {log}")


def lag_profile(speaker: Path, dub: Path, k: int, reach: int = 6) -> dict[int, float]:
    """r between the two mouths (the tool's own per-frame measure) at each lag in +-reach (> 0: the
    dub is late): a dub whose mouth moved by d frames scores what this says at lag -d, which tells
    what a fixed lead would buy without dubbing again."""
    sys.path.insert(0, str(TOOL.parent))
    from mouth_vs_speaker import mouth

    a = mouth(str(speaker))
    b = mouth(str(dub))[k : k + len(a)]
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    out = {}
    for lag in range(-reach, reach + 1):
        x, y = (a[: n - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[: n + lag])
        m = np.isfinite(x) & np.isfinite(y)
        out[lag] = round(float(np.corrcoef(x[m], y[m])[0, 1]), 3) if m.sum() > 10 else None
    return out


REST_PCT = 25  # a person's rest opening: this percentile of their own opening over their own clip


def pause_closure(speaker: Path, dub: Path, shot_rest: float, k: int, fps) -> dict:
    """The dub's mouth in the speaker's pauses: frames where the speaker is silent (a pause of at
    least 0.2 s in their sound) and their mouth is closed (at or below their own rest), and how
    many of them the dub's opening is at or below the actor's own rest (the tool's measure both)."""
    sys.path.insert(0, str(TOOL.parent))
    from mouth_vs_speaker import mouth

    from dubstudio.driving.a2e_data import silence_mask
    from dubstudio.io.audio import load_audio

    a = mouth(str(speaker))
    b = mouth(str(dub))[k : k + len(a)]
    n = min(len(a), len(b))
    silent, _ = silence_mask(load_audio(speaker, sr=16000), len(a) + k, fps, min_run_s=0.2)
    closed = silent[k : k + n] & (a[:n] <= np.nanpercentile(a, REST_PCT)) & np.isfinite(b[:n])
    if not closed.any():
        return {"frames": 0}
    shut = b[:n][closed] <= shot_rest
    return {"frames": int(closed.sum()), "share_at_rest": round(float(shut.mean()), 3),
            "median_over_rest": round(float(np.median(b[:n][closed]) - shot_rest), 4)}


def _installed(generic_dir: Path | None, speaker: str, work: Path) -> dict | None:
    """The environment of a dub with the generic model trained without ``speaker`` installed as the
    default (a models folder of its own), or None (the install as it is)."""
    if generic_dir is None:
        return None
    models = work / f"models_wo_{speaker}"
    env = dict(os.environ, DUBSTUDIO_MODELS=str(models))
    # the models folder's layout is the registry's: ask it under that environment
    target = Path(subprocess.run([sys.executable, "-c", "from dubstudio.nn import registry; print(registry.model_path('audio2expr'))"],
                                 env=env, capture_output=True, text=True, check=True).stdout.strip())
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(generic_dir / f"wo_{speaker}.pt", target)
    return env


def _pooled(pairs: list[dict]) -> str:
    ps = [p["pauses"] for p in pairs if p.get("pauses", {}).get("frames")]
    n = sum(p["frames"] for p in ps)
    at = sum(round(p["frames"] * p["share_at_rest"]) for p in ps)
    return f"{at} of {n}"


def _summary(pairs: list[dict]) -> dict:
    scored = [p for p in pairs if "r_lag0" in p]
    r0 = [p["r_lag0"] for p in scored]
    if not r0:
        return {"pairs": 0}
    return {"pairs": len(r0), "median_r_lag0": round(float(np.median(r0)), 3), "min_r_lag0": round(float(np.min(r0)), 3),
            "best_lag_within_1": f'{sum(abs(p["best_lag"]) <= 1 for p in scored)} of {len(r0)}',
            "median_r_best": round(float(np.median([p["r_best"] for p in scored])), 3),
            "pause_frames_at_rest": _pooled(scored)}


def _dub_and_score(cli: list, py: Path, proj: str, p: Path, wav: Path, extra: list, env: dict | None, speaker: Path,
                   k: int, shot_rest: float, fps) -> dict:
    """A copy of the shot's project dubbed with ``wav`` (and ``extra`` flags), exported, and scored
    against the speaker's own mouth."""
    shutil.rmtree(p, ignore_errors=True)
    shutil.copytree(proj, p, ignore=shutil.ignore_patterns("proxy"))
    log = p.with_suffix(".log")
    log.unlink(missing_ok=True)
    out = p.with_suffix(".mp4")
    try:
        run([*cli, "dub", "--project", p, "--audio", wav, *extra, "-q"], log, env)
        run([*cli, "export", "--project", p, "-o", out, "--overwrite", "--audio-policy", "fit", "-q"], log)
        tool = subprocess.run([py, TOOL, speaker, out, "--offset-frames", str(k)], capture_output=True, text=True)
        score = json.loads(tool.stdout.strip().splitlines()[-1])
        score["r_by_lag"] = lag_profile(speaker, out, k)
        score["pauses"] = pause_closure(speaker, out, shot_rest, k, fps)
    except (RuntimeError, ValueError, IndexError) as e:
        score = {"error": str(e)}
    return score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shot", action="append", required=True, help="NAME=PROJECT (tracked and adapted)")
    ap.add_argument("--speakers", required=True, help="comma-separated clip names of ../shared/data/media")
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--json")
    ap.add_argument("--offsets", choices=("measured", "fixed"), default="measured",
                    help="measured (default): each speaker's own sync and whether they are ground truth at all, from "
                         "audio_mouth_ceiling.speaker_truth; fixed: the sixteenth session's table (talk_c 6, all pairs)")
    ap.add_argument("--bare", action="store_true",
                    help="without the built-in audio model (DUBSTUDIO_BUILTIN_MODELS=0): the install before it shipped")
    ap.add_argument("--generic-dir", type=Path,
                    help="generic audio models wo_SPEAKER.pt, each trained without that speaker; the dub of a "
                         "pair runs with the speaker's hold-out model installed, as a studio that trained one has it")
    ap.add_argument("--scripts", type=Path,
                    help="JSON {speaker: {text, language}} (transcribe.py): dub each pair from the speaker's whole "
                         "clip without and with its script")
    ap.add_argument("--key-visemes", action="store_true",
                    help="with --scripts: a third dub of each pair, the script with its lip contacts keyed (dub --key-visemes)")
    args = ap.parse_args()
    import soundfile as sf

    from dubstudio.core.paths import media_dir
    from dubstudio.io.audio import load_audio
    from dubstudio.io.video import VideoReader

    media = media_dir()
    py = Path(sys.executable)
    cli = [py, "-m", "dubstudio.cli"]
    args.work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(TOOL.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from audio_mouth_ceiling import speaker_truth
    from mouth_vs_speaker import mouth

    scripts = {k: v for k, v in json.loads(args.scripts.read_text()).items() if not k.startswith("_")} if args.scripts else {}
    truth = {}
    for spk in args.speakers.split(","):
        with VideoReader(media / f"{spk}.mp4") as r:
            fps = float(r.fps)
        if args.offsets == "measured":
            truth[spk] = speaker_truth(mouth(str(media / f"{spk}.mp4")), load_audio(media / f"{spk}.mp4", sr=16000), fps)
            if not truth[spk]["ground_truth"]:  # no offset to trust: scored as recorded
                truth[spk] |= {"peak_frames": truth[spk]["offset_frames"], "offset_frames": 0}
        else:
            truth[spk] = {"offset_frames": SPEAKER_AV_OFFSET.get(spk, 0), "ground_truth": True}
        print(json.dumps({"speaker": spk, **{k: v for k, v in truth[spk].items() if k != "profile"}}), flush=True)
    env_base = dict(os.environ, DUBSTUDIO_BUILTIN_MODELS="0") if args.bare else None
    pairs = []
    for spec in args.shot:
        shot, _, proj = spec.partition("=")
        with VideoReader(media / f"{shot}.mp4") as r:
            shot_s, shot_fps = r.n_frames / float(r.fps), r.fps
        shot_rest = float(np.nanpercentile(mouth(str(media / f"{shot}.mp4")), REST_PCT))
        for spk in args.speakers.split(","):
            if spk == shot:
                continue
            name = f"{shot}+{spk}"
            with VideoReader(media / f"{spk}.mp4") as r:
                if r.fps != shot_fps:  # the tool pairs frame i with frame i: only equal rates compare
                    pairs.append({"pair": name, "skipped": f"frame rates differ ({r.fps} against {shot_fps})"})
                    print(json.dumps(pairs[-1]), flush=True)
                    continue
            script = scripts.get(spk)
            if scripts and script is None:
                continue
            wav = args.work / f"{name}.wav"
            # a script covers the speaker's whole clip: it is dubbed whole, and the dub shows the shot's length
            audio = load_audio(media / f"{spk}.mp4", sr=48000, duration_s=None if scripts else shot_s)
            sf.write(wav, audio, 48000)
            env = _installed(args.generic_dir, spk, args.work) or env_base
            score = None
            said = ["--text", script["text"], "--language", script.get("language", "en")] if script else []
            variants = [("", [])] + ([("script", said)] if script else []) + ([("keys", [*said, "--key-visemes"])]
                                                                               if script and args.key_visemes else [])
            for tag, extra in variants:
                t0 = time.perf_counter()
                got = _dub_and_score(cli, py, proj, args.work / (name + (f"-{tag}" if tag else "")), wav, extra, env,
                                     media / f"{spk}.mp4", truth[spk]["offset_frames"], shot_rest, shot_fps)
                got["seconds"] = round(time.perf_counter() - t0, 1)
                if score is None:
                    score = got
                else:
                    score[tag] = got
            score |= {"pair": name, "ground_truth": bool(truth[spk]["ground_truth"]), "speaker_offset": truth[spk]["offset_frames"]}
            print(json.dumps(score), flush=True)
            pairs.append(score)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "audio_model": (f"leave-speaker-out generics from {args.generic_dir}" if args.generic_dir
                        else "as installed, without the built-in model" if args.bare else "as installed"),
        "offsets": args.offsets,
        "speakers": truth,
        "pairs": pairs,
        "ground_truth_pairs": _summary([p for p in pairs if p.get("ground_truth")]),
        "all_pairs": _summary(pairs),
    }
    if scripts:
        result["scripts"] = scripts
        result["ground_truth_pairs_with_script"] = _summary([p["script"] for p in pairs if p.get("ground_truth") and "script" in p])
        result["all_pairs_with_script"] = _summary([p["script"] for p in pairs if "script" in p])
        if args.key_visemes:
            result["ground_truth_pairs_with_keys"] = _summary([p["keys"] for p in pairs if p.get("ground_truth") and "keys" in p])
            result["all_pairs_with_keys"] = _summary([p["keys"] for p in pairs if "keys" in p])
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
