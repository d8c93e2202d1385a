"""Deleting an item deletes its files (original upload, thumbnails, heatmaps) too."""

import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import Signal, receiver

from .models import Item, item_dir

# Sent (with item_id) once a job has ended, DONE or FAILED, from the worker that ended it; detection.api
# listens to deliver webhooks, so the job code does not need to know about the API.
analysis_finished = Signal()


def remove_item_files(item_id) -> None:
    shutil.rmtree(Path(settings.MEDIA_ROOT) / item_dir(item_id), ignore_errors=True)


@receiver(post_delete, sender=Item)
def delete_item_files(sender, instance: Item, **kwargs) -> None:
    # After commit: a rolled-back delete must not have removed the files of an item that still exists.
    item_id = instance.pk
    transaction.on_commit(lambda: remove_item_files(item_id))
