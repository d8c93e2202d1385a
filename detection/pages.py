"""Pages anyone may read (landing, how it works, limits, privacy, terms) and the logout confirmation."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

INFO_PAGES = {
    "how_it_works": "pages/how_it_works.html",
    "limits": "pages/limits.html",
    "privacy": "pages/privacy.html",
    "terms": "pages/terms.html",
}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed-in users go straight to work; visitors get the landing page that says what this is."""
    if request.user.is_authenticated:
        return redirect("upload")
    return render(request, "pages/landing.html")


@require_GET
def info_page(request: HttpRequest, page: str) -> HttpResponse:
    return render(request, INFO_PAGES[page])


@require_http_methods(["GET", "POST"])
def logout(request: HttpRequest) -> HttpResponse:
    """POST logs out (Django's view); a GET, e.g. an old bookmark, asks to confirm instead of a bare 405."""
    if request.method == "POST":
        return auth_views.LogoutView.as_view()(request)
    return render(request, "registration/logout_confirm.html")
