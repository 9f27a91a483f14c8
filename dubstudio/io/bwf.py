"""Broadcast WAV (EBU Tech 3285): the ``bext`` chunk whose time reference places a WAV on a timeline.

An image sequence and its WAV are conformed by timecode; the WAV's start is ``TimeReference``, in
samples since midnight. soundfile (libsndfile) can write the chunk in C but python-soundfile does
not expose it, so the chunk is inserted into the finished RIFF file here (before ``data``, where
readers look for it). Version 1 of the chunk: 602 fixed bytes, then the coding history.
"""

from __future__ import annotations

import os
import struct
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["add_bext", "read_bext", "wav_data_shortfall"]

_FIXED = struct.Struct("<256s32s32s10s8sIIH64s190s")  # 602 bytes


def _chunks(f) -> list[tuple[bytes, int, int]]:
    """(id, offset of the chunk header, size of its payload) for each chunk of an open RIFF/WAVE
    file, from the headers alone."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    out, pos = [], 12
    while pos + 8 <= end:
        f.seek(pos)
        hdr = f.read(8)
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        out.append((cid, pos, size))
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
    return out


def add_bext(path: str | Path, time_reference: int, description: str = "", originator: str = "DubStudio",
             coding_history: str = "") -> None:
    """Insert (or replace) the ``bext`` chunk of the WAV at ``path``; ``time_reference``: the first
    sample's position on the timeline, in samples since midnight at the file's rate. The file is
    rewritten in blocks beside itself and replaced atomically (a long WAV is never held in memory)."""
    path = Path(path)
    now = datetime.now(timezone.utc)
    fixed = _FIXED.pack(description.encode("ascii", "replace")[:256], originator.encode("ascii", "replace")[:32], b"",
                        now.strftime("%Y-%m-%d").encode(), now.strftime("%H:%M:%S").encode(),
                        int(time_reference) & 0xFFFFFFFF, int(time_reference) >> 32, 1, b"", b"")
    payload = fixed + coding_history.encode("ascii", "replace")
    if len(payload) & 1:
        payload += b"\0"
    chunk = b"bext" + struct.pack("<I", len(payload)) + payload
    tmp = path.with_name(f".{path.name}.bext-{os.getpid()}")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            chunks = [c for c in _chunks(src) if c[0] != b"bext"]
            if not any(c[0] == b"data" for c in chunks):
                raise ValueError(f"{path.name} has no data chunk")
            size_on_disk = src.seek(0, os.SEEK_END)
            if any(pos + 8 + size > size_on_disk for _, pos, size in chunks):
                raise ValueError(f"{path.name} is truncated (a chunk runs past the end of the file)")
            body = len(chunk) + sum(8 + size + (size & 1) for _, _, size in chunks)
            dst.write(b"RIFF" + struct.pack("<I", 4 + body) + b"WAVE")
            inserted = False
            for cid, pos, size in chunks:
                if cid == b"data" and not inserted:
                    dst.write(chunk)
                    inserted = True
                src.seek(pos)
                left = 8 + size + (size & 1)
                while left:
                    block = src.read(min(left, 1 << 20))
                    if not block:  # only an odd last chunk's pad byte can be missing here
                        dst.write(b"\0" * left)
                        break
                    dst.write(block)
                    left -= len(block)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_bext(path: str | Path) -> dict | None:
    """The ``bext`` chunk's fields (``time_reference`` in samples), or None when there is none.
    Reads chunk headers only: a reel's dialogue stem can be gigabytes."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise ValueError("not a RIFF/WAVE file")
        data64 = None  # an RF64 file's real data size, from its ds64 chunk
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return None
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"ds64" and size >= 16:
                ds = f.read(size)
                data64 = struct.unpack("<Q", ds[8:16])[0]
                f.seek(size & 1, 1)
                continue
            if cid == b"bext" and size >= _FIXED.size:
                payload = f.read(size)
                fx = _FIXED.unpack(payload[:_FIXED.size])
                text = lambda b: b.rstrip(b"\0").decode("ascii", "replace")  # noqa: E731
                return {"description": text(fx[0]), "originator": text(fx[1]), "date": text(fx[3]), "time": text(fx[4]),
                        "time_reference": fx[5] | (fx[6] << 32), "version": fx[7],
                        "coding_history": text(payload[_FIXED.size:])}
            if size == 0xFFFFFFFF:  # an RF64 file's data chunk: its real size is in ds64
                if data64 is None:
                    return None
                size = data64
            f.seek(size + (size & 1), 1)  # chunks are padded to even sizes


def wav_data_shortfall(path: str | Path) -> int | None:
    """Bytes of sound a RIFF/RF64 WAV's header declares but the file does not hold (0: complete),
    or None when it is not a WAV. A cut-off copy keeps its header, so the header says what is
    missing; a streamed WAV that declares no size (0 or 0xFFFFFFFF without ds64) is not judged."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None
        data64 = None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            hdr = f.read(8)
            cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"ds64" and n >= 16:
                data64 = struct.unpack("<Q", f.read(16)[8:16])[0]
            if cid == b"data":
                if n == 0xFFFFFFFF:
                    n = data64 if data64 is not None else 0
                if n == 0:
                    return 0
                return max(0, pos + 8 + n - size)
            if n == 0xFFFFFFFF:
                return 0
            pos += 8 + n + (n & 1)
        return 0 if pos <= size else pos - size
