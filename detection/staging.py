"""File staging: an accepted upload copied, hashed and probed under MEDIA_ROOT/incoming, handed to
detection.services as a StagedUpload (the form validates and calls stage_upload; the services turn it into
an Item). Every refusal is a ValidationError whose message the uploader reads."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from ml.file_types import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

# What the pipeline accepts, by file name (ml.file_types); probe_media then checks the content.
KIND_BY_EXTENSION = {**dict.fromkeys(IMAGE_EXTENSIONS, "image"), **dict.fromkeys(VIDEO_EXTENSIONS, "video")}
SUPPORTED_TYPES_TEXT = "JPEG, PNG or WebP images, or MP4, MOV, WebM, AVI or MKV videos"


def probe_media(path: Path) -> Any:
    """The pipeline's own probe: magic bytes plus a real decode. Raises ml.errors.MediaError on bad input."""
    from ml.media import probe

    return probe(path)


def import_media_probe() -> None:
    """Import the probe and its libraries ahead of the first upload (detector_site.wsgi does, at start)."""
    import ml.media  # noqa: F401


def _media_error_class() -> type[Exception]:
    try:
        from ml.errors import MediaError
    except ImportError:  # the system check reports a missing pipeline; here just stay useful
        return ValueError
    return MediaError


def human_size(num_bytes: int) -> str:
    if num_bytes >= 1024 * 1024:
        return f"{num_bytes / (1024 * 1024):.1f} MB"
    if num_bytes >= 1024:
        return f"{num_bytes / 1024:.0f} KB"
    return f"{num_bytes} bytes"


def human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    if minutes and secs:
        return f"{minutes} min {secs} s"
    return f"{minutes} min" if minutes else f"{secs} s"


def display_name(raw: str | None) -> str:
    """The name shown for an upload: its last path part, without control or invisible formatting characters
    (a right-to-left override makes "photo\u202egnp.exe" read as "photoexe.png"), at most 255 characters."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = " ".join(name.split())
    return name[-255:] if name.strip(".") else "unnamed"


@dataclass
class StagedUpload:
    """An upload that passed every check, parked under MEDIA_ROOT/incoming until it becomes an Item."""

    name: str
    path: Path
    sha256: str
    size: int
    kind: str
    width: int | None
    height: int | None
    duration: float | None
    notice: str = ""  # something the uploader should know about an accepted file

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _incoming_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _extension_and_kind(name: str, size: int | None) -> tuple[str, str]:
    """The upload's extension and the kind its name promises; ValidationError for a type the pipeline does
    not take, an empty file or one over the per-file limit (all known before a byte is copied)."""
    extension = PurePosixPath(name).suffix.lower()
    expected_kind = KIND_BY_EXTENSION.get(extension)
    if expected_kind is None:
        raise ValidationError(f"{name}: this file type is not supported. Upload {SUPPORTED_TYPES_TEXT}.")
    if not size:
        raise ValidationError(f"{name} is empty (0 bytes). Choose the file again or pick another one.")
    if size > settings.MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"{name} is {human_size(size)}; the limit is {settings.MAX_UPLOAD_MB} MB per file."
        )
    return extension, expected_kind


def _copy_to_incoming(upload: UploadedFile, extension: str) -> tuple[Path, str]:
    """`upload` copied under a fresh name into MEDIA_ROOT/incoming, hashed on the way: (path, SHA-256)."""
    staged_path = _incoming_dir() / f"{uuid.uuid4().hex}{extension}"
    digest = hashlib.sha256()
    with staged_path.open("wb") as out:
        for chunk in upload.chunks():
            digest.update(chunk)
            out.write(chunk)
    return staged_path, digest.hexdigest()


def _checked_content(name: str, extension: str, expected_kind: str, info: Any) -> tuple[str, float]:
    """The probed kind and duration; ValidationError if the content is not the kind its name says, or is
    a video over the length limit."""
    kind = str(info.kind)
    duration = float(getattr(info, "duration", 0) or 0)
    if kind != expected_kind:
        raise ValidationError(
            f"{name} contains {'a video' if kind == 'video' else 'an image'}, but its name ends in "
            f"{extension}, which is {'a video' if expected_kind == 'video' else 'an image'} type. "
            "Rename it to match its content."
        )
    if kind == "video" and duration > settings.MAX_VIDEO_SECONDS:
        raise ValidationError(
            f"{name} is {human_duration(duration)} long; videos can be at most "
            f"{human_duration(settings.MAX_VIDEO_SECONDS)}."
        )
    return kind, duration


def _probe_staged(name: str, staged_path: Path, extension: str, expected_kind: str) -> tuple[Any, str, float]:
    """(probe info, kind, duration) of the staged copy; if it cannot be read or fails a check, the copy is
    deleted and ValidationError raised (an unexpected failure is logged, and shown without detail)."""
    try:
        info = probe_media(staged_path)
        kind, duration = _checked_content(name, extension, expected_kind, info)
    except ValidationError:
        staged_path.unlink(missing_ok=True)
        raise
    except Exception as exc:
        staged_path.unlink(missing_ok=True)
        if isinstance(exc, _media_error_class()):
            raise ValidationError(f"{name}: {exc}") from exc
        logger.exception("Probing %s failed unexpectedly", name)
        raise ValidationError(f"{name} could not be read as an image or a video.") from exc
    return info, kind, duration


def _single_frame_notice(name: str, kind: str, info: Any) -> str:
    if kind == "video" and int(getattr(info, "frame_count", 0) or 0) == 1:
        return (
            f"{name} is a video of a single frame: the verdict rests on that one picture, with no "
            "movement to judge."
        )
    return ""


def stage_upload(upload: UploadedFile) -> StagedUpload:
    """Check one upload and copy it, hashing on the way, to MEDIA_ROOT/incoming; ValidationError if bad."""
    name = display_name(upload.name)
    extension, expected_kind = _extension_and_kind(name, upload.size)
    staged_path, sha256 = _copy_to_incoming(upload, extension)
    info, kind, duration = _probe_staged(name, staged_path, extension, expected_kind)
    return StagedUpload(
        notice=_single_frame_notice(name, kind, info),
        name=name,
        path=staged_path,
        sha256=sha256,
        size=upload.size,
        kind=kind,
        width=getattr(info, "width", None),
        height=getattr(info, "height", None),
        duration=duration,
    )
