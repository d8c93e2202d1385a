"""What the API adds to the site: each user's webhook secret, and an item's pending webhook callback."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from detection.models import Item


def new_secret() -> str:
    return secrets.token_hex(32)


class WebhookSecret(models.Model):
    """The key a user's webhook callbacks are signed with (HMAC-SHA256); shown on the API settings page."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = models.CharField(max_length=64, default=new_secret)
    created_at = models.DateTimeField(auto_now=True)

    @classmethod
    def for_user(cls, user) -> WebhookSecret:
        return cls.objects.get_or_create(user=user)[0]


class Callback(models.Model):
    """A client's request to be told, at `url`, when one item's analysis ends."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="callback")
    url = models.URLField(max_length=2000)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"callback for {self.item_id} ({self.state})"
