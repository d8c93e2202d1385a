"""Turning accepted uploads into items, and recording review decisions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from .jobs import enqueue_after_commit, unpublished
from .models import Item, Review, original_upload_path
from .staging import StagedUpload


@dataclass
class Submission:
    item: Item
    reused: bool  # the same user had already uploaded this exact file


def submit_uploads(owner, staged_uploads: list[StagedUpload]) -> list[Submission]:
    """Create (or reuse) an item per staged upload and enqueue the new ones. Consumes the staged files."""
    submissions: list[Submission] = []
    for staged in staged_uploads:
        # Same bytes from the same user: show the earlier item (finished or still in progress) instead
        # of analysing again. A failed one is retried with a fresh item, as the failure may be transient.
        existing = _live_item(owner, staged.sha256)
        if existing is None:
            try:
                submissions.append(Submission(_create_item(owner, staged), reused=False))
                continue
            except IntegrityError:
                # A simultaneous upload of the same file won the race (Item's unique constraint).
                existing = _live_item(owner, staged.sha256)
                if existing is None:
                    raise
        staged.discard()
        submissions.append(Submission(existing, reused=True))
    return submissions


def queue_delayed(submissions: list[Submission]) -> bool:
    """Whether a new item's job could not be published (Redis down): the owner should know it waits."""
    new = [s.item.pk for s in submissions if not s.reused]
    return unpublished().filter(pk__in=new).exists()


def _live_item(owner, sha256: str) -> Item | None:
    return Item.objects.filter(owner=owner, sha256=sha256).exclude(status=Item.Status.FAILED).first()


def _create_item(owner, staged: StagedUpload) -> Item:
    item = Item(
        owner=owner,
        original_name=staged.name,
        sha256=staged.sha256,
        kind=staged.kind,
        size=staged.size,
        width=staged.width,
        height=staged.height,
        duration=staged.duration,
    )
    relative_path = original_upload_path(item, staged.name)
    final_path = Path(settings.MEDIA_ROOT) / relative_path
    final_path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.path, final_path)  # same filesystem: a rename, not a copy
    item.original.name = relative_path
    try:
        with transaction.atomic():
            item.save(force_insert=True)
            enqueue_after_commit(item)
    except Exception:
        final_path.unlink(missing_ok=True)
        raise
    return item


def record_review(item: Item, reviewer, decision: str, note: str = "") -> Review:
    if decision not in Review.Decision.values:
        raise ValueError(f"unknown review decision {decision!r}")
    return Review.objects.create(item=item, reviewer=reviewer, decision=decision, note=note.strip())
