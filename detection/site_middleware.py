"""Site-wide response middleware: the Content-Security-Policy header, and a real page for 405 answers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from .uploads import wants_json


class ContentSecurityPolicyMiddleware:
    """Adds settings.CONTENT_SECURITY_POLICY unless the view set its own (served media has a stricter one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class MethodNotAllowedPageMiddleware:
    """Django answers a wrong method with an empty 405 (there is no handler405): give it the site's page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.content or wants_json(request):
            return response
        response.content = render_to_string(
            "405.html", {"allowed": response.get("Allow", ""), "method": request.method}, request=request
        )
        response["Content-Type"] = "text/html; charset=utf-8"
        return response


def allow_injected_styles(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For third-party pages that add <style> elements and a blob: worker at run time (the API's Swagger UI
    and Redoc docs): the site's policy with those two allowed. Still no inline script, no other origin."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        policy = settings.CONTENT_SECURITY_POLICY.replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'"
        )
        response["Content-Security-Policy"] = f"{policy}; worker-src 'self' blob:"
        return response

    return wrapped
