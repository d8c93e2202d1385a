"""The job bookkeeping and the task's control flow, with the pipeline replaced by stand-ins.

These are unit tests of what the task does around `analyse` (claiming, progress, retries, failure
messages, the sweep). The real pipeline runs in test_queue.py and test_browser.py.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError
from django.utils import timezone

import ml.pipeline
from detection import jobs
from detection.models import Item
from detection.tasks import analyse_item
from ml.errors import MediaError

pytestmark = pytest.mark.django_db


def fake_result(artifacts_dir: Path, verdict: str = "fake") -> dict:
    (artifacts_dir / "face_0.jpg").write_bytes(b"jpeg bytes")
    (artifacts_dir / "face_0_heatmap.png").write_bytes(b"png bytes")
    return {
        "path": "x",
        "kind": "image",
        "verdict": verdict,
        "fake_probability": 0.83,
        "model": "stand-in@1",
        "faces": [
            {
                "track": 0,
                "box": [1, 2, 3, 4],
                "frames": [0],
                "fake_probability": 0.83,
                "thumbnail": "face_0.jpg",
                "heatmap": "face_0_heatmap.png",
            }
        ],
        "timeline": [],
        "uncertain_reasons": [],
        "threshold": 0.5,
        "seconds": 0.1,
    }


@pytest.fixture
def no_publish(monkeypatch):
    published = []
    monkeypatch.setattr(jobs, "enqueue", lambda item: published.append(str(item.pk)) or True)
    return published


def run_task(item: Item) -> Item:
    analyse_item.apply(args=[str(item.pk)])
    item.refresh_from_db()
    return item


def test_task_stores_result_faces_and_progress(make_item, monkeypatch):
    seen_progress = []

    def analyse(path, artifacts_dir, progress):
        assert Path(path).is_file()
        for stage, fraction in [("detecting faces", 0.2), ("scoring", 0.7)]:
            progress(stage, fraction)
            seen_progress.append(Item.objects.values_list("stage", "progress").get())
        return fake_result(artifacts_dir)

    monkeypatch.setattr(ml.pipeline, "analyse", analyse)
    item = run_task(make_item())
    assert item.status == Item.Status.DONE and item.progress == 100 and item.attempts == 1
    assert item.verdict == "fake" and item.fake_probability == 0.83 and item.model_version == "stand-in@1"
    assert seen_progress == [("detecting faces", 20), ("scoring", 70)]
    face = item.faces.get()
    assert face.thumbnail.name == f"{item.artifacts_dir}/face_0.jpg" and Path(face.thumbnail.path).is_file()
    assert face.heatmap.name == f"{item.artifacts_dir}/face_0_heatmap.png"


def test_media_error_fails_at_once_with_the_message(make_item, monkeypatch):
    calls = []

    def analyse(path, artifacts_dir, progress):
        calls.append(1)
        raise MediaError("The video ends early: it is truncated or corrupt.")

    monkeypatch.setattr(ml.pipeline, "analyse", analyse)
    item = run_task(make_item())
    assert (
        item.status == Item.Status.FAILED
        and item.error == "The video ends early: it is truncated or corrupt."
    )
    assert calls == [1]


def test_other_errors_retry_up_to_the_cap_then_fail_with_the_reason(make_item, monkeypatch, settings):
    settings.JOB_MAX_ATTEMPTS = 3
    calls = []

    def analyse(path, artifacts_dir, progress):
        calls.append(1)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ml.pipeline, "analyse", analyse)
    item = run_task(make_item())
    assert len(calls) == 3 and item.attempts == 3
    assert item.status == Item.Status.FAILED and "error on our side" in item.error
    assert "RuntimeError" not in item.error and "out of memory" not in item.error  # internals stay in the log


def test_an_error_then_success_ends_done(make_item, monkeypatch):
    calls = []

    def analyse(path, artifacts_dir, progress):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database went away")
        return fake_result(artifacts_dir, verdict="real")

    monkeypatch.setattr(ml.pipeline, "analyse", analyse)
    item = run_task(make_item())
    assert (
        item.status == Item.Status.DONE and item.verdict == "real" and item.attempts == 2 and not item.error
    )


@pytest.mark.django_db(transaction=True)  # the task closes the broken connection, as a worker does
def test_database_errors_alone_never_use_up_the_attempts(make_item, monkeypatch, settings):
    calls = []

    def analyse(path, artifacts_dir, progress):
        calls.append(1)
        if len(calls) <= settings.JOB_MAX_ATTEMPTS:
            raise OperationalError("server closed the connection unexpectedly")
        return fake_result(artifacts_dir, verdict="real")

    monkeypatch.setattr(ml.pipeline, "analyse", analyse)
    item = run_task(make_item())
    # Before: every retry's claim counted one, and the fourth found them used up ("the worker stopped").
    assert len(calls) == settings.JOB_MAX_ATTEMPTS + 1
    assert item.status == Item.Status.DONE and item.attempts == 1, (item.status, item.error)


def test_result_cannot_point_at_files_outside_its_artifacts(make_item, monkeypatch):
    def analyse(path, artifacts_dir, progress):
        result = fake_result(artifacts_dir)
        result["faces"][0]["thumbnail"] = "../original.png"
        result["faces"][0]["heatmap"] = "/etc/passwd"
        return result

    monkeypatch.setattr(ml.pipeline, "analyse", analyse)
    face = run_task(make_item()).faces.get()
    assert not face.thumbnail and not face.heatmap


def test_duplicate_delivery_of_a_finished_job_does_nothing(make_item):
    item = make_item(status=Item.Status.DONE)
    assert jobs.claim(str(item.pk))[0] is jobs.Claim.FINISHED


def test_duplicate_delivery_while_another_worker_is_alive_does_nothing(make_item):
    item = make_item(status=Item.Status.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    assert jobs.claim(str(item.pk))[0] is jobs.Claim.RUNNING_ELSEWHERE


def test_redelivery_after_a_crash_claims_the_job_again(make_item, settings):
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5)
    item = make_item(status=Item.Status.RUNNING, heartbeat_at=stale, attempts=1)
    outcome, claimed = jobs.claim(str(item.pk))
    assert outcome is jobs.Claim.CLAIMED and claimed.attempts == 2


def test_a_job_that_keeps_crashing_its_worker_ends_failed(make_item, settings):
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5)
    item = make_item(status=Item.Status.RUNNING, heartbeat_at=stale, attempts=settings.JOB_MAX_ATTEMPTS)
    assert jobs.claim(str(item.pk))[0] is jobs.Claim.GAVE_UP
    item.refresh_from_db()
    assert item.status == Item.Status.FAILED and "interrupted" in item.error


def test_the_retry_after_a_database_error_carries_on_under_the_same_attempt_once(make_item, settings):
    # The interrupted run's worker left it RUNNING (the database was down when it tried to say so), with
    # a heartbeat not yet stale and its last attempt used.
    item = make_item(
        status=Item.Status.RUNNING,
        heartbeat_at=timezone.now(),
        started_at=timezone.now() - timedelta(seconds=1),
        attempts=settings.JOB_MAX_ATTEMPTS,
    )
    interrupted = jobs.run_token(item)
    outcome, resumed = jobs.claim(str(item.pk), resuming=interrupted)
    assert outcome is jobs.Claim.CLAIMED and resumed.attempts == settings.JOB_MAX_ATTEMPTS
    assert jobs.run_token(resumed) != interrupted
    # The resumed run crashes too; the same message, redelivered, no longer names the item's run.
    Item.objects.filter(pk=item.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
    assert jobs.claim(str(item.pk), resuming=interrupted)[0] is jobs.Claim.GAVE_UP


def test_a_run_token_from_before_a_reanalysis_is_not_resumed(make_item, no_publish, settings):
    item = make_item(status=Item.Status.DONE, started_at=timezone.now(), attempts=settings.JOB_MAX_ATTEMPTS)
    interrupted = jobs.run_token(item)
    assert jobs.reset_for_analysis(item)
    outcome, claimed = jobs.claim(str(item.pk), resuming=interrupted)
    assert outcome is jobs.Claim.CLAIMED and claimed.attempts == 1


def test_deleted_item_is_skipped(make_item):
    item = make_item()
    item_id = str(item.pk)
    item.delete()
    assert jobs.claim(item_id)[0] is jobs.Claim.MISSING


def test_sweep_requeues_stale_running_and_fails_exhausted(make_item, no_publish, settings):
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5)
    requeue = make_item(status=Item.Status.RUNNING, heartbeat_at=stale, attempts=1)
    give_up = make_item(status=Item.Status.RUNNING, heartbeat_at=stale, attempts=settings.JOB_MAX_ATTEMPTS)
    alive = make_item(status=Item.Status.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    report = jobs.sweep_stale_jobs()
    assert report.requeued_stale == [str(requeue.pk)] and report.failed_stale == [str(give_up.pk)]
    assert no_publish == [str(requeue.pk)]
    for obj in (requeue, give_up, alive):
        obj.refresh_from_db()
    assert requeue.status == Item.Status.QUEUED
    assert give_up.status == Item.Status.FAILED and "stopped responding" in give_up.error
    assert alive.status == Item.Status.RUNNING


def test_sweep_republishes_jobs_queued_too_long(make_item, no_publish, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.JOB_REQUEUE_SECONDS + 5)
    lost = make_item(enqueued_at=long_ago)
    make_item(enqueued_at=timezone.now())
    assert jobs.sweep_stale_jobs().requeued_waiting == [str(lost.pk)]
    assert no_publish == [str(lost.pk)]


def test_enqueue_publishes_the_analysis_task_by_its_registered_name():
    assert jobs.ANALYSE_TASK == analyse_item.name


def test_enqueue_with_redis_down_keeps_the_item_queued(make_item, monkeypatch):
    from detector_site.celery import app

    # Publish over a connection to a dead broker, leaving the app's own (cached) pools untouched:
    # changing the app's broker URL would leave later tests in this process with a broken pool.
    dead = app.connection_for_write("redis://127.0.0.1:1/0")  # nothing listens on port 1
    publish = app.send_task
    monkeypatch.setattr(app, "send_task", lambda *a, **kw: publish(*a, connection=dead, **kw))
    item = make_item()
    assert jobs.enqueue(item) is False
    item.refresh_from_db()
    assert item.status == Item.Status.QUEUED and item.enqueued_at is None  # unpublished: see test_outage
    assert item.stage == jobs.WAITING_FOR_QUEUE


def test_progress_reporter_throttles_within_a_stage(make_item):
    item = make_item(status=Item.Status.RUNNING)
    report = jobs.ProgressReporter(item.pk, interval=60)
    report("scoring", 0.1)
    report("scoring", 0.2)  # throttled
    assert Item.objects.values_list("progress", flat=True).get(pk=item.pk) == 10
    report("writing", 0.9)  # a new stage is always written
    assert Item.objects.values_list("stage", "progress").get(pk=item.pk) == ("writing", 90)


def test_delivery_while_the_heartbeat_is_fresh_is_checked_again_later(make_item, monkeypatch):
    item = make_item(status=Item.Status.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    scheduled = []

    def fake_retry(*args, **kwargs):
        scheduled.append(kwargs)
        return RuntimeError("retry scheduled")

    monkeypatch.setattr(analyse_item, "retry", fake_retry)
    with pytest.raises(RuntimeError, match="retry scheduled"):
        analyse_item.run(str(item.pk))
    assert scheduled[0]["kwargs"] == {"rechecks": 1}
    assert analyse_item.run(str(item.pk), rechecks=10_000) == "running elsewhere"
