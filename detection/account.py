"""A user's own account: overview, downloading every result, and deleting the account with its media."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from .forms import DeleteAccountForm
from .reports import report_data
from .serving import content_disposition

EXPORT_FORMAT_VERSION = 1


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "registration/account.html",
        {"item_count": request.user.items.count(), "delete_form": DeleteAccountForm(request.user)},
    )


@login_required
@require_GET
def export_results(request: HttpRequest) -> HttpResponse:
    """All of the user's items and results as one JSON file: each item as its own JSON report says it."""
    items = request.user.items.order_by("created_at").prefetch_related("faces")
    document = {
        "format": EXPORT_FORMAT_VERSION,
        "user": request.user.get_username(),
        "exported_at": timezone.now(),
        "items": [report_data(item) for item in items],
    }
    response = HttpResponse(
        json.dumps(document, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
    )
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response["Content-Disposition"] = content_disposition(
        f"deepfake-detector-results-{stamp}.json", inline=False
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.user, request.POST)
    if not form.is_valid():
        return render(
            request,
            "registration/account.html",
            {"item_count": request.user.items.count(), "delete_form": form},
            status=400,
        )
    user = request.user
    logout(request)
    user.delete()  # cascades to every item; detection.signals removes each item's files after the commit
    messages.success(request, "Your account and everything you uploaded have been deleted.")
    return redirect("home")
