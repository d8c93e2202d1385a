"""`manage.py reanalyse`: resets items to QUEUED and publishes them through detection.jobs.enqueue."""

import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from detection import jobs
from detection.models import Item, Review
from detector_site.celery import app

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """The real enqueue runs; only the publish to Redis is recorded instead (item id, queue)."""
    calls = []

    def send_task(name, args, queue, **kwargs):
        assert name == jobs.ANALYSE_TASK
        calls.append((args[0], queue))

    monkeypatch.setattr(app, "send_task", send_task)
    return calls


def reanalyse(capture, *args) -> str:
    out = StringIO()
    with capture(execute=True):
        call_command("reanalyse", *args, stdout=out)
    return out.getvalue()


def done_item(make_item, **fields) -> Item:
    defaults = {
        "status": Item.Status.DONE,
        "verdict": "fake",
        "fake_probability": 0.91,
        "uncertain_reasons": [{"code": "frames_disagree", "text": "stale reasons are dropped too"}],
        "model_version": "image-mobilenet_v2@1",
        "result": {"verdict": "fake", "timeline": []},
        "stage": "done",
        "progress": 100,
        "attempts": 2,
        "started_at": timezone.now(),
        "finished_at": timezone.now(),
        "heartbeat_at": timezone.now(),
    }
    return make_item(**{**defaults, **fields})


def test_done_item_is_reset_and_published_to_its_queue(
    make_item, staff_user, published, django_capture_on_commit_callbacks
):
    item = done_item(make_item, faces=2)
    Review.objects.create(item=item, reviewer=staff_user, decision=Review.Decision.CONFIRM_FAKE)
    artifacts = Path(settings.MEDIA_ROOT) / item.artifacts_dir
    assert artifacts.is_dir()

    out = reanalyse(django_capture_on_commit_callbacks, str(item.pk))

    item.refresh_from_db()
    assert published == [(str(item.pk), "images")]
    assert item.status == Item.Status.QUEUED and item.attempts == 0 and item.progress == 0
    assert (item.verdict, item.fake_probability, item.uncertain_reasons, item.model_version, item.result) == (
        "",
        None,
        [],
        "",
        None,
    )
    assert item.started_at is item.finished_at is item.heartbeat_at is None and item.enqueued_at
    assert not item.faces.exists() and not artifacts.exists()
    assert Path(item.original.path).is_file()  # the upload itself stays
    assert item.reviews.count() == 1  # human decisions are kept
    assert "1 item(s) queued for analysis, 0 skipped" in out


def test_video_goes_to_the_video_queue(make_item, published, django_capture_on_commit_callbacks):
    item = make_item(name="clip.mp4", kind="video", status=Item.Status.FAILED, error="boom")
    reanalyse(django_capture_on_commit_callbacks, str(item.pk))
    item.refresh_from_db()
    assert published == [(str(item.pk), "video")]
    assert item.status == Item.Status.QUEUED and item.error == ""


def test_all_failed_selects_only_failed_items(make_item, published, django_capture_on_commit_callbacks):
    failed = [make_item(status=Item.Status.FAILED, error="x", attempts=3) for _ in range(2)]
    done = done_item(make_item)
    reanalyse(django_capture_on_commit_callbacks, "--all-failed")
    assert sorted(pk for pk, _ in published) == sorted(str(i.pk) for i in failed)
    assert all(Item.objects.get(pk=i.pk).status == Item.Status.QUEUED for i in failed)
    done.refresh_from_db()
    assert done.status == Item.Status.DONE and done.verdict == "fake"


def test_model_changed_selects_done_items_from_other_models(
    make_item, published, django_capture_on_commit_callbacks
):
    from ml.registry import deciding_refs

    current = deciding_refs()  # the deciding model per kind, not the CNN a photo no longer reads
    old_image = done_item(make_item, model_version="image-mobilenet_v2@0")
    old_video = done_item(make_item, name="v.mp4", kind="video", model_version="video-lstm@0")
    done_item(make_item, model_version=current["image"])
    done_item(make_item, name="w.mp4", kind="video", model_version=current["video"])
    make_item(status=Item.Status.FAILED)  # not DONE: not selected by --model-changed

    out = reanalyse(django_capture_on_commit_callbacks, "--model-changed")

    assert sorted(published) == sorted([(str(old_image.pk), "images"), (str(old_video.pk), "video")])
    assert current["image"] in out and "2 item(s) queued" in out


def test_running_item_is_skipped(make_item, published, django_capture_on_commit_callbacks):
    item = make_item(status=Item.Status.RUNNING, attempts=1, stage="scoring", heartbeat_at=timezone.now())
    out = reanalyse(django_capture_on_commit_callbacks, str(item.pk))
    item.refresh_from_db()
    assert item.status == Item.Status.RUNNING and item.attempts == 1 and item.stage == "scoring"
    assert published == [] and "running now" in out


def test_dry_run_changes_nothing(make_item, published, django_capture_on_commit_callbacks):
    item = make_item(status=Item.Status.FAILED, error="x")
    out = reanalyse(django_capture_on_commit_callbacks, "--all-failed", "--dry-run")
    item.refresh_from_db()
    assert item.status == Item.Status.FAILED and published == [] and "would queue" in out


def test_unknown_or_malformed_ids_change_nothing(make_item, published, django_capture_on_commit_callbacks):
    item = make_item(status=Item.Status.FAILED, error="x")
    with pytest.raises(CommandError, match="No item with id"):
        reanalyse(django_capture_on_commit_callbacks, str(item.pk), str(uuid.uuid4()))
    with pytest.raises(CommandError, match="Not an item id"):
        reanalyse(django_capture_on_commit_callbacks, "not-a-uuid")
    with pytest.raises(CommandError, match="--all-failed"):
        reanalyse(django_capture_on_commit_callbacks)
    item.refresh_from_db()
    assert item.status == Item.Status.FAILED and published == []
