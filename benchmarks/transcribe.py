"""Scripts for the speaker-sync bench's script path (issue 22): machine transcripts of the test
clips' English speech, since the clips ship no transcripts.

    .venv/bin/pip install pocketsphinx   # benchmark only: ships its en-us model (no download)
    .venv/bin/python benchmarks/transcribe.py talk_a talk_long --known benchmarks/known_scripts.json --json OUT

pocketsphinx's default English model gets many words wrong (talk_long starts "hello i have blue
member prison was in los santos county"): a wrong word puts the wrong phones on the mouth, so a dub driven from
these transcripts measures the script path with a worse script than a studio has. Clips whose
words are a known public text take that text from ``--known`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def transcribe(audio: np.ndarray) -> str:
    from pocketsphinx import Decoder

    pcm = (np.clip(audio / (np.abs(audio).max() + 1e-9) * 0.9, -1, 1) * 32767).astype(np.int16).tobytes()
    d = Decoder(samprate=16000)
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()
    return d.hyp().hypstr if d.hyp() else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+", help="clip names of ../shared/data/media")
    ap.add_argument("--known", type=Path, help="JSON of clips whose words are known: {clip: {text, language, source}}")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from dubstudio.core.paths import media_dir
    from dubstudio.io.audio import load_audio

    known = {k: v for k, v in json.loads(args.known.read_text()).items() if not k.startswith("_")} if args.known else {}
    out = {}
    for clip in args.clips:
        if clip in known:
            out[clip] = known[clip]
        else:
            text = transcribe(load_audio(media_dir() / f"{clip}.mp4", sr=16000))
            out[clip] = {"text": text, "language": "en", "source": "pocketsphinx 5 (en-us), machine transcript"}
        print(clip, out[clip]["source"], "|", out[clip]["text"], flush=True)
    Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
