"""Job bookkeeping around the analysis task: enqueue, claim, progress, results, failure and the sweep.

The database row (Item.status) is the source of truth for a job, not the broker. That is what makes the
queue forgiving: a message delivered twice finds the job already claimed or finished, and a message
lost with a Redis restart is put back by the sweep because its item is still QUEUED.
"""

from __future__ import annotations

import enum
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ml.results import AnalysisResult

from .models import Face, Item
from .signals import analysis_finished

logger = logging.getLogger(__name__)


# --- Enqueueing --------------------------------------------------------------------------------------


# The analysis task (detection.tasks.analyse_item), published by name: tasks imports this module, so this one
# does not import tasks. The worker applies the task's own time limits and acknowledgement settings.
ANALYSE_TASK = "detection.analyse_item"
# Shown as the item's stage while its job could not be published (Redis down); cleared once it is.
WAITING_FOR_QUEUE = "waiting for the queue (delayed)"
# While publishing fails, this process tries again after 1 s, then doubling up to this many seconds.
REPUBLISH_MAX_DELAY = 15.0


def enqueue(item: Item) -> bool:
    """Send the item's job to its queue. Returns False if Redis is down: the item is then marked unpublished
    (enqueued_at empty, the stage says the queue is delayed) and published again as soon as Redis answers,
    by a background thread of this process and by the sweep."""
    try:
        current_app.send_task(
            ANALYSE_TASK,
            args=[str(item.pk)],
            queue=item.queue_name,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
        )
    except Exception:
        logger.exception("Could not enqueue item %s; it is published again once Redis answers", item.pk)
        Item.objects.filter(pk=item.pk, status=Item.Status.QUEUED).update(
            enqueued_at=None, stage=WAITING_FOR_QUEUE
        )
        _start_republisher()
        return False
    Item.objects.filter(pk=item.pk).update(enqueued_at=timezone.now())
    Item.objects.filter(pk=item.pk, stage=WAITING_FOR_QUEUE).update(stage="")
    return True


def unpublished() -> Any:
    """QUEUED items whose job never reached the broker."""
    return Item.objects.filter(status=Item.Status.QUEUED, enqueued_at__isnull=True)


def publish_unpublished() -> bool:
    """Publish every unpublished job; False as soon as one fails (the broker is still down)."""
    for item in unpublished().order_by("created_at"):
        if not enqueue(item):
            return False
    return True


_republisher_lock = threading.Lock()
_republisher: threading.Thread | None = None


def _start_republisher() -> None:
    """One thread per process retries unpublished jobs with backoff until they are all out, so uploads
    made during a Redis outage start seconds after it ends, not after JOB_REQUEUE_SECONDS."""
    global _republisher
    with _republisher_lock:
        if _republisher is not None and _republisher.is_alive():
            return
        _republisher = threading.Thread(target=_republish_until_done, name="republisher", daemon=True)
        _republisher.start()


def _republish_until_done() -> None:
    delay = 1.0
    deadline = time.monotonic() + settings.JOB_REQUEUE_SECONDS
    try:
        while time.monotonic() < deadline:
            time.sleep(delay)
            try:
                if publish_unpublished():
                    return
            except Exception:
                logger.exception("Republishing queued jobs failed")
            delay = min(REPUBLISH_MAX_DELAY, delay * 2)
    finally:
        connection.close()  # this thread's own connection


def enqueue_after_commit(item: Item) -> None:
    # The worker must find the row when the message arrives, so publish only once it is committed.
    transaction.on_commit(lambda: enqueue(item))


# Statuses an item may be re-analysed from. A RUNNING job is left alone: resetting it under a live worker
# would race that worker's result (`python manage.py sweep_jobs` handles RUNNING jobs whose worker died).
REANALYSABLE = (Item.Status.DONE, Item.Status.FAILED, Item.Status.QUEUED)


def reset_for_analysis(item: Item) -> bool:
    """Put the item back to QUEUED as if just uploaded (result, faces and artifacts dropped, attempts at 0)
    and enqueue it once that commits. Reviews are kept: they are the record of human decisions.

    Returns False, changing nothing, if the item is RUNNING or no longer exists, or if it FAILED and the
    owner has since uploaded the same file again (that newer item is the one to analyse).
    """
    try:
        return _reset_for_analysis(item)
    except IntegrityError:  # Item's one-live-item-per-file constraint
        return False


def _reset_for_analysis(item: Item) -> bool:
    with transaction.atomic():
        # Conditional on the status, so a job a worker claims meanwhile is not reset under it.
        reset = Item.objects.filter(pk=item.pk, status__in=REANALYSABLE).update(
            status=Item.Status.QUEUED,
            stage="",
            progress=0,
            error="",
            attempts=0,
            verdict="",
            fake_probability=None,
            uncertain_reasons=[],
            model_version="",
            result=None,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
        )
        if not reset:
            return False
        Face.objects.filter(item_id=item.pk).delete()
        artifacts = Path(settings.MEDIA_ROOT) / item.artifacts_dir
        # on_commit callbacks run in order: the old thumbnails go before the job is published.
        transaction.on_commit(lambda: shutil.rmtree(artifacts, ignore_errors=True))
        enqueue_after_commit(item)
    item.refresh_from_db()
    return True


# --- Claiming a job --------------------------------------------------------------------------------------


class Claim(enum.Enum):
    CLAIMED = "claimed"
    MISSING = "missing"  # deleted by its owner while queued
    FINISHED = "finished"  # a duplicate delivery of a job that already ended
    RUNNING_ELSEWHERE = "running elsewhere"  # a duplicate delivery while another worker is alive on it
    GAVE_UP = "gave up"  # too many attempts already


def _is_stale(heartbeat_at: datetime | None, now: datetime) -> bool:
    return heartbeat_at is None or now - heartbeat_at > timedelta(seconds=settings.JOB_STALE_SECONDS)


def run_token(item: Item) -> str:
    """Names one claim of the item (its start time): a job retried after a database outage passes it on,
    so that its retry carries on under the same attempt instead of counting another."""
    return item.started_at.isoformat() if item.started_at else ""


def _resumes(item: Item, resuming: str | None) -> bool:
    # A redelivery after a crash of the resumed run finds a newer start time here, so it counts again:
    # only the run a database error interrupted is taken over, once.
    if not resuming or item.started_at is None:
        return False
    return item.started_at == datetime.fromisoformat(resuming)


def claim(item_id: str, resuming: str | None = None) -> tuple[Claim, Item | None]:
    """Mark the item RUNNING for this worker, unless someone else owns it or it has had enough attempts.

    `resuming` is the run_token of this job's own run that a database error interrupted: if nothing claimed
    the item since, the retry takes over that run's attempt at once (its worker has left it, even if its
    heartbeat is not stale yet) rather than count one more against the file.
    """
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(pk=item_id).first()
        if item is None:
            return Claim.MISSING, None
        if item.is_finished:
            return Claim.FINISHED, item
        now = timezone.now()
        resumed = _resumes(item, resuming)
        if not resumed and item.status == Item.Status.RUNNING and not _is_stale(item.heartbeat_at, now):
            return Claim.RUNNING_ELSEWHERE, item
        if not resumed and item.attempts >= settings.JOB_MAX_ATTEMPTS:
            # Only crashes get here: an attempt that raised decides itself whether to retry.
            _fail(
                item,
                f"The analysis was interrupted {item.attempts} times (the worker stopped while "
                "processing this file), so it was given up.",
            )
            return Claim.GAVE_UP, item
        item.status = Item.Status.RUNNING
        item.attempts += 0 if resumed else 1
        item.stage = "starting"
        item.progress = 0
        item.error = ""
        item.started_at = now
        item.heartbeat_at = now
        item.save(
            update_fields=["status", "attempts", "stage", "progress", "error", "started_at", "heartbeat_at"]
        )
        return Claim.CLAIMED, item


# --- While a job runs --------------------------------------------------------------------------------


@contextmanager
def heartbeat(item_id: Any, interval: float | None = None) -> Iterator[None]:
    """Touch heartbeat_at from a side thread, so a long silent pipeline stage does not look like a crash."""
    interval = settings.JOB_HEARTBEAT_SECONDS if interval is None else interval
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    Item.objects.filter(pk=item_id, status=Item.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:
                    logger.exception("Heartbeat for item %s failed", item_id)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{item_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


class ProgressReporter:
    """The pipeline's progress callback: writes stage and percent into the item, at most every `interval`.

    A stage change is always written so the user sees every stage name; within a stage the writes are
    throttled because the pipeline may report per frame.
    """

    def __init__(self, item_id: Any, interval: float = 0.5) -> None:
        self.item_id = item_id
        self.interval = interval
        self._last_stage: str | None = None
        self._last_write = 0.0
        self._last_percent = -1

    def __call__(self, stage: str, fraction: float) -> None:
        percent = int(round(max(0.0, min(1.0, float(fraction))) * 100))
        now = time.monotonic()
        if stage == self._last_stage and (
            percent == self._last_percent or now - self._last_write < self.interval
        ):
            return
        try:
            Item.objects.filter(pk=self.item_id, status=Item.Status.RUNNING).update(
                stage=str(stage)[:64], progress=percent, heartbeat_at=timezone.now()
            )
        except Exception:
            # Progress is cosmetic: never let a failed write abort the analysis.
            logger.exception("Could not record progress for item %s", self.item_id)
            return
        self._last_stage, self._last_write, self._last_percent = stage, now, percent


def fresh_artifacts_dir(item: Item) -> Path:
    """An empty per-item directory for the pipeline's thumbnails and heatmaps (a retry starts clean)."""
    path = Path(settings.MEDIA_ROOT) / item.artifacts_dir
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- Ending a job --------------------------------------------------------------------------------------


def _artifact(item: Item, artifacts_path: Path, name: Any) -> str:
    """Storage name for a file the pipeline says it wrote; '' if it did not write it.

    Only a bare file name inside the item's own artifacts directory is accepted, so a result can never
    point a face at some other file on disk.
    """
    if not name or not isinstance(name, str) or PurePosixPath(name).name != name or name in {".", ".."}:
        return ""
    if not (artifacts_path / name).is_file():
        return ""
    return f"{item.artifacts_dir}/{name}"


def store_result(item_id: Any, result: AnalysisResult, artifacts_path: Path) -> Item:
    """Save the pipeline's result: verdict, score, model, faces and (inside `result`) the timeline."""
    verdict = result["verdict"]
    if verdict not in Item.Verdict.values:
        raise ValueError(f"pipeline returned an unknown verdict {verdict!r}")
    probability = result["fake_probability"]
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item_id)
        faces = [
            Face(
                item=item,
                track=face["track"],
                box=[float(v) for v in face["box"]][:4],
                frames=list(face["frames"]),
                fake_probability=face["fake_probability"],
                thumbnail=_artifact(item, artifacts_path, face.get("thumbnail")),
                heatmap=_artifact(item, artifacts_path, face.get("heatmap")),
            )
            for face in result["faces"]
        ]
        item.faces.all().delete()
        Face.objects.bulk_create(faces)
        item.result = result
        item.verdict = verdict
        item.fake_probability = probability
        item.uncertain_reasons = list(result["uncertain_reasons"])
        item.model_version = result["model"][:128]
        item.status = Item.Status.DONE
        item.stage = "done"
        item.progress = 100
        item.error = ""
        item.finished_at = timezone.now()
        item.save()
    return item


def fail_where(items: QuerySet[Item], reason: str, now: datetime | None = None) -> int:
    """The one writer of the FAILED transition: end the matching rows' jobs with a reason the owner can
    read; returns how many rows it changed (the callers' conditions decide which may fail)."""
    return items.update(status=Item.Status.FAILED, error=reason, stage="", finished_at=now or timezone.now())


def _fail(item: Item, reason: str) -> None:
    now = timezone.now()
    fail_where(Item.objects.filter(pk=item.pk), reason, now)
    item.status, item.error, item.stage, item.finished_at = Item.Status.FAILED, reason, "", now


def mark_failed(item_id: Any, reason: str) -> None:
    """End the job FAILED with a reason the owner can read. A finished result is never overwritten."""
    fail_where(Item.objects.filter(pk=item_id).exclude(status=Item.Status.DONE), reason)


def mark_retrying(item_id: Any, reason: str) -> None:
    Item.objects.filter(pk=item_id, status=Item.Status.RUNNING).update(
        status=Item.Status.QUEUED,
        stage="waiting to retry",
        progress=0,
        error=reason,
        enqueued_at=timezone.now(),
    )


# --- The sweep ------------------------------------------------------------------------------------------

UNPUBLISHED_GRACE_SECONDS = 10


@dataclass
class SweepReport:
    requeued_stale: list[str] = field(default_factory=list)
    failed_stale: list[str] = field(default_factory=list)
    requeued_waiting: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.requeued_stale)} stale running job(s) re-queued, {len(self.failed_stale)} failed, "
            f"{len(self.requeued_waiting)} long-waiting queued job(s) enqueued again"
        )


def sweep_stale_jobs(now: datetime | None = None) -> SweepReport:
    """Make sure no job stays RUNNING or QUEUED forever.

    RUNNING with a stale heartbeat means its worker died: re-queue it, or fail it once it has used up its
    attempts. QUEUED for longer than JOB_REQUEUE_SECONDS means its message may be gone (Redis restarted
    without persistence, or it was down at upload time): publish it again; a duplicate is harmless because
    `claim` lets only one delivery run the job.
    """
    now = now or timezone.now()
    report = SweepReport()
    stale_before = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    stale_running = Item.objects.filter(status=Item.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True)
    )
    for item in stale_running:
        # Conditional on the heartbeat we read, so a worker that just came back to life keeps its job.
        unchanged = Item.objects.filter(
            pk=item.pk, status=Item.Status.RUNNING, heartbeat_at=item.heartbeat_at
        )
        if item.attempts >= settings.JOB_MAX_ATTEMPTS:
            reason = (
                f"The worker stopped responding {item.attempts} times while analysing this file, "
                "so it was given up."
            )
            if fail_where(unchanged, reason, now):
                report.failed_stale.append(str(item.pk))
                analysis_finished.send(sender=Item, item_id=str(item.pk))
        elif unchanged.update(
            status=Item.Status.QUEUED, stage="re-queued after a worker stopped", progress=0
        ):
            enqueue(item)
            report.requeued_stale.append(str(item.pk))

    waiting_before = now - timedelta(seconds=settings.JOB_REQUEUE_SECONDS)
    # A job that never reached the broker is published at every sweep (the upload's own publish gets a
    # few seconds first); one published long ago may have been lost with Redis and is published again.
    long_waiting = Item.objects.filter(status=Item.Status.QUEUED).filter(
        Q(enqueued_at__lt=waiting_before)
        | Q(enqueued_at__isnull=True, created_at__lt=now - timedelta(seconds=UNPUBLISHED_GRACE_SECONDS))
    )
    for item in long_waiting:
        enqueue(item)
        report.requeued_waiting.append(str(item.pk))
    if report.requeued_stale or report.failed_stale or report.requeued_waiting:
        logger.warning("Job sweep: %s", report)
    return report
