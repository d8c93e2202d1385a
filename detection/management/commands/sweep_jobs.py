from django.core.management.base import BaseCommand

from detection.jobs import sweep_stale_jobs


class Command(BaseCommand):
    requires_system_checks = []  # useful even while the model weights are missing
    help = (
        "Re-queue RUNNING jobs whose worker stopped sending heartbeats (or fail them after too many "
        "attempts) and enqueue QUEUED jobs that have waited too long. Celery beat runs this every minute."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(str(sweep_stale_jobs()))
