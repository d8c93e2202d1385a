"""Real queue: uploads go through Redis to a real `celery worker` subprocess running the real pipeline."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detection.models import Item

pytestmark = [pytest.mark.slow, pytest.mark.queue, pytest.mark.django_db(transaction=True)]

# First job of a worker loads the models; on 2 CPU cores that dominates.
JOB_TIMEOUT = 300


def upload(client, path, name: str) -> Item:
    response = client.post(reverse("upload"), {"files": SimpleUploadedFile(name, path.read_bytes())})
    assert response.status_code == 302, response.content[:2000]
    return Item.objects.get(original_name=name)


def finished(item: Item) -> bool:
    item.refresh_from_db()
    return item.is_finished


def test_image_reaches_done_with_faces_from_the_real_pipeline(
    alice_client, start_worker, face_image_path, wait
):
    worker = start_worker()
    item = upload(alice_client, face_image_path, "astronaut.jpg")
    wait(
        lambda: finished(item),
        JOB_TIMEOUT,
        message=lambda: f"job not finished; worker log:\n{worker.log[-3000:]}",
    )
    assert item.status == Item.Status.DONE, item.error
    assert item.verdict in ("real", "fake", "uncertain") and 0.0 <= item.fake_probability <= 1.0
    assert "@" in item.model_version and item.result["kind"] == "image"
    face = item.faces.first()
    assert face is not None and face.thumbnail and face.thumbnail.storage.exists(face.thumbnail.name)
    assert item.attempts == 1 and item.progress == 100
    page = alice_client.get(item.get_absolute_url()).content.decode()
    assert item.get_verdict_display() in page and reverse("face_thumbnail", args=[item.pk, face.pk]) in page


def test_video_goes_to_the_video_queue_and_gets_a_timeline(alice_client, start_worker, face_video_path, wait):
    # This worker consumes only the video queue: the job finishing proves it was routed there.
    worker = start_worker(queues="video")
    item = upload(alice_client, face_video_path, "clip.mp4")
    assert item.kind == "video"
    wait(
        lambda: finished(item),
        JOB_TIMEOUT,
        message=lambda: f"job not finished; worker log:\n{worker.log[-3000:]}",
    )
    assert item.status == Item.Status.DONE, item.error
    assert item.verdict in ("real", "fake", "uncertain", "no_face")
    if item.verdict != "no_face":
        assert item.timeline and {"frame", "time", "fake_probability"} <= set(item.timeline[0])
        assert "<svg" in alice_client.get(item.get_absolute_url()).content.decode()


def test_job_survives_a_worker_crash(alice_client, start_worker, face_video_path, wait, settings):
    first = start_worker()
    item = upload(alice_client, face_video_path, "crash.mp4")
    wait(
        lambda: Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).exists(),
        JOB_TIMEOUT,
        interval=0.05,
        message=lambda: f"job never started; worker log:\n{first.log[-3000:]}",
    )
    first.kill()  # SIGKILL to the whole process group: no acknowledgement, no cleanup
    item.refresh_from_db()
    assert item.status == Item.Status.RUNNING, "the job finished before the crash could be simulated"

    # The broker hands the unacknowledged message out again after its visibility timeout; the new worker
    # finds the heartbeat stale and takes the job over.
    second = start_worker()
    wait(
        lambda: finished(item),
        JOB_TIMEOUT,
        message=lambda: f"job not finished; worker log:\n{second.log[-3000:]}",
    )
    assert item.status == Item.Status.DONE, item.error
    assert item.attempts == 2


def test_jobs_lost_with_a_redis_restart_are_enqueued_again_by_the_sweep(
    alice_client, start_worker, redis_broker, face_image_path, wait, settings
):
    import redis

    from detection.jobs import sweep_stale_jobs

    item = upload(alice_client, face_image_path, "lost.jpg")  # no worker yet: the message waits in Redis
    redis.Redis.from_url(redis_broker).flushdb()  # what a restart without persistence does to the queue
    settings.JOB_REQUEUE_SECONDS = 0
    assert sweep_stale_jobs().requeued_waiting == [str(item.pk)]
    worker = start_worker()
    wait(
        lambda: finished(item),
        JOB_TIMEOUT,
        message=lambda: f"job not finished; worker log:\n{worker.log[-3000:]}",
    )
    assert item.status == Item.Status.DONE, item.error
