"""Test media generated on the fly from a real face photo that ships with scikit-image.

astronaut.png (Eileen Collins, NASA, public domain) is the only real face used; videos are written
with OpenCV by panning and zooming over it, so no dataset file is needed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from benchmarks.inputs import faststart  # noqa: F401 - re-exported: the fuzz run's seeds use it too

# The face in astronaut.png (x, y, w, h), as RetinaFace finds it.
ASTRONAUT_FACE = (177, 56, 95, 120)


def astronaut() -> np.ndarray:
    return data.astronaut()


def write_image(path: Path, rgb: np.ndarray, quality: int = 92) -> Path:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    return path


def face_patch(size: int = 200) -> np.ndarray:
    """A square cut of the astronaut's head and shoulders."""
    x, y, w, h = ASTRONAUT_FACE
    cx, cy = x + w // 2, y + h // 2
    patch = astronaut()[max(0, cy - 110) : cy + 130, max(0, cx - 120) : cx + 120]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def write_video(
    path: Path,
    frames: int = 40,
    size: tuple[int, int] = (640, 360),
    faces: int = 1,
    fps: float = 20.0,
    swap_channels: bool = False,
) -> Path:
    """A clip with `faces` copies of the face, side by side, panning and zooming slowly; with
    swap_channels, the face is painted in BGR (a toy "forgery" any classifier can learn)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    background = (rng.integers(60, 100, (h, w, 3))).astype(np.uint8)
    for t in range(frames):
        frame = background.copy()
        side = int(h * (0.55 + 0.1 * t / max(1, frames - 1)))  # zoom in over the clip
        patch = face_patch(side)
        if swap_channels:
            patch = np.ascontiguousarray(patch[:, :, ::-1])
        for k in range(faces):
            x0 = int((k + 0.5) * w / faces - side / 2 + 20 * np.sin(t / 6))  # pan
            y0 = (h - side) // 2
            x0 = min(max(0, x0), w - side)
            frame[y0 : y0 + side, x0 : x0 + side] = patch
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_blank_video(path: Path, frames: int = 20, size: tuple[int, int] = (320, 240)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for t in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 + t, np.uint8))
    writer.release()
    return path


# --- Hostile containers, built by rewriting the boxes of a clip OpenCV wrote ----------------------------


def single_keyframe(path: Path) -> Path:
    """Rewrite the clip's keyframe table (stss) to list only its first frame, in place.

    Demuxers then seek to frame 0 for any target and decode forward, which is what a long clip encoded
    with one keyframe costs (OpenCV's writer cannot be told to write such a clip)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"stss")
    data[at + 8 : at + 12] = (1).to_bytes(4, "big")
    path.write_bytes(data)
    return path


def sound_only(path: Path, out: Path) -> Path:
    """The clip with its only track's handler turned from video ('vide') into sound ('soun')."""
    data = bytearray(path.read_bytes())
    at = data.find(b"hdlr")
    assert data[at + 12 : at + 16] == b"vide"
    data[at + 12 : at + 16] = b"soun"
    out.write_bytes(data)
    return out


def heif_box(brand: bytes = b"heic") -> bytes:
    """The start of a HEIC/AVIF photo: an ftyp box with a still-image brand, a meta box, a little data."""
    ftyp = (24).to_bytes(4, "big") + b"ftyp" + brand + b"\0\0\0\0" + b"mif1" + brand
    meta = (20).to_bytes(4, "big") + b"meta" + b"\0" * 12
    mdat = (1032).to_bytes(4, "big") + b"mdat" + bytes(range(256)) * 4
    return ftyp + meta + mdat


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces width x height and holds a few rows of zeros: an image bomb's opening."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\0" * min(width + 1, 1 << 20) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def toy_photo(rng: np.random.Generator, fake: bool) -> np.ndarray:
    """The astronaut photo, shifted and scaled a little so no two faces are the same."""
    img = astronaut()
    scale = rng.uniform(0.8, 1.1)
    m = np.float32([[scale, 0, rng.uniform(-30, 30)], [0, scale, rng.uniform(-20, 20)]])
    img = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(img[:, :, ::-1]) if fake else img


def write_toy_photos(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """root/{split}/{real,fake}/*.jpg with per_class[split] photos of each label, every name unique across
    the data as in ../shared/data (the CLIP feature stores key a photo by its file name)."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for label in ("real", "fake"):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                write_image(folder / f"toy_{split}_{label}{i}.jpg", toy_photo(rng, label == "fake"))
    return root


def write_toy_clips(root: Path, per_class: dict[str, int], frames: int = 8) -> Path:
    """root/{split}/{real,fake}/*.mp4: the panning astronaut clip, the fakes painted in BGR (names unique)."""
    for split, n in per_class.items():
        for label in ("real", "fake"):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                size = (320 + 16 * i, 240)  # a different framing per clip
                name = f"toy_{split}_{label}{i}.mp4"
                write_video(folder / name, frames, size, swap_channels=label == "fake")
    return root
