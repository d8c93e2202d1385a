"""Webhook delivery: signed with the owner's secret, retried on failure, given up after the limit."""

import hashlib
import hmac
import json

import pytest

from detection.api.models import Callback, WebhookSecret
from detection.api.tasks import deliver_callback
from detection.api.webhooks import attach_callback, callback_url_problem

pytestmark = pytest.mark.django_db


def expected_signature(user, body: bytes) -> str:
    secret = WebhookSecret.objects.get(user=user).secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_delivery_is_signed_and_retried_until_it_succeeds(make_item, user, webhook_receiver, settings):
    item = make_item(status="done", verdict="real", fake_probability=0.1)
    attach_callback(item, webhook_receiver.url)
    webhook_receiver.statuses = [500, 503]
    deliver_callback.apply(args=[str(item.pk)])  # eager: each retry runs at once
    assert len(webhook_receiver.received) == 3
    headers, body = webhook_receiver.received[-1]
    assert headers["X-Detector-Signature"] == expected_signature(user, body)
    payload = json.loads(body)
    assert payload["event"] == "analysis.finished" and payload["analysis"]["file"]["id"] == str(item.pk)
    assert payload["analysis"]["analysis"]["verdict"] == "real"
    callback = Callback.objects.get(item=item)
    assert callback.state == Callback.State.DELIVERED and callback.attempts == 3


def test_delivery_gives_up_after_the_limit(make_item, webhook_receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    item = make_item(status="failed", error="broken file")
    attach_callback(item, webhook_receiver.url)
    webhook_receiver.statuses = [500] * 5
    deliver_callback.apply(args=[str(item.pk)])
    callback = Callback.objects.get(item=item)
    assert callback.state == Callback.State.FAILED and callback.attempts == 2 and "500" in callback.last_error
    assert len(webhook_receiver.received) == 2


def test_private_addresses_are_refused_unless_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    assert "private or local" in callback_url_problem("http://127.0.0.1:9/hook")
    assert "private or local" in callback_url_problem("http://[::1]/hook")
    assert "http:// or https://" in callback_url_problem("file:///etc/passwd")
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert callback_url_problem("http://127.0.0.1:9/hook") == ""
