"""Recognise, validate and decode user media: images and videos, by content rather than by name."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.errors import MediaError

# 12 MP phone photos are common and 50 MP ones exist; beyond this we assume a decompression bomb.
MAX_IMAGE_PIXELS = 80_000_000
# Frames larger than 8K are not video a person uploads; refuse rather than allocate gigabytes.
MAX_VIDEO_PIXELS = 7680 * 4320

IMAGE_FORMATS = ("jpeg", "png", "webp")
VIDEO_FORMATS = ("mp4", "mov", "webm", "mkv", "avi")

T = TypeVar("T")


def sniff_format(head: bytes) -> str | None:
    """Name the container of a file from its first bytes, or None if it is not one we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        # Matroska and WebM share EBML; the doctype says which.
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"  # old QuickTime files start with an atom other than ftyp
    return None


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "image" | "video"
    format: str
    width: int
    height: int
    frame_count: int = 1
    fps: float = 0.0

    @property
    def duration(self) -> float:
        """Length in seconds (0 for images)."""
        if self.kind != "video" or self.fps <= 0:
            return 0.0
        return self.frame_count / self.fps


def probe(path: str | Path) -> MediaInfo:
    """Identify and validate a media file cheaply; raise MediaError with a readable reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError("The file could not be read.") from exc
    if size == 0:
        raise MediaError("The file is empty (0 bytes).")
    with path.open("rb") as fh:
        head = fh.read(64)
    fmt = sniff_format(head)
    if fmt is None:
        raise MediaError(
            "This is not a supported image or video: the content is neither JPEG, PNG, WebP "
            "nor MP4, MOV, WebM, MKV or AVI, whatever the file name says."
        )
    if fmt in IMAGE_FORMATS:
        return _probe_image(path, fmt)
    return _probe_video(path, fmt)


def _probe_image(path: Path, fmt: str) -> MediaInfo:
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise MediaError(
                    f"The image is too large to analyse ({width}×{height} pixels; "
                    f"the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels)."
                )
            img.load()  # decodes the pixels: catches truncated and corrupt files
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError("The image is corrupt or truncated and cannot be decoded.") from exc
    return MediaInfo(kind="image", format=fmt, width=width, height=height)


def _probe_video(path: Path, fmt: str) -> MediaInfo:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError("The video is corrupt or truncated: it cannot be opened.")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if width * height > MAX_VIDEO_PIXELS:
            raise MediaError(f"The video's frames are too large ({width}×{height}).")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise MediaError("The video is corrupt or truncated: no frame can be decoded.")
    finally:
        cap.release()
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 25.0  # some containers carry no rate; 25 fps keeps durations plausible
    if frame_count <= 0:
        frame_count = count_frames(path)
    return MediaInfo(kind="video", format=fmt, width=width, height=height, frame_count=frame_count, fps=fps)


def count_frames(path: str | Path) -> int:
    """Count frames by walking the stream, for containers (WebM) whose header has no count."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def load_image(path: str | Path, info: MediaInfo | None = None) -> np.ndarray:
    """Decode an image to an RGB uint8 array, upright according to its EXIF orientation.

    info: the file's probe() result when the caller has one; probing an image decodes it to validate it,
    so probing again here would decode a 12 MP photo a third time (~130 ms).
    """
    probe_info = info or probe(path)
    if probe_info.kind != "image":
        raise MediaError("Expected an image, got a video.")
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        return np.asarray(img.convert("RGB"))


@dataclass(frozen=True)
class Frame:
    index: int
    time: float
    rgb: np.ndarray


def frame_indices(frame_count: int, budget: int, mode: str = "uniform") -> list[int]:
    """Which frames to analyse: `budget` spread evenly over the clip, or the first `budget` frames.

    Uniform sampling takes the centre of each of `budget` equal segments, so a clip is covered end to
    end; "first" is the seeds' mode (their models saw the first N frames).
    """
    if frame_count <= 0 or budget <= 0:
        return []
    if budget >= frame_count:
        return list(range(frame_count))
    if mode == "first":
        return list(range(budget))
    if mode != "uniform":
        raise ValueError(f"unknown sampling mode {mode!r}")
    step = frame_count / budget
    return sorted({min(frame_count - 1, int(step * (i + 0.5))) for i in range(budget)})


# Past this many frames between samples, seeking beats decoding every frame in between. A seek decodes
# from the keyframe before the target (OpenCV steps back 16 frames, then to a keyframe): with x264's usual
# keyframe every 250 frames one seek cost as much as 85-170 grab()s at 720p and 1080p (benchmarks/levers.py).
# For samples that cannot snap to keyframes (below): 150 halves decoding on 5 min clips (32 samples 281
# frames apart); clips under ~2.5 min are still walked.
SEEK_GAP_FRAMES = 150
# OpenCV lands a seek to frame N by jumping to the keyframe at or before N - 16 and decoding forward, so a
# target 16 frames past a keyframe costs 17 decodes, and a target just past a keyframe costs a whole GOP.
OPENCV_SEEK_BACKSTEP = 16
# A snapped sample costs a seek and OPENCV_SEEK_BACKSTEP + 1 decodes; walking costs `gap` grabs a sample.
# Snap when samples are further apart than twice that (clips over ~35 s at 30 fps with the default budget).
SNAP_GAP_FRAMES = 2 * OPENCV_SEEK_BACKSTEP


def keyframe_indices(path: str | Path) -> list[int]:
    """Indices of the frames stored as keyframes, from the packets alone (nothing is decoded).

    Reading 9,000 packets of a 5 min 720p clip takes ~0.02 s (OpenCV's raw-stream mode)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    keys: list[int] = []
    try:
        index = 0
        while cap.isOpened() and cap.grab():
            if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                keys.append(index)
            index += 1
    finally:
        cap.release()
    return keys


def snap_to_keyframes(wanted: list[int], keyframes: list[int], frame_count: int) -> list[int] | None:
    """Move each wanted frame to the nearest cheap-to-seek frame (a keyframe + OPENCV_SEEK_BACKSTEP), each
    used once; None when there are fewer such frames than wanted (the clip has too few keyframes).

    Long clips sampled this way cost ~17 decodes a sample instead of up to a GOP (250 frames with x264's
    defaults), so time follows the frame budget, not the clip length; the samples stay spread over the
    clip (each moves by less than a GOP)."""
    cheap = sorted({min(frame_count - 1, k + OPENCV_SEEK_BACKSTEP) for k in keyframes})
    if len(cheap) < len(wanted):
        return None
    snapped: list[int] = []
    lo = 0
    for i, target in enumerate(wanted):
        # leave enough cheap frames for the targets still to come, never go back
        hi = len(cheap) - (len(wanted) - i)
        j = min(range(lo, hi + 1), key=lambda c: abs(cheap[c] - target))
        snapped.append(cheap[j])
        lo = j + 1
    return snapped


def sample_frames(
    path: str | Path,
    budget: int = 32,
    mode: str = "uniform",
    strategy: str = "auto",
    info: MediaInfo | None = None,
) -> Iterator[Frame]:
    """Yield the sampled frames of a video in order, decoding one at a time (never the whole clip).

    strategy: "grab" walks the stream with grab() and decodes only sampled frames with retrieve();
    "seek" jumps with CAP_PROP_POS_FRAMES; "auto" (uniform mode) moves each sample to a frame just past a
    keyframe and seeks there when samples are far apart and the clip has enough keyframes
    (snap_to_keyframes); otherwise it seeks to the exact frames only when they are very far apart.
    """
    info = info or probe(path)
    if info.kind != "video":
        raise MediaError("Expected a video, got an image.")
    wanted = frame_indices(info.frame_count, budget, mode)
    if not wanted:
        return
    if strategy == "auto":
        gap = (wanted[-1] - wanted[0]) / max(1, len(wanted) - 1)
        snapped = None
        if mode == "uniform" and gap > SNAP_GAP_FRAMES:
            snapped = snap_to_keyframes(wanted, keyframe_indices(path), info.frame_count)
        if snapped is not None:
            wanted, strategy = snapped, "seek"
        else:
            strategy = "seek" if gap > SEEK_GAP_FRAMES else "grab"
    cap = cv2.VideoCapture(str(path))
    fps = info.fps
    try:
        if strategy == "seek":
            for idx in wanted:
                cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
                ok, bgr = cap.read()
                if not ok:
                    break
                yield Frame(idx, idx / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            return
        wanted_set = set(wanted)
        last = wanted[-1]
        idx = 0
        while idx <= last:
            if not cap.grab():
                break
            if idx in wanted_set:
                ok, bgr = cap.retrieve()
                if ok:
                    yield Frame(idx, idx / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            idx += 1
    finally:
        cap.release()


def prefetch(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Yield what `items` yields, produced `depth` items ahead by a background thread.

    Decoding (OpenCV) and the models (ONNX Runtime, PyTorch) release the GIL, so decoding the next frames
    overlaps detecting and embedding faces in the current ones. The queue is bounded: at most `depth`
    frames wait in memory. An exception in the producer is raised here; stopping early stops the producer.
    """
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


@dataclass(frozen=True)
class _Failure:
    error: BaseException
