"""Faults with real processes: the worker's pool child killed mid-video (issue 12, faults)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detection.models import Item

pytestmark = [pytest.mark.slow, pytest.mark.queue, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 300


def pool_children(main_pid: int) -> list[int]:
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def test_a_killed_pool_child_mid_video_is_recovered_by_the_same_worker_exactly_once(
    alice_client, start_worker, face_video_path, wait
):
    worker = start_worker()
    upload = SimpleUploadedFile("pool-kill.mp4", face_video_path.read_bytes())
    alice_client.post(reverse("upload"), {"files": upload})
    item = Item.objects.get(original_name="pool-kill.mp4")
    wait(
        lambda: Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).exists(),
        JOB_TIMEOUT,
        interval=0.05,
        message=lambda: f"job never started; worker log:\n{worker.log[-3000:]}",
    )
    children = pool_children(worker.popen.pid)
    assert children, "no pool child found"
    for pid in children:
        os.kill(pid, signal.SIGKILL)  # the process running the job dies; the worker's main process lives
    killed_at = time.monotonic()
    item.refresh_from_db()
    assert item.status == Item.Status.RUNNING, "the job finished before the kill could be simulated"

    wait(
        lambda: Item.objects.filter(pk=item.pk, status__in=[Item.Status.DONE, Item.Status.FAILED]).exists(),
        JOB_TIMEOUT,
        message=lambda: f"job not finished; worker log:\n{worker.log[-3000:]}",
    )
    recovered = time.monotonic() - killed_at
    item.refresh_from_db()
    print(f"pool child killed mid-video: DONE {recovered:.1f} s later on the same worker")
    assert worker.popen.poll() is None  # the same worker carried on
    assert item.status == Item.Status.DONE and item.attempts == 2, (item.status, item.attempts, item.error)
    assert item.faces.count() == len(item.result["faces"])  # one result stored, not two
