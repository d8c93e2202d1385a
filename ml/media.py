"""Recognise, validate and decode user media: images and videos, by content rather than by name."""

from __future__ import annotations

import bisect
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

from ml.containers import read_boxes
from ml.errors import MediaError

# 12 MP phone photos are common and 50 MP ones exist; beyond this we assume a decompression bomb.
MAX_IMAGE_PIXELS = 80_000_000
# Frames larger than 8K are not video a person uploads; refuse rather than allocate gigabytes.
MAX_VIDEO_PIXELS = 7680 * 4320
# A face needs pixels: below this on either side there is nothing to find (and a 1-pixel-wide image
# reaches OpenCV's resize, which fails on it with an internal assertion).
MIN_SIDE = 16
# Phone panoramas reach about 8:1; a 60000x1 "image" is not a picture of anyone.
MAX_ASPECT_RATIO = 20

IMAGE_FORMATS = ("jpeg", "png", "webp")
VIDEO_FORMATS = ("mp4", "mov", "webm", "mkv", "avi")
# Frames sampled per video, evenly: by the analyser (ml.pipeline), the crop cache and both trainers.
DEFAULT_FRAMES = 32

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
        info = _probe_image(path, fmt)
    else:
        if fmt in ("mp4", "mov"):
            _check_mp4_structure(path)
        info = _probe_video(path, fmt)
    check_shape(info.width, info.height, info.kind)
    return info


def check_shape(width: int, height: int, kind: str = "image") -> None:
    """Refuse shapes no photo or video has: tiny sides and extreme aspect ratios (MediaError)."""
    noun = "image" if kind == "image" else "video's frames"
    if min(width, height) < MIN_SIDE:
        raise MediaError(
            f"The {noun} is too small to analyse ({width}×{height} pixels; at least {MIN_SIDE} pixels "
            "on each side are needed)."
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise MediaError(
            f"The {noun} has an impossible shape ({width}×{height} pixels): one side is more than "
            f"{MAX_ASPECT_RATIO} times the other."
        )


def _check_mp4_structure(path: Path) -> None:
    """Catch what OpenCV opens without complaint: a still image in an MP4 box, a cut-off file, no index,
    no video track."""
    boxes = read_boxes(path)
    if boxes.image_type:
        raise MediaError(
            f"This is a {boxes.image_type} photo, not a video, and {boxes.image_type} is not supported: "
            "convert it to JPEG (and name it .jpg)."
        )
    if boxes.truncated:
        raise MediaError("The video is corrupt or truncated: the file ends before the data it announces.")
    if b"moov" not in boxes.boxes:
        raise MediaError("The video is corrupt or truncated: it has no index (no moov box).")
    if boxes.handlers and b"vide" not in boxes.handlers:
        raise MediaError("The file has no video stream (it holds only sound); upload a video or a photo.")


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
    except Image.DecompressionBombError as exc:
        # Pillow refuses to even open images over twice its own limit (~179 MP): a size, not corruption.
        raise MediaError(
            f"The image is too large to analyse (the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels)."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
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
    """Count frames from the packets, for containers (WebM) whose header has no count.

    Nothing is decoded (OpenCV's raw-stream mode), so a long 4K WebM costs the upload request a read of
    its packets, not a decode of every frame."""
    return len(_packet_flags(path))


def _packet_flags(path: str | Path) -> list[bool]:
    """For each video packet (one a frame) in order, whether it is a keyframe; nothing is decoded."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    flags: list[bool] = []
    try:
        while cap.isOpened() and cap.grab():
            flags.append(bool(cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME)))
    finally:
        cap.release()
    return flags


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
        return np.asarray(to_8bit(img).convert("RGB"))


def to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16- and 32-bit single-channel images to 8-bit grey.

    Pillow's convert("RGB") clips a 16-bit grayscale PNG (mode "I;16" or "I", values up to 65535) at 255
    instead of scaling it, which turns the photo all white."""
    if img.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return img
    values = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        top = 1.0 if values.size and float(values.max()) <= 1.0 else 255.0
    else:
        top = 65535.0 if img.mode.startswith("I;16") or (values.size and values.max() > 255) else 255.0
    scaled = np.clip(np.nan_to_num(values) * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


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


# OpenCV lands a seek to frame N by jumping to the keyframe at or before N - 16 and decoding forward, so a
# target 16 frames past a keyframe costs 17 decodes, and a target just past a keyframe costs a whole GOP.
OPENCV_SEEK_BACKSTEP = 16
# What a seek costs beyond the frames it decodes (demuxer seek, decoder flush), in frames: with it the
# cost model below walks clips whose samples are under ~32 frames apart and seeks past ~150 frames with
# x264's keyframe every 250 frames, the break-even points benchmarks/levers.py measured.
SEEK_OVERHEAD_FRAMES = OPENCV_SEEK_BACKSTEP
# Decoding costs ~2.6 ms per megapixel of frame on the 2-core reference machine (0.6 ms a 640x360 frame,
# walking a clip). A video's sampling may decode this many megapixels (~10 s), whatever its keyframes: a
# 170 s 1080p clip with a single keyframe cost 57 s of seeking before this bound (issue 12).
MAX_DECODE_MEGAPIXELS = 4000


@dataclass(frozen=True)
class ReadPlan:
    """Which frames to decode and how; `decodes` is the estimated number of frames decoded."""

    frames: list[int]
    strategy: str  # "grab" (walk the stream) or "seek"
    decodes: int


def seek_cost(targets: list[int], keyframes: list[int]) -> int:
    """Frames decoded (plus the per-seek overhead) to seek to each target in turn."""
    cost = 0
    for target in targets:
        before = bisect.bisect_right(keyframes, max(0, target - OPENCV_SEEK_BACKSTEP)) - 1
        start = keyframes[before] if before >= 0 else 0
        cost += target - start + 1 + SEEK_OVERHEAD_FRAMES
    return cost


def plan_reads(wanted: list[int], keyframes: list[int], frame_count: int, pixels: int, mode: str) -> ReadPlan:
    """The cheapest way to decode `wanted`, bounded by MAX_DECODE_MEGAPIXELS whatever the GOP.

    Candidates: walk to the last sample; seek to each sample; seek to samples moved just past keyframes
    (snap_to_keyframes). When even the cheapest costs more than the bound (keyframes too sparse for the
    clip's length, e.g. one keyframe in a long clip), the samples are spread over the part of the clip
    that can be walked within the bound instead.
    """
    plans = [ReadPlan(wanted, "grab", wanted[-1] + 1)]
    if keyframes:
        plans.append(ReadPlan(wanted, "seek", seek_cost(wanted, keyframes)))
        snapped = snap_to_keyframes(wanted, keyframes, frame_count) if mode == "uniform" else None
        if snapped is not None:
            plans.append(ReadPlan(snapped, "seek", seek_cost(snapped, keyframes)))
    best = min(plans, key=lambda plan: plan.decodes)
    limit = max(len(wanted), int(MAX_DECODE_MEGAPIXELS * 1_000_000 / max(1, pixels)))
    if best.decodes <= limit:
        return best
    walkable = frame_indices(min(frame_count, limit), len(wanted), mode)
    return ReadPlan(walkable, "grab", walkable[-1] + 1)


def keyframe_indices(path: str | Path) -> list[int]:
    """Indices of the frames stored as keyframes, from the packets alone (nothing is decoded).

    Reading 9,000 packets of a 5 min 720p clip takes ~0.02 s (OpenCV's raw-stream mode)."""
    return [index for index, key in enumerate(_packet_flags(path)) if key]


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
    budget: int = DEFAULT_FRAMES,
    mode: str = "uniform",
    strategy: str = "auto",
    info: MediaInfo | None = None,
) -> Iterator[Frame]:
    """Yield the sampled frames of a video in order, decoding one at a time (never the whole clip).

    strategy: "grab" walks the stream with grab() and decodes only sampled frames with retrieve();
    "seek" jumps with CAP_PROP_POS_FRAMES; "auto" takes the cheapest of those (and, in uniform mode, of
    seeking to samples moved just past keyframes) within a decode bound (plan_reads).
    """
    info = info or probe(path)
    if info.kind != "video":
        raise MediaError("Expected a video, got an image.")
    wanted = frame_indices(info.frame_count, budget, mode)
    if not wanted:
        return
    if strategy == "auto":
        keyframes = keyframe_indices(path) if len(wanted) > 1 else []
        plan = plan_reads(wanted, keyframes, info.frame_count, info.width * info.height, mode)
        wanted, strategy = plan.frames, plan.strategy
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
