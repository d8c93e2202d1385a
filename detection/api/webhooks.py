"""Webhook callbacks: when an analysis ends, POST its report to the client's URL, signed, with retries.

The body is signed with HMAC-SHA256 under the owner's webhook secret (API settings page); the receiver
recomputes it over the raw body and compares it with the `X-Detector-Signature: sha256=<hex>` header.
Delivery is at least once: a receiver should use `analysis.file.id` to ignore repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from detection.models import Item
from detection.reports import report_data
from detection.signals import analysis_finished

from .models import Callback, WebhookSecret

SIGNATURE_HEADER = "X-Detector-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_url_problem(url: str) -> str:
    """Why the server will not call `url` ('' if it will): http(s) only, and no private addresses
    unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES (so a client cannot probe the server's own network)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The callback URL must be an http:// or https:// URL."
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError:
        return f"The callback host {parts.hostname} cannot be resolved."
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return f"The callback host {parts.hostname} is a private or local address."
    return ""


def attach_callback(item: Item, url: str) -> None:
    """Ask for `url` to be called when `item` ends; at once if it has already ended (a reused upload)."""
    Callback.objects.update_or_create(
        item=item, defaults={"url": url, "state": Callback.State.PENDING, "attempts": 0, "last_error": ""}
    )
    WebhookSecret.for_user(item.owner)
    # The job may have ended between the upload and this row: look again instead of waiting for a signal.
    if Item.objects.filter(pk=item.pk, status__in=(Item.Status.DONE, Item.Status.FAILED)).exists():
        schedule_delivery(item.pk)


def schedule_delivery(item_id) -> None:
    from .tasks import deliver_callback

    transaction.on_commit(lambda: deliver_callback.apply_async(args=[str(item_id)], queue="images"))


@receiver(analysis_finished)
def _on_analysis_finished(sender, item_id, **kwargs) -> None:
    if Callback.objects.filter(item_id=item_id, state=Callback.State.PENDING).exists():
        schedule_delivery(item_id)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead past the address check: treat it as a failed delivery instead."""

    def redirect_request(self, *args, **kwargs):
        return None


def post_signed(callback: Callback) -> int:
    """POST the item's report to the callback URL; returns the HTTP status, raises on failure."""
    problem = callback_url_problem(callback.url)  # again: the name may resolve differently by now
    if problem:
        raise ValueError(problem)
    payload = {
        "event": "analysis.finished",
        "sent_at": timezone.now().isoformat(),
        "analysis": report_data(callback.item),
    }
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        callback.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "deepfake-detector-webhook/1",
            SIGNATURE_HEADER: sign(WebhookSecret.for_user(callback.item.owner).secret, body),
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    with opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
        return response.status
