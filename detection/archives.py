"""ZIP uploads: expanded into one upload per member, safely, before the normal per-file validation.

Used by UploadForm, so the upload page, the API and `manage.py analyse` all expand archives the same way.
A member's path is never used to write anything: only its base name survives (as the item's display
name), so path traversal cannot reach the disk; unsafe names are still refused so the user hears of them.
"""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile

CHUNK = 1024 * 1024


def is_archive(upload: UploadedFile) -> bool:
    return PurePosixPath(upload.name or "").suffix.lower() == ".zip"


def expand_archives(uploads: list[UploadedFile]) -> tuple[list[UploadedFile], list[str]]:
    """Replace every .zip upload by its members; returns (uploads, one message per refused member)."""
    expanded: list[UploadedFile] = []
    rejections: list[str] = []
    for upload in uploads:
        if not is_archive(upload):
            expanded.append(upload)
            continue
        try:
            members, refused = _expand_zip(upload)
        except ValidationError as exc:
            rejections.extend(exc.messages)
            continue
        expanded.extend(members)
        rejections.extend(refused)
    return expanded, rejections


def _is_junk(name: str) -> bool:
    """Folders and the metadata some zip tools add (macOS resource forks, dot files) are skipped silently."""
    parts = PurePosixPath(name).parts
    hidden = any(part.startswith(".") and part not in (".", "..") for part in parts)
    return name.endswith("/") or "__MACOSX" in parts or hidden


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (
        "\\" in name
        or path.is_absolute()
        or ".." in path.parts
        or ":" in (path.parts[0] if path.parts else "")
    )


def _member_problem(archive: str, info: zipfile.ZipInfo) -> str:
    """Why one member is refused, or '' if it may be extracted."""
    shown = f"{archive}: {info.filename}"
    if _unsafe_name(info.filename):
        return f"{shown}: refused, the path leaves the archive."
    if info.flag_bits & 0x1:
        return f"{shown}: refused, it is encrypted."
    if info.file_size > settings.MAX_UPLOAD_BYTES:
        return f"{shown}: refused, it would be larger than {settings.MAX_UPLOAD_MB} MB unpacked."
    if info.file_size > max(info.compress_size, 1) * settings.ZIP_MAX_RATIO:
        return f"{shown}: refused, it unpacks to more than {settings.ZIP_MAX_RATIO} times its packed size."
    return ""


def _expand_zip(upload: UploadedFile) -> tuple[list[UploadedFile], list[str]]:
    archive = PurePosixPath(upload.name or "archive.zip").name
    try:
        upload.seek(0)
        bundle = zipfile.ZipFile(upload.file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValidationError(f"{archive} is not a readable ZIP archive.") from exc
    with bundle:
        infos = [info for info in bundle.infolist() if not _is_junk(info.filename)]
        if len(infos) > settings.ZIP_MAX_MEMBERS:
            raise ValidationError(
                f"{archive} holds {len(infos)} files; an archive may hold at most {settings.ZIP_MAX_MEMBERS}."
            )
        if sum(info.file_size for info in infos) > settings.ZIP_MAX_TOTAL_MB * 1024 * 1024:
            raise ValidationError(f"{archive} unpacks to more than {settings.ZIP_MAX_TOTAL_MB} MB.")
        members: list[UploadedFile] = []
        refused: list[str] = []
        for info in infos:
            problem = _member_problem(archive, info)
            if problem:
                refused.append(problem)
                continue
            try:
                members.append(_extract(bundle, info))
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                refused.append(f"{archive}: {info.filename}: could not be unpacked ({exc}).")
        if not infos:
            refused.append(f"{archive} contains no files.")
    return members, refused


def _extract(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> UploadedFile:
    """Copy one member into a temporary upload; zipfile stops at the declared size and checks the CRC."""
    name = PurePosixPath(info.filename).name
    member = TemporaryUploadedFile(name, "application/octet-stream", info.file_size, None)
    with bundle.open(info) as source:
        while chunk := source.read(CHUNK):
            member.write(chunk)
    member.flush()
    member.seek(0)
    return member
