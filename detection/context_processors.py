from django.conf import settings
from django.http import HttpRequest


def upload_limits(request: HttpRequest) -> dict:
    return {
        "MAX_UPLOAD_MB": settings.MAX_UPLOAD_MB,
        "MAX_UPLOAD_BYTES": settings.MAX_UPLOAD_BYTES,
        "MAX_VIDEO_SECONDS": settings.MAX_VIDEO_SECONDS,
        "MAX_FILES_PER_UPLOAD": settings.MAX_FILES_PER_UPLOAD,
    }
