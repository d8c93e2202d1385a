"""Settings for the test suite.

The queue tests start real Celery worker subprocesses, so everything the worker must share with the
test process is a file or a server: a file-based SQLite test database (or PostgreSQL when
DATABASE_URL says so), a media directory, and Redis on a separate database number.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))

from .settings import *  # noqa: E402,F403
from .settings import DATABASES  # noqa: E402

_scratch = Path(tempfile.gettempdir()) / f"detector-tests-{os.environ.get('DETECTOR_TEST_RUN', os.getpid())}"
_scratch.mkdir(parents=True, exist_ok=True)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(_scratch / "test-db.sqlite3")}

# Never the MEDIA_ROOT of a real install: the suite deletes this directory when it ends.
MEDIA_ROOT = Path(os.environ.get("DETECTOR_TEST_MEDIA_ROOT") or _scratch / "media")

# Hashing speed is irrelevant to what the tests check.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Short job timings so crash recovery happens within a test's patience.
JOB_HEARTBEAT_SECONDS = int(os.environ.get("JOB_HEARTBEAT_SECONDS", "1"))
JOB_STALE_SECONDS = int(os.environ.get("JOB_STALE_SECONDS", "4"))
JOB_RETRY_DELAY_SECONDS = int(os.environ.get("JOB_RETRY_DELAY_SECONDS", "0"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("BROKER_VISIBILITY_TIMEOUT", "8")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
# The fault tests need Redis to hand a dead worker's job out again within seconds, far below the longest a
# job may run: what detection.E012 forbids in production.
SILENCED_SYSTEM_CHECKS = ["detection.E012"]

# The webhook tests post to a tiny HTTP server on 127.0.0.1, and retry without waiting.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
WEBHOOK_RETRY_DELAY_SECONDS = 0
