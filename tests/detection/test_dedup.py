"""The same file from the same user makes one item, even when sent ten times at once (issue 12, #7)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from detection import jobs, services
from detection.models import Item
from detection.staging import StagedUpload

from .conftest import image_bytes


def stage_copy(content: bytes) -> StagedUpload:
    incoming = Path(settings.MEDIA_ROOT) / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / f"{uuid.uuid4().hex}.png"
    path.write_bytes(content)
    return StagedUpload(
        name="same.png",
        path=path,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        kind="image",
        width=64,
        height=48,
        duration=0.0,
    )


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_uploads_of_the_same_bytes_make_one_item(user, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda item: True)
    content = image_bytes(color=(1, 2, 3))
    staged = [stage_copy(content) for _ in range(10)]
    barrier = threading.Barrier(10)
    results, errors = [], []

    def upload(one: StagedUpload) -> None:
        try:
            barrier.wait()
            results.extend(services.submit_uploads(user, [one]))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(one,)) for one in staged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert Item.objects.filter(owner=user).count() == 1  # before the constraint: 2-6
    assert len({s.item.pk for s in results}) == 1 and sum(not s.reused for s in results) == 1
    assert all(not one.path.exists() for one in staged)  # the losers' staged copies are gone
    item = Item.objects.get()
    assert sorted(p.name for p in (Path(settings.MEDIA_ROOT) / item.original.name).parent.iterdir()) == [
        "original.png"
    ]


@pytest.mark.django_db
def test_the_database_refuses_a_second_live_item_for_the_same_file(make_item, user):
    first = make_item(sha256="a" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_item(sha256="a" * 64)
    Item.objects.filter(pk=first.pk).update(status=Item.Status.FAILED)
    assert make_item(sha256="a" * 64).status == Item.Status.QUEUED  # after a failure it may be sent again
