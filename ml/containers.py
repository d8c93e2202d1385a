"""What an MP4/MOV file's box structure says before anything is decoded.

OpenCV opens an MP4 whose data was cut off after its index (the `moov` box written first, `mdat` cut short)
and reports the full frame count, and it opens a HEIC or AVIF photo renamed `.mp4` as a one-frame video.
The top-level boxes tell both apart from a whole video cheaply: each box states its own size, the major
brand names the file type, and each track's handler says whether it holds video or only sound.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

# ISO BMFF brands of still images (HEIF/HEIC from phones, AVIF) that share the MP4 container.
IMAGE_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"hevc": "HEIC",
    b"hevx": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}
# The moov box of any video a person uploads fits in this; a larger one is read only up to it.
MAX_MOOV_BYTES = 64 * 1024 * 1024
# A file with more top-level boxes than this is not a video a camera or an editor wrote.
MAX_TOP_LEVEL_BOXES = 10_000


@dataclass
class BoxReport:
    """The top-level layout of an ISO BMFF file (MP4, MOV)."""

    major_brand: bytes = b""
    compatible_brands: list[bytes] = field(default_factory=list)
    boxes: list[bytes] = field(default_factory=list)
    truncated: bool = False  # a box states a size that runs past the end of the file
    handlers: list[bytes] = field(default_factory=list)  # b"vide", b"soun", ... one per track

    @property
    def image_type(self) -> str | None:
        """'HEIC', 'HEIF' or 'AVIF' when the file is a still image in an MP4-like container."""
        if self.major_brand in IMAGE_BRANDS:
            return IMAGE_BRANDS[self.major_brand]
        if b"moov" not in self.boxes and b"meta" in self.boxes:
            for brand in self.compatible_brands:
                if brand in IMAGE_BRANDS:
                    return IMAGE_BRANDS[brand]
        return None


def read_boxes(path: str | Path) -> BoxReport:
    """Walk the top-level boxes of an MP4/MOV file (reading only their headers and the moov box)."""
    report = BoxReport()
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        offset = 0
        while offset + 8 <= size and len(report.boxes) < MAX_TOP_LEVEL_BOXES:
            fh.seek(offset)
            header = fh.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            header_len = 8
            if box_size == 1:  # a 64-bit size follows the type
                if len(header) < 16:
                    report.truncated = True
                    break
                box_size = struct.unpack(">Q", header[8:16])[0]
                header_len = 16
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - offset
            if box_size < header_len:
                break  # a size that cannot be: trailing junk after the boxes (some writers pad files)
            report.boxes.append(box_type)
            if offset + box_size > size:
                report.truncated = True
            body_len = min(box_size, size - offset) - header_len
            fh.seek(offset + header_len)
            if box_type == b"ftyp":
                _read_brands(report, fh.read(min(body_len, 4096)))
            elif box_type == b"moov":
                report.handlers = _track_handlers(fh.read(min(body_len, MAX_MOOV_BYTES)))
            offset += box_size
    return report


def _read_brands(report: BoxReport, body: bytes) -> None:
    report.major_brand = body[:4]
    report.compatible_brands = [body[i : i + 4] for i in range(8, len(body) - 3, 4)]


def _track_handlers(moov: bytes) -> list[bytes]:
    """The handler type of each `hdlr` box in the moov box: b"vide" for video, b"soun" for sound."""
    handlers = []
    start = 0
    while (at := moov.find(b"hdlr", start)) >= 0:
        # hdlr: size, "hdlr", version and flags (4), pre_defined (4), handler_type (4)
        handler = moov[at + 12 : at + 16]
        if len(handler) == 4:
            handlers.append(handler)
        start = at + 4
    return handlers
