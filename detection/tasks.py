"""Celery tasks. Deliberately thin: the pipeline lives in `ml`, the bookkeeping in `detection.jobs`."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path
from typing import NoReturn

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from . import jobs
from .models import Item
from .signals import analysis_finished, remove_item_files

logger = logging.getLogger(__name__)

# A database that is down, restarting or has dropped this worker's connection: transient, so the job is
# tried again with backoff on a fresh connection rather than left RUNNING or QUEUED with its message gone.
DATABASE_ERRORS = (OperationalError, InterfaceError)
# Database retries back off 1, 2, 4 ... up to this many seconds, and stop after DATABASE_MAX_RETRIES in a
# row (about 10 minutes); the sweep then re-queues the job once the database is back.
DATABASE_RETRY_MAX_SECONDS = 60
DATABASE_MAX_RETRIES = 15
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_MESSAGE = (
    "The analysis could not be saved because the server's disk is full; your file is kept. The operators "
    "have been told; analyse it again later."
)


def max_rechecks() -> int:
    """Enough stale-heartbeat re-checks to outlast the longest job a live worker can be running."""
    return settings.JOB_HARD_TIME_LIMIT // max(1, settings.JOB_STALE_SECONDS) + 2


@shared_task(
    bind=True,
    name=jobs.ANALYSE_TASK,
    # Acknowledge only after the job ends, so a worker that dies mid-job leaves the message to be
    # delivered again (after the broker's visibility timeout, or at once if only the pool child died).
    acks_late=True,
    reject_on_worker_lost=True,
    # Retries are bounded by Item.attempts (crashes and errors together), not by Celery's counter.
    max_retries=None,
    soft_time_limit=settings.JOB_SOFT_TIME_LIMIT,
    time_limit=settings.JOB_HARD_TIME_LIMIT,
)
def analyse_item(
    self, item_id: str, rechecks: int = 0, db_retries: int = 0, interrupted_run: str | None = None
) -> str:
    # interrupted_run: the run (jobs.run_token) of this job that a database error cut short; the retry
    # carries on under its attempt, so outages alone never use up a file's attempts.
    try:
        claim, item = jobs.claim(item_id, resuming=interrupted_run)
        if claim is jobs.Claim.CLAIMED:
            interrupted_run = jobs.run_token(item)
        outcome = _run_job(self, item_id, claim, item, rechecks)
    except DATABASE_ERRORS as exc:
        _retry_after_database_error(self, item_id, exc, rechecks, db_retries, interrupted_run)
    if outcome in ("done", "failed", jobs.Claim.GAVE_UP.value):
        analysis_finished.send(sender=Item, item_id=item_id)
    return outcome


def _run_job(self, item_id: str, claim: jobs.Claim, item: Item | None, rechecks: int) -> str:
    if claim is jobs.Claim.RUNNING_ELSEWHERE and rechecks < max_rechecks():
        # Either a duplicate delivery while the first worker is alive, or a redelivery that arrived before
        # the dead worker's heartbeat went stale. Look again once it would be stale, rather than drop it.
        raise self.retry(countdown=settings.JOB_STALE_SECONDS + 1, kwargs={"rechecks": rechecks + 1})
    if claim is not jobs.Claim.CLAIMED:
        logger.info("Item %s not analysed: %s", item_id, claim.value)
        return claim.value
    assert item is not None

    try:
        from ml.errors import MediaError
        from ml.pipeline import analyse
    except Exception as exc:
        jobs.mark_failed(item.pk, f"The analysis pipeline is not installed correctly: {exc}")
        raise

    artifacts_path = Path(settings.MEDIA_ROOT) / item.artifacts_dir
    try:
        jobs.fresh_artifacts_dir(item)
        with jobs.heartbeat(item.pk):
            result = analyse(
                Path(item.original.path),
                artifacts_dir=artifacts_path,
                progress=jobs.ProgressReporter(item.pk),
            )
            jobs.store_result(item.pk, result, artifacts_path)
    except MediaError as exc:
        # The file itself is the problem: retrying cannot help.
        jobs.mark_failed(item.pk, str(exc))
        return "failed"
    except SoftTimeLimitExceeded:
        jobs.mark_failed(
            item.pk,
            f"The analysis took longer than {settings.JOB_SOFT_TIME_LIMIT // 60} minutes and was stopped.",
        )
        return "failed"
    except DATABASE_ERRORS:
        raise  # analyse_item retries on a fresh connection; nothing can be recorded meanwhile
    except OSError as exc:
        if exc.errno not in DISK_FULL_ERRNOS:
            return _error_on_our_side(self, item, exc)
        # Retrying at once would fill the disk again; the owner can analyse it again once there is room.
        logger.error("Disk full while analysing item %s: %s", item.pk, exc)
        shutil.rmtree(artifacts_path, ignore_errors=True)  # no half-written thumbnails; the original stays
        jobs.mark_failed(item.pk, DISK_FULL_MESSAGE)
        return "failed"
    except Exception as exc:
        return _error_on_our_side(self, item, exc)
    return "done"


def _error_on_our_side(self, item: Item, exc: Exception) -> str:
    """An unexpected error: retried with backoff while attempts are left, then FAILED with a reference."""
    if not Item.objects.filter(pk=item.pk).exists():
        # Deleted by its owner mid-job: drop what the pipeline wrote and stop.
        remove_item_files(item.pk)
        return "missing"
    logger.exception("Analysis of item %s failed (attempt %d)", item.pk, item.attempts)
    # The owner reads this: an internal message (an OpenCV assertion with its version and source path)
    # tells them nothing and tells an attacker about the server, so it stays in the log.
    if item.attempts >= settings.JOB_MAX_ATTEMPTS:
        jobs.mark_failed(
            item.pk,
            f"The analysis failed {item.attempts} times because of an error on our side; it has been "
            f"logged for the operators (reference {item.pk}).",
        )
        return "failed"
    jobs.mark_retrying(item.pk, "An error on our side interrupted the analysis; it will be tried again.")
    raise self.retry(exc=exc, countdown=settings.JOB_RETRY_DELAY_SECONDS * 2 ** (item.attempts - 1)) from exc


def _retry_after_database_error(
    self, item_id: str, exc: Exception, rechecks: int, db_retries: int, interrupted_run: str | None
) -> NoReturn:
    """Drop the broken connection and schedule the job again with backoff (raises Celery's Retry)."""
    close_old_connections()  # a connection the server dropped is closed here; the next query reconnects
    if db_retries >= DATABASE_MAX_RETRIES:
        logger.error("Database still unavailable for item %s; leaving it to the sweep", item_id)
        raise exc
    countdown = min(DATABASE_RETRY_MAX_SECONDS, 2**db_retries)
    logger.warning("Database unavailable during item %s (%s); retrying in %d s", item_id, exc, countdown)
    try:
        # QUEUED again, so the page says why it waits; if the database is still down, the retry finds it
        # RUNNING under the run it names (interrupted_run) and takes it back all the same.
        jobs.mark_retrying(item_id, "The database was briefly unavailable; the analysis will be tried again.")
    except DATABASE_ERRORS:
        close_old_connections()
    raise self.retry(
        exc=exc,
        countdown=countdown,
        kwargs={"rechecks": rechecks, "db_retries": db_retries + 1, "interrupted_run": interrupted_run},
    )


@shared_task(name="detection.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> str:
    return str(jobs.sweep_stale_jobs())
