"""Celery application: configured from Django settings (the ``CELERY_`` prefixed names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detector_site.settings")

app = Celery("detector_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
