"""Refusing oversize and anonymous uploads before anything reads the request body.

Django's CSRF check reads request.POST, which parses the whole multipart body and spools every file to a
temporary file; the size limits in UploadForm came after that. An attack run streamed 1 GiB into the temp
folder logged out (just the CSRF cookie), and 450 MB logged in before the 413. UploadGuardMiddleware sits
before CsrfViewMiddleware and, for views marked with @accepts_uploads, refuses an anonymous POST at once,
a Content-Length over what the limits allow at once, and counts each file as it arrives (FileSizeLimit),
dropping a file as soon as it passes the per-file limit instead of storing it.

The API's upload action (a DRF viewset method marked the same way) is guarded too: a request counts as
logged in with a session or with a valid `Authorization: Token ...` header, and its refusals are the API's
JSON errors (401 `not_authenticated`, 413 `payload_too_large`) instead of the site's pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest, HttpResponse, JsonResponse

ATTRIBUTE = "accepts_uploads"


def accepts_uploads(view: Callable) -> Callable:
    """Mark a view (or a DRF viewset action) whose POST carries uploaded files: UploadGuardMiddleware
    guards its body."""
    setattr(view, ATTRIBUTE, True)
    return view


def api_view_class(view_func: Callable) -> type | None:
    """The DRF view class behind a resolved view function, or None for a plain Django view."""
    return getattr(view_func, "cls", None)


def guards_uploads(view_func: Callable, method: str) -> bool:
    """Whether a request with this method to this view carries uploads the guard must check."""
    if getattr(view_func, ATTRIBUTE, False):
        return True
    # A viewset's route serves several actions (GET list, POST create): the mapped action carries the mark.
    action = (getattr(view_func, "actions", None) or {}).get(method.lower())
    view_class = api_view_class(view_func)
    return bool(action and view_class and getattr(getattr(view_class, action, None), ATTRIBUTE, False))


def token_user(request: HttpRequest) -> Any:
    """The user of a valid `Authorization: Token ...` header (the API's scripts), or None."""
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None


def max_body_bytes() -> int:
    """Room for every allowed file at the limit, plus the multipart framing and form fields."""
    return settings.MAX_UPLOAD_BYTES * settings.MAX_FILES_PER_UPLOAD + 1024 * 1024


def too_large_message() -> str:
    return (
        f"The upload is too large: at most {settings.MAX_FILES_PER_UPLOAD} files of "
        f"{settings.MAX_UPLOAD_MB} MB each."
    )


def body_too_large(request: HttpRequest) -> str:
    """The refusal for a body whose Content-Length cannot fit the limits, or '' if it may fit."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return too_large_message() if length > max_body_bytes() else ""


def wants_json(request: HttpRequest) -> bool:
    return request.headers.get(
        "x-requested-with"
    ) == "XMLHttpRequest" or "application/json" in request.headers.get("accept", "")


class FileSizeLimit(FileUploadHandler):
    """First upload handler: counts each file's bytes and skips the file once it passes the limit, so the
    rest of it is read and thrown away rather than written to a temporary file."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = settings.MAX_UPLOAD_BYTES
        self.received = 0
        self.oversized: list[str] = []

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.oversized.append(str(self.file_name or "unnamed"))
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler stores the file


def oversized_files(request: HttpRequest) -> list[str]:
    """Names of the files FileSizeLimit dropped from this request (parse request.FILES first)."""
    for handler in getattr(request, "_upload_handlers", None) or []:
        if isinstance(handler, FileSizeLimit):
            return handler.oversized
    return []


class UploadGuardMiddleware:
    """Place before CsrfViewMiddleware: its process_view runs first, before anything parses the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: Any, view_kwargs: Any):
        if request.method != "POST" or not guards_uploads(view_func, request.method):
            return None
        refuse = _api_refusal if api_view_class(view_func) else _site_refusal
        if not (request.user.is_authenticated or token_user(request) is not None):
            return refuse(request, "not_authenticated", "Log in to upload.", 401)
        too_large = body_too_large(request)
        if too_large:
            return refuse(request, "payload_too_large", too_large, 413)
        request.upload_handlers.insert(0, FileSizeLimit(request))
        return self._parse(request, refuse)

    def _parse(self, request: HttpRequest, refuse: Callable[..., HttpResponse]) -> HttpResponse | None:
        """Parse the body here (CSRF would next), so a refusal is a page that says why, not a bare 400."""
        try:
            request.POST  # noqa: B018 - parses the body and request.FILES through the handlers above
        except TooManyFilesSent:
            message = f"Upload at most {settings.MAX_FILES_PER_UPLOAD} files at a time."
            return refuse(request, "upload_rejected", message, 400)
        except (RequestDataTooBig, TooManyFieldsSent):
            return refuse(request, "upload_rejected", "The form sent with the files is too large.", 400)
        return None


def _site_refusal(request: HttpRequest, code: str, message: str, status: int) -> HttpResponse:
    """The upload page with the reason (JSON for its script); a logged-out browser goes to the login."""
    from .views import upload_refused

    if code == "not_authenticated":
        if wants_json(request):
            return JsonResponse({"ok": False, "errors": [message]}, status=403)
        return redirect_to_login(request.get_full_path())
    return upload_refused(request, [message], status=status)


def _api_refusal(request: HttpRequest, code: str, message: str, status: int) -> HttpResponse:
    """The API's error shape, as its exception handler would have written it."""
    from .api.errors import error_body

    if code == "not_authenticated" and request.headers.get("authorization"):
        code, message = "authentication_failed", "Invalid token."  # DRF's own code and words for it
    elif code == "not_authenticated":
        message = "Send an `Authorization: Token ...` header with a valid token, or log in."
    response = JsonResponse(error_body(code, message), status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Token"  # what DRF's TokenAuthentication answers
    return response


class UploadAllowance:
    """What a user may still upload: files this rolling hour (UPLOADS_PER_HOUR) and bytes of storage
    (STORAGE_QUOTA_MB). Staff, and forms without an owner, are not limited."""

    def __init__(self, owner: Any = None) -> None:
        from django.db.models import Sum
        from django.utils import timezone

        from .models import Item

        self.limited = owner is not None and owner.is_authenticated and not owner.is_staff
        if not self.limited:
            return
        recent = Item.objects.filter(owner=owner, created_at__gte=timezone.now() - timedelta(hours=1))
        self.files_left = settings.UPLOADS_PER_HOUR - recent.count()
        stored = Item.objects.filter(owner=owner).aggregate(total=Sum("size"))["total"] or 0
        self.bytes_left = settings.STORAGE_QUOTA_MB * 1024 * 1024 - stored

    def refusal(self, name: str, size: int) -> str:
        """Why this file may not be accepted, or '' if it may."""
        if not self.limited:
            return ""
        if self.files_left <= 0:
            return (
                f"{name}: you have reached the limit of {settings.UPLOADS_PER_HOUR} uploads an hour; "
                "try again later."
            )
        if size > self.bytes_left:
            return (
                f"{name} does not fit in your storage quota of {settings.STORAGE_QUOTA_MB} MB; delete "
                "earlier items from your history to make room."
            )
        return ""

    def consume(self, size: int) -> None:
        """Count an accepted file against the allowance."""
        if self.limited:
            self.files_left -= 1
            self.bytes_left -= size
