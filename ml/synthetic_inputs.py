"""Synthetic inputs built on the fly: videos of a real face (skimage's astronaut) written with OpenCV,
and photos up to 12 MP. Nothing is downloaded; everything lands in a folder the caller owns and deletes.

Shared by `manage.py roundtrip` (detection) and the benchmarks (benchmarks.pipeline, benchmarks.levers),
so it lives with the product code they both may import; benchmarks/ imports it, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import data

# Where the face sits in astronaut.png (x, y, w, h), as RetinaFace finds it.
ASTRONAUT_FACE = (177, 56, 95, 120)
# OpenCV's FFmpeg writer always encodes a keyframe every 12 frames (gop_size=12, encoder options are not
# passed through), so every seek would be cheap, which flatters seeking compared with what users upload:
# x264 (FaceForensics++, most phones' exports) puts one every 250. We re-mux the stream so that only every
# 252nd frame (a multiple of 12, so a real intra frame) is indexed as a keyframe: seeking then has to
# decode from up to 251 frames back, as with x264 files.
ENCODER_KEY_INTERVAL = 12
DEFAULT_KEY_INTERVAL = 252
FPS = 30.0


@dataclass(frozen=True)
class InputSpec:
    """One synthetic input: a video of `seconds` at width x height, or a photo (seconds == 0)."""

    name: str
    width: int
    height: int
    seconds: float = 0.0
    fps: float = FPS

    @property
    def kind(self) -> str:
        return "video" if self.seconds > 0 else "image"

    @property
    def frame_count(self) -> int:
        return round(self.seconds * self.fps) if self.kind == "video" else 1

    @property
    def filename(self) -> str:
        return f"{self.name}.mp4" if self.kind == "video" else f"{self.name}.jpg"


SPECS: dict[str, InputSpec] = {
    spec.name: spec
    for spec in (
        InputSpec("720p-10s", 1280, 720, 10),
        InputSpec("720p-60s", 1280, 720, 60),
        InputSpec("720p-5min", 1280, 720, 300),
        InputSpec("1080p-10s", 1920, 1080, 10),
        InputSpec("1080p-60s", 1920, 1080, 60),
        InputSpec("1080p-5min", 1920, 1080, 300),
        InputSpec("photo-12mp", 4000, 3000),
        # Not among benchmarks.inputs.DEFAULT_CASES: a tiny clip for smoke tests and for warming a worker up.
        InputSpec("360p-2s", 640, 360, 2),
    )
}


def head_and_shoulders(side: int) -> np.ndarray:
    """A square cut of the astronaut's head and shoulders, resized to side x side (RGB)."""
    x, y, w, h = ASTRONAUT_FACE
    cx, cy = x + w // 2, y + h // 2
    patch = data.astronaut()[max(0, cy - 110) : cy + 130, max(0, cx - 120) : cx + 120]
    return cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA if side < 240 else cv2.INTER_CUBIC)


def _background(width: int, height: int) -> np.ndarray:
    """A smooth gradient with mild grain: codec-friendly like real footage, not flat like a test card."""
    gy, gx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70 + 40 * (gx / width) + 20 * (gy / height)
    grain = np.random.default_rng(0).normal(0, 4, (height, width)).astype(np.float32)
    gray = np.clip(base + grain, 0, 255).astype(np.uint8)
    return np.dstack([gray, (gray * 0.95).astype(np.uint8), (gray * 0.9).astype(np.uint8)])


def write_face_video(path: Path, spec: InputSpec, key_interval: int = DEFAULT_KEY_INTERVAL) -> Path:
    """The face panning and slowly zooming in and out (one 10 s cycle), with a keyframe every
    `key_interval` frames (a multiple of 12; 12 is what OpenCV's encoder writes)."""
    if key_interval % ENCODER_KEY_INTERVAL:
        raise ValueError(f"key_interval must be a multiple of {ENCODER_KEY_INTERVAL}, got {key_interval}")
    if key_interval == ENCODER_KEY_INTERVAL:
        return _encode_face_video(path, spec)
    dense = path.with_name(f"{path.stem}.gop12{path.suffix}")
    try:
        _encode_face_video(dense, spec)
        return remux_key_interval(dense, path, key_interval)
    finally:
        dense.unlink(missing_ok=True)


def remux_key_interval(src: Path, dst: Path, key_interval: int) -> Path:
    """Copy a video's packets unchanged into a new file that indexes only every `key_interval`-th frame
    as a keyframe (no re-encoding: OpenCV's raw-stream capture and writer)."""
    cap = cv2.VideoCapture(str(src), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    params = [cv2.VIDEOWRITER_PROP_RAW_VIDEO, 1, cv2.VIDEOWRITER_PROP_KEY_INTERVAL, key_interval]
    writer = cv2.VideoWriter(
        str(dst), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), cap.get(cv2.CAP_PROP_FPS), size, params
    )
    if not cap.isOpened() or not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot re-mux {src} into {dst}")
    try:
        first = True
        while True:
            ok, packet = cap.read()
            if not ok:
                break
            if first:
                # MPEG-4 part 2 keeps its decoder configuration out of band; the raw writer needs it
                # in front of the first packet.
                _, extradata = cap.retrieve(None, int(cap.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX)))
                if extradata is not None and extradata.size:
                    packet = np.concatenate([extradata.reshape(-1), packet.reshape(-1)])
                first = False
            writer.write(packet.reshape(1, -1))
    finally:
        cap.release()
        writer.release()
    return dst


def _encode_face_video(path: Path, spec: InputSpec) -> Path:
    w, h = spec.width, spec.height
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), spec.fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    background = cv2.cvtColor(_background(w, h), cv2.COLOR_RGB2BGR)
    source = cv2.cvtColor(head_and_shoulders(int(h * 0.7)), cv2.COLOR_RGB2BGR)
    cycle = 10 * spec.fps
    try:
        for t in range(spec.frame_count):
            phase = 2 * np.pi * t / cycle
            side = int(h * (0.55 + 0.1 * np.sin(phase)))  # zoom: the face is 1/4 to 1/3 of the frame high
            patch = cv2.resize(source, (side, side), interpolation=cv2.INTER_AREA)
            x0 = int(w / 2 - side / 2 + 0.15 * w * np.sin(phase * 2))  # pan left and right
            y0 = (h - side) // 2
            frame = background.copy()
            frame[y0 : y0 + side, x0 : x0 + side] = patch
            writer.write(frame)
    finally:
        writer.release()
    return path


def write_photo(path: Path, spec: InputSpec) -> Path:
    """A portrait photo: the whole astronaut picture upscaled to the photo's height, on a background."""
    w, h = spec.width, spec.height
    canvas = _background(w, h)
    side = min(w, h)
    portrait = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_CUBIC)
    x0 = (w - side) // 2
    canvas[:, x0 : x0 + side] = portrait
    if not cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise RuntimeError(f"OpenCV cannot write {path}")
    return path


def build_input(spec: InputSpec, directory: Path, key_interval: int = DEFAULT_KEY_INTERVAL) -> Path:
    """Write the input described by `spec` into `directory` (reused if already there)."""
    path = directory / spec.filename
    if path.is_file() and path.stat().st_size > 0:
        return path
    if spec.kind == "video":
        return write_face_video(path, spec, key_interval)
    return write_photo(path, spec)
