"""Check an export independently of our own reader: ffprobe (installed with ffmpeg) for videos,
a plain file count + soundfile for PNG folders."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

from dubstudio.core.errors import MediaError

__all__ = ["ffprobe", "summarize", "check", "video_pts"]


def ffprobe(path: str | Path, count_frames: bool = True, timeout: float = 600) -> dict:
    """``ffprobe -v error -show_streams -show_format [-count_frames] -of json`` as a dict."""
    exe = shutil.which("ffprobe")
    if exe is None:
        raise MediaError("ffprobe was not found; install ffmpeg to verify exports.")
    cmd = [exe, "-v", "error", "-show_streams", "-show_format", *(["-count_frames"] if count_frames else []), "-of", "json", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise MediaError(f"ffprobe cannot read {Path(path).name}: {r.stderr.strip()[:300]}")
    return json.loads(r.stdout)


def video_pts(path: str | Path, timeout: float = 600) -> list[Fraction]:
    """Presentation times (seconds, exact) of the first video stream's packets, sorted."""
    exe = shutil.which("ffprobe")
    if exe is None:
        raise MediaError("ffprobe was not found; install ffmpeg to verify exports.")
    cmd = [exe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=time_base:packet=pts", "-of", "json", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise MediaError(f"ffprobe cannot read {Path(path).name}: {r.stderr.strip()[:300]}")
    d = json.loads(r.stdout)
    tb = Fraction(d["streams"][0]["time_base"])
    return sorted(Fraction(int(p["pts"])) * tb for p in d.get("packets", []) if p.get("pts") not in (None, "N/A"))


def _f(x) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def summarize(path: str | Path) -> dict:
    """Streams, codecs, frame count, rate and durations as ffprobe (or the folder) tells them."""
    path = Path(path)
    if path.is_dir():
        import soundfile as sf

        frames = sorted(p.name for p in path.glob("frame_*.png"))
        out = {"streams": len(frames) > 0, "video": {"codec": "png", "frames": len(frames)}, "audio": None}
        tracks = []
        for wav in (path / "audio.wav", path / "audio_original.wav"):  # the dub; the shot's own sound (guide)
            if wav.is_file():
                info = sf.info(str(wav))
                tracks.append({"codec": info.subtype, "sample_rate": info.samplerate, "channels": info.channels,
                               "duration_s": info.frames / info.samplerate, "samples": info.frames, "file": wav.name})
        out["audio"] = tracks[0] if tracks else None
        out["audio_tracks"] = tracks
        out["n_streams"] = int(bool(frames)) + len(tracks)
        try:  # a PNG sequence keeps the start timecode in its manifest
            out["timecode"] = json.loads((path / "manifest.json").read_text()).get("source_timecode")
        except (OSError, ValueError):
            out["timecode"] = None
        return out
    d = ffprobe(path)
    v = [s for s in d["streams"] if s.get("codec_type") == "video"]
    a = [s for s in d["streams"] if s.get("codec_type") == "audio"]
    tags = d.get("format", {}).get("tags", {})
    tc = [s.get("tags", {}).get("timecode") for s in d["streams"]] + [tags.get("timecode")]
    out: dict = {"n_streams": len(d["streams"]), "n_av_streams": len(v) + len(a), "format_tags": tags,
                 "format_duration_s": _f(d.get("format", {}).get("duration")),
                 "data_streams": [s.get("codec_tag_string") for s in d["streams"] if s.get("codec_type") not in ("video", "audio")],
                 "timecode": next((t for t in tc if t), None)}
    if v:
        s = v[0]
        rate = Fraction(s.get("avg_frame_rate") or "0/1") if s.get("avg_frame_rate") not in (None, "0/0") else None
        out["video"] = {
            "codec": s.get("codec_name"), "profile": s.get("profile"), "pix_fmt": s.get("pix_fmt"),
            "width": s.get("width"), "height": s.get("height"), "fps": str(Fraction(s["r_frame_rate"])) if s.get("r_frame_rate") else None,
            "avg_fps": str(rate) if rate else None, "frames": int(s["nb_read_frames"]) if s.get("nb_read_frames") else None,
            "duration_s": _f(s.get("duration")), "start_s": _f(s.get("start_time")),
            "color": {k: s.get(k) for k in ("color_range", "color_space", "color_transfer", "color_primaries")},
            "sample_aspect_ratio": s.get("sample_aspect_ratio"),
        }
    else:
        out["video"] = None
    out["audio_tracks"] = [{"codec": s.get("codec_name"), "sample_rate": int(s.get("sample_rate", 0)), "channels": s.get("channels"),
                            "duration_s": _f(s.get("duration")), "start_s": _f(s.get("start_time"))} for s in a]
    out["audio"] = out["audio_tracks"][0] if a else None
    return out


def check(path: str | Path, n_frames: int, fps: Fraction, audio: bool | int, video_codec: str | None = None, audio_codec: str | None = None,
          timecode: str | None = None) -> dict:
    """``{"ok": bool, "problems": [...], "summary": summarize(path)}``: stream count (video and
    ``audio`` tracks: True/1, or 2 with the guide track; a timecode track is not a picture or sound
    stream), codecs, frame count, frame rate, duration, |audio - video| < 1 frame for every audio
    track, and the start ``timecode`` when one is expected."""
    s = summarize(path)
    fps = Fraction(fps)
    frame_s = float(1 / fps)
    problems = []
    v, a = s.get("video"), s.get("audio")
    want_streams = 1 + int(audio)
    n_av = s.get("n_av_streams", s["n_streams"])
    if n_av != want_streams:
        problems.append(f"{n_av} video/audio streams, expected {want_streams}")
    if timecode is not None and s.get("timecode") != timecode:
        problems.append(f"start timecode {s.get('timecode')}, expected {timecode}")
    if v is None:
        problems.append("no video stream")
    else:
        if video_codec and v["codec"] != video_codec:
            problems.append(f"video codec {v['codec']}, expected {video_codec}")
        if v["frames"] != n_frames:
            problems.append(f"{v['frames']} frames, expected {n_frames}")
        if v.get("fps") is not None and Fraction(v["fps"]) != fps:
            problems.append(f"frame rate {v['fps']}, expected {fps}")
        if v.get("duration_s") is not None and abs(v["duration_s"] - n_frames * frame_s) >= frame_s / 2:
            problems.append(f"video lasts {v['duration_s']:.4f} s, expected {n_frames * frame_s:.4f} s")
        if not Path(path).is_dir():
            pts = video_pts(path)
            steps = {b - a for a, b in zip(pts, pts[1:])}
            # one frame apart, to the container's time-base rounding (mp4 may store 1001/30000 s as 1/30 ms ticks)
            if pts and (pts[0] != 0 and abs(float(pts[0])) > 1e-3 or any(abs(float(st) - frame_s) > 1e-3 for st in steps)):
                problems.append(f"video timestamps are not consecutive frames from 0 (first {float(pts[0]):.4f} s, steps {sorted(map(float, steps))[:3]})")
    if audio:
        if a is None:
            problems.append("no audio stream")
        for k, t in enumerate((s.get("audio_tracks") or [a]) if a else []):
            which = "audio" if k == 0 else f"audio track {k + 1}"
            if audio_codec and t["codec"] != audio_codec:
                problems.append(f"{which} codec {t['codec']}, expected {audio_codec}")
            vd = v["duration_s"] if v and v.get("duration_s") is not None else n_frames * frame_s
            if t.get("duration_s") is None or abs(t["duration_s"] - vd) >= frame_s:
                problems.append(f"{which} lasts {t.get('duration_s')} s vs video {vd:.4f} s (must differ by < 1 frame)")
    elif a is not None:
        problems.append("unexpected audio stream")
    return {"ok": not problems, "problems": problems, "summary": s}
