"""Every API error is JSON of one shape: {"error": {"code": ..., "message": ..., "details": ...}}.

`code` is stable (clients branch on it); `message` is for people and may change.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApiError(exceptions.APIException):
    """An error with an explicit stable code, e.g. `upload_rejected` or `not_ready`."""

    def __init__(self, code: str, message: str, http_status: int = 400, details: Any = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = http_status
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling and logging apply
    if isinstance(exc, ApiError):
        response.data = error_body(_code_of(exc), str(exc.detail), exc.details)
    elif isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", "The request is not valid.", exc.detail)
    else:
        response.data = error_body(_code_of(exc), str(getattr(exc, "detail", exc)))
    return response
