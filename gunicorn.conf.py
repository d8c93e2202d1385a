"""gunicorn's settings for every production start of the site: Dockerfile, docker-compose.yml, the README's
commands and `python -m benchmarks.load` all run `gunicorn -c gunicorn.conf.py detector_site.wsgi`.

Command-line flags override these (the load benchmark sets --bind and --workers)."""

import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
# WEB_CONCURRENCY is gunicorn's own variable for the number of worker processes.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, so that a status poll is not queued behind uploads: with sync workers each process served one
# request at a time, and during a burst of uploads a 20 ms status read waited ~500 ms for a free process
# (benchmarks.load: status p95 209 ms with 4 sync workers, 81 ms with 4 threads each).
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# Load the application (the upload path's imports, detector_site.wsgi) once in the master; the forked
# workers share it. New code then needs a restart, not `kill -HUP`.
preload_app = True
# An upload of the largest accepted size over a slow link must not be cut off mid-body.
timeout = 300
