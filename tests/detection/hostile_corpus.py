"""The hostile input corpus of issue 12, generated on the fly (never committed media).

Each entry is a file a person (or an attacker) might upload, with what must happen to it: `refused` with
a message matching a pattern, or `accepted` and then analysed by a worker to DONE or to FAILED with a
readable reason. Images are cut from scikit-image's astronaut photo; videos are written with OpenCV.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.ml import media_factory as mf

ACCEPT = "accept"
# The ids of build()'s cases, known before any file is generated (pytest parametrises over them).
CASE_IDS = (
    "empty",
    "text-as-jpg",
    "pdf-as-png",
    "zip-as-mp4",
    "html-as-jpg",
    "elf-as-png",
    "svg-script-as-jpg",
    "gif-as-png",
    "jpeg-plus-zip",
    "jpeg-plus-html",
    "image-bytes-as-mp4",
    "truncated-jpeg",
    "truncated-png",
    "truncated-webp",
    "truncated-mp4",
    "index-first-mp4-cut",
    "mp4-no-moov",
    "mp4-corrupt-moov",
    "audio-only-mp4",
    "heic-as-mp4",
    "avif-as-mp4",
    "video-0-frames",
    "video-1-frame",
    "image-1x1",
    "video-2x2",
    "image-60000x1",
    "png-bomb-60000",
    "png-20000",
    "webp-huge-canvas",
    "animated-webp",
    "cmyk-jpeg",
    "gray16-png",
    "gray-png",
    "palette-png",
    "alpha-png",
    "exif-rotated",
    "lying-duration",
    "video-too-long",
    "over-size-limit",
    "name-dot-dot-slash",
    "name-control-chars",
    "name-rtl-override",
    "name-300-chars",
    "name-only-dots",
    "name-nul",
)


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the file name sent
    content: bytes
    expect: str  # ACCEPT, or a regular expression the refusal message must match
    settle: tuple[str, ...] = ("done",)  # statuses the accepted file may end in after the worker


def _encode(rgb: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _face(size: int = 256) -> np.ndarray:
    return mf.face_patch(size)


def _video(tmp: Path, name: str, frames: int, size: tuple[int, int] = (160, 120)) -> Path:
    path = tmp / name
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    patch = cv2.resize(_face(), (min(size), min(size)))
    for t in range(frames):
        frame = np.full((size[1], size[0], 3), 70 + t % 50, np.uint8)
        frame[: patch.shape[0], : patch.shape[1]] = patch
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a photo")
    return buffer.getvalue()


def _webp_canvas(width: int, height: int) -> bytes:
    """A WebP whose extended header (VP8X) announces a huge canvas: a decompression bomb's opening."""
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _exif_rotated_face() -> bytes:
    """The face stored lying on its side, with EXIF orientation 6 (display rotated 90° clockwise)."""
    img = Image.fromarray(np.ascontiguousarray(np.rot90(_face(320), k=1)))
    exif = img.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif, quality=92)
    return buffer.getvalue()


def _lying_duration(clip: bytes) -> bytes:
    """The clip with its media header's duration multiplied by 1000: a container that lies."""
    data = bytearray(clip)
    at = data.find(b"mdhd")
    version = data[at + 4]
    offset = at + 4 + 4 + (16 if version == 1 else 8) + 4  # past flags, times and the timescale
    width = 8 if version == 1 else 4
    duration = int.from_bytes(data[offset : offset + width], "big")
    data[offset : offset + width] = min(duration * 1000, 2 ** (8 * width) - 1).to_bytes(width, "big")
    return bytes(data)


def build(tmp: Path) -> list[Case]:  # noqa: PLR0915 - a catalogue, read top to bottom
    face = _face()
    jpeg = _encode(face, "JPEG", quality=90)
    png = _encode(face, "PNG")
    webp = _encode(face, "WEBP")
    clip = _video(tmp, "clip.mp4", 20).read_bytes()
    faststart = mf.faststart(tmp / "clip.mp4", tmp / "faststart.mp4").read_bytes()
    moov = clip.find(b"moov")
    corrupt_moov = (
        clip[: moov + 4] + bytes(b ^ 0x5A for b in clip[moov + 4 : moov + 200]) + clip[moov + 200 :]
    )
    gray = np.asarray(Image.fromarray(face).convert("L"))
    gray16 = gray.astype(np.uint16) * 257  # the same face at 16 bits a sample
    palette = Image.fromarray(face).convert("P", palette=Image.Palette.ADAPTIVE)
    animated = [Image.fromarray(face), Image.fromarray(face[::-1].copy())]
    animated_webp = io.BytesIO()
    animated[0].save(animated_webp, format="WEBP", save_all=True, append_images=animated[1:], duration=100)
    gif = io.BytesIO()
    animated[0].save(gif, format="GIF", save_all=True, append_images=animated[1:])
    not_supported = "not a supported image or video"
    corrupt = "corrupt or truncated"
    return [
        Case("empty", "empty.jpg", b"", "empty"),
        Case("text-as-jpg", "notes.jpg", b"Dear diary,\n" * 50, not_supported),
        Case("pdf-as-png", "report.png", b"%PDF-1.7\n1 0 obj << >> endobj\n" + b"0" * 500, not_supported),
        Case("zip-as-mp4", "archive.mp4", _zip(), not_supported),
        Case("html-as-jpg", "page.jpg", b"<!doctype html><script>alert(1)</script>", not_supported),
        Case("elf-as-png", "program.png", b"\x7fELF\x02\x01\x01" + b"\0" * 500, not_supported),
        Case(
            "svg-script-as-jpg",
            "vector.jpg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script>',
            not_supported,
        ),
        Case("gif-as-png", "animation.png", gif.getvalue(), not_supported),
        Case("jpeg-plus-zip", "polyglot-zip.jpg", jpeg + _zip(), ACCEPT),
        Case("jpeg-plus-html", "polyglot-html.jpg", jpeg + b"<html><script>alert(1)</script></html>", ACCEPT),
        Case("image-bytes-as-mp4", "starts-as-image.mp4", png + clip, "contains an image"),
        Case("truncated-jpeg", "cut.jpg", jpeg[: len(jpeg) // 3], corrupt),
        Case("truncated-png", "cut.png", png[: len(png) // 2], corrupt),
        Case("truncated-webp", "cut.webp", webp[: len(webp) // 2], corrupt),
        Case("truncated-mp4", "cut.mp4", clip[: len(clip) // 3], corrupt),
        Case("index-first-mp4-cut", "cut-faststart.mp4", faststart[: len(faststart) // 3], corrupt),
        Case("mp4-no-moov", "no-index.mp4", clip[: moov - 4], corrupt),
        Case("mp4-corrupt-moov", "bad-index.mp4", corrupt_moov, corrupt + "|no video stream"),
        Case(
            "audio-only-mp4",
            "sound.mp4",
            mf.sound_only(tmp / "clip.mp4", tmp / "sound.mp4").read_bytes(),
            "no video stream",
        ),
        Case("heic-as-mp4", "photo.mp4", mf.heif_box(b"heic"), "HEIC photo"),
        Case("avif-as-mp4", "photo2.mp4", mf.heif_box(b"avif"), "AVIF photo"),
        Case(
            "video-0-frames",
            "nothing.mp4",
            _video(tmp, "zero.mp4", 0).read_bytes(),
            corrupt + "|no video stream|not a supported",
        ),
        Case(
            "video-1-frame", "still.mp4", _video(tmp, "one.mp4", 1).read_bytes(), ACCEPT, ("done", "failed")
        ),
        Case("image-1x1", "dot.png", _encode(np.zeros((1, 1, 3), np.uint8), "PNG"), "too small"),
        Case("video-2x2", "dot.mp4", _video(tmp, "tiny.mp4", 5, (2, 2)).read_bytes(), "too small|" + corrupt),
        Case(
            "image-60000x1",
            "line.png",
            _encode(np.zeros((1, 60000), np.uint8), "PNG"),
            "impossible shape|too small",
        ),
        Case("png-bomb-60000", "bomb.png", mf.png_header_only(60000, 60000), "too large"),
        Case("png-20000", "big.png", mf.png_header_only(20000, 20000), "too large"),
        Case("webp-huge-canvas", "canvas.webp", _webp_canvas(16383, 16383), "too large|" + corrupt),
        Case("animated-webp", "moving.webp", animated_webp.getvalue(), ACCEPT),
        Case("cmyk-jpeg", "print.jpg", _encode_cmyk(face), ACCEPT),
        Case("gray16-png", "gray16.png", _encode(gray16, "PNG"), ACCEPT),
        Case(
            "gray-png",
            "gray.png",
            _encode(np.clip(gray.astype(int) + 5, 0, 255).astype(np.uint8), "PNG"),
            ACCEPT,
        ),
        Case("palette-png", "palette.png", _save(palette, "PNG"), ACCEPT),
        Case(
            "alpha-png",
            "alpha.png",
            _encode(np.dstack([face, np.full(face.shape[:2], 128, np.uint8)]), "PNG"),
            ACCEPT,
        ),
        Case("exif-rotated", "rotated.jpg", _exif_rotated_face(), ACCEPT),
        Case(
            "lying-duration", "liar.mp4", _lying_duration(clip), ACCEPT + "|too long|long", ("done", "failed")
        ),
        Case(
            "video-too-long",
            "long.mp4",
            _video(tmp, "long.mp4", 60).read_bytes(),
            "long; videos can be at most",
        ),
        Case("over-size-limit", "huge.png", png + b"\0" * (3 * 1024 * 1024), "larger than the limit"),
        Case(
            "name-dot-dot-slash", "../../../../tmp/escape.png", _encode(face[::2, ::2].copy(), "PNG"), ACCEPT
        ),
        Case(
            "name-control-chars",
            "\x1b[31mred\r\n.png",
            _encode(face[1::2, ::2].copy(), "PNG"),
            ACCEPT + "|not supported",
        ),
        Case("name-rtl-override", "photo\u202egnp.exe.png", _encode(face[::2, 1::2].copy(), "PNG"), ACCEPT),
        Case("name-300-chars", "a" * 296 + ".png", _encode(face[1::2, 1::2].copy(), "PNG"), ACCEPT),
        Case("name-only-dots", "....", png, "not supported"),
        Case("name-nul", "nul\x00byte.png", _encode(face[::3, ::3].copy(), "PNG"), ACCEPT + "|not supported"),
    ]


def _encode_cmyk(rgb: np.ndarray) -> bytes:
    return _save(Image.fromarray(rgb).convert("CMYK"), "JPEG")


def _save(img: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()


def display_name_of(case: Case) -> str:
    """The name the site shows for the case's file (detection.staging.display_name)."""
    from detection.staging import display_name

    return display_name(case.name)
