"""Serving a private media file after the view has checked who may see it.

Byte ranges (so a video player can seek), the user's own file name in Content-Disposition, headers that
stop a browser from sniffing or caching the bytes, and an optional hand-off to the web server
(`MEDIA_ACCEL_REDIRECT`) so a large video does not occupy a Python worker.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse

# Uploaded bytes are served from the site's own origin: never let a browser run them as a page.
MEDIA_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
# A deleted item's bytes must not outlive it in the browser's cache (issue 12, finding 10).
MEDIA_CACHE_CONTROL = "private, no-store"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def content_disposition(filename: str, inline: bool = True) -> str:
    """RFC 6266: an ASCII fallback for old clients and the exact UTF-8 name in filename*.

    Not django.utils.http.content_disposition_header: it passes an ASCII control character (a file
    name may hold one) into the header, which Django then refuses with an error page.
    """
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The single byte range `header` asks for, as (first, last) inclusive; None when it is unusable.

    Raises ValueError when the range is well-formed but lies outside the file (the caller answers 416).
    Several ranges in one header are answered with the whole file, which RFC 9110 allows.
    """
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if first_text == "":  # "bytes=-N": the last N bytes
        length = int(last_text)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        raise ValueError("range not satisfiable")
    return first, last


def _read_slice(path: Path, first: int, last: int):
    with path.open("rb") as handle:
        handle.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def _accelerated(relative_name: str) -> HttpResponse | None:
    """An empty response telling nginx (X-Accel-Redirect) or Apache/lighttpd (X-Sendfile) to send the file."""
    mode = settings.MEDIA_ACCEL_REDIRECT
    if mode == "x-accel-redirect":
        response = HttpResponse()
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX.rstrip("/") + "/" + quote(relative_name)
        return response
    if mode == "x-sendfile":
        response = HttpResponse()
        response["X-Sendfile"] = str(Path(settings.MEDIA_ROOT).resolve() / relative_name)
        return response
    return None


def serve_media(request: HttpRequest, relative_name: str, download_name: str) -> HttpResponse:
    """The file at MEDIA_ROOT/relative_name, honouring a Range header; 404 if it is missing or escapes."""
    if not relative_name:
        raise Http404("No such file")
    media_root = Path(settings.MEDIA_ROOT).resolve()
    path = (media_root / relative_name).resolve()
    if not path.is_relative_to(media_root) or not path.is_file():
        raise Http404("No such file")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = _accelerated(str(path.relative_to(media_root)))
    if response is not None:  # the web server handles ranges itself
        response["Content-Type"] = content_type
    else:
        response = _direct_response(request, path, content_type)
    response["Content-Disposition"] = content_disposition(download_name)
    response["Content-Security-Policy"] = MEDIA_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = MEDIA_CACHE_CONTROL
    return response


def _direct_response(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    size = path.stat().st_size
    header = request.headers.get("range", "")
    try:
        wanted = parse_range(header, size) if header and size else None
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if wanted is None:
        response = FileResponse(path.open("rb"), content_type=content_type)
    else:
        first, last = wanted
        response = StreamingHttpResponse(
            _read_slice(path, first, last), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    return response
