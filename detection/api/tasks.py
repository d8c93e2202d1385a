"""Celery task for webhook delivery (found by the worker through Celery's autodiscovery)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .models import Callback
from .webhooks import post_signed

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="detection.deliver_callback", max_retries=None, ignore_result=True)
def deliver_callback(self, item_id: str) -> str:
    callback = Callback.objects.select_related("item__owner").filter(item_id=item_id).first()
    if callback is None or callback.state != Callback.State.PENDING:
        return "nothing to deliver"
    Callback.objects.filter(pk=callback.pk).update(attempts=F("attempts") + 1)
    attempt = callback.attempts + 1
    try:
        post_signed(callback)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        if attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
            logger.warning("Webhook for item %s given up after %d attempts: %s", item_id, attempt, reason)
            Callback.objects.filter(pk=callback.pk).update(state=Callback.State.FAILED, last_error=reason)
            return "failed"
        Callback.objects.filter(pk=callback.pk).update(last_error=reason)
        raise self.retry(countdown=settings.WEBHOOK_RETRY_DELAY_SECONDS * 2 ** (attempt - 1)) from exc
    Callback.objects.filter(pk=callback.pk).update(
        state=Callback.State.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    return "delivered"
