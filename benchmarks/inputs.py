"""What only the benchmarks need on top of ml.synthetic_inputs: the default cases of a pipeline run, and
MP4 box rewriting (faststart) for the fuzz run's seeds and the media tests.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CASES = ("720p-10s", "720p-60s", "720p-5min", "1080p-10s", "1080p-60s", "1080p-5min", "photo-12mp")


# --- MP4 box rewriting ---------------------------------------------------------------------------------


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Top-level (type, whole box) pairs of an MP4 whose boxes use 32-bit sizes (OpenCV's writer)."""
    out, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big") or len(data) - offset
        out.append((data[offset + 4 : offset + 8], data[offset : offset + size]))
        offset += size
    return out


def faststart(path: Path, out: Path) -> Path:
    """The same clip with its index (moov) before its data, as web encoders write it ("faststart")."""
    boxes = dict(_boxes(path.read_bytes()))
    moov = bytearray(boxes[b"moov"])
    # Every chunk offset (stco) moves forward by the size of the moov box now placed before the data.
    at = moov.find(b"stco")
    count = int.from_bytes(moov[at + 8 : at + 12], "big")
    for i in range(count):
        pos = at + 12 + 4 * i
        moov[pos : pos + 4] = (int.from_bytes(moov[pos : pos + 4], "big") + len(moov)).to_bytes(4, "big")
    rest = b"".join(box for kind, box in _boxes(path.read_bytes()) if kind not in (b"ftyp", b"moov"))
    out.write_bytes(boxes[b"ftyp"] + bytes(moov) + rest)
    return out
