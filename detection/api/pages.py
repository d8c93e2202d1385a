"""The API settings page: create or revoke your API token, and see or renew your webhook secret."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from .models import WebhookSecret, new_secret


@login_required
@require_http_methods(["GET", "POST"])
def api_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create_token":
            # One token per user: creating a new one replaces (and so revokes) the old one.
            Token.objects.filter(user=request.user).delete()
            Token.objects.create(user=request.user)
            messages.success(request, "A new API token was created; the previous one no longer works.")
        elif action == "revoke_token":
            Token.objects.filter(user=request.user).delete()
            messages.success(request, "Your API token was revoked.")
        elif action == "renew_secret":
            WebhookSecret.objects.update_or_create(user=request.user, defaults={"secret": new_secret()})
            messages.success(request, "Your webhook secret was renewed; verify signatures with the new one.")
        return redirect("api_settings")
    context = {
        "token": Token.objects.filter(user=request.user).first(),
        "webhook_secret": WebhookSecret.for_user(request.user),
    }
    return render(request, "detection/api_settings.html", context)
