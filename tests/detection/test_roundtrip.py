"""`manage.py roundtrip` against real Redis and a real `celery worker` running the real pipeline."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models.signals import post_save

from detection.models import Item

pytestmark = [pytest.mark.slow, pytest.mark.queue, pytest.mark.django_db(transaction=True)]

RUN_LINE = re.compile(
    r"^1\s+(image|video)\s+\S+ [KM]?B\s+DONE\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(REAL|FAKE|NO FACE FOUND)\s+", re.M
)


def test_roundtrip_measures_a_photo_and_a_video_and_cleans_up(start_worker):
    start_worker()  # consumes both queues, shares this test's database and MEDIA_ROOT
    created_ids = []

    def remember(sender, instance, created, **kwargs):
        if created:
            created_ids.append(instance.pk)

    post_save.connect(remember, sender=Item, dispatch_uid="roundtrip-test")
    out = StringIO()
    try:
        call_command("roundtrip", "--repeat", "1", "--worker-timeout", "30", stdout=out)
    finally:
        post_save.disconnect(sender=Item, dispatch_uid="roundtrip-test")
    text = out.getvalue()

    assert sorted(m.group(1) for m in RUN_LINE.finditer(text)) == ["image", "video"], text
    assert re.search(r"^median\s+image\s+.*1 DONE", text, re.M), text
    assert re.search(r"^median\s+video\s+.*1 DONE", text, re.M), text
    # Everything it made is gone again: items, their files, the throwaway user.
    assert len(created_ids) == 2
    assert not Item.objects.filter(pk__in=created_ids).exists()
    assert not any((Path(settings.MEDIA_ROOT) / "items" / str(pk)).exists() for pk in created_ids)
    assert not get_user_model().objects.filter(username="roundtrip").exists()


def test_roundtrip_without_a_worker_says_so_and_fails(redis_broker):
    with pytest.raises(CommandError, match=r"No Celery worker consuming the queue\(s\) images, video"):
        call_command("roundtrip", "--repeat", "1", "--worker-timeout", "1", stdout=StringIO())
    assert not Item.objects.exists()


def test_roundtrip_refuses_a_real_account(monkeypatch, django_user_model):
    from detection.management.commands import roundtrip

    monkeypatch.setattr(roundtrip, "wait_for_workers", lambda timeout: {})
    django_user_model.objects.create_user(username="roundtrip", password="a-real-password-1")
    with pytest.raises(CommandError, match="looks like a real account"):
        call_command("roundtrip", "--repeat", "1", stdout=StringIO())
