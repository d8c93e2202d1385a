"""The production web process imports the upload path when it starts, not in its first upload (issue 12)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys
import detector_site.wsgi
from django.db import connections
descriptors = []
for fd in os.listdir("/proc/self/fd"):
    try:
        descriptors.append(os.readlink(f"/proc/self/fd/{fd}"))
    except FileNotFoundError:  # the listing's own descriptor
        pass
print(json.dumps({
    "modules": sorted(m for m in ("detection.views", "detection.tasks", "kombu.transport.redis", "ml.media",
                                  "cv2", "torch") if m in sys.modules),
    "open_connections": [c.alias for c in connections.all() if c.connection is not None],
    "sockets": [d for d in descriptors if d.startswith("socket:")],
}))
"""


def test_loading_the_wsgi_application_imports_the_views_and_the_media_probe():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "detector_site.settings_test",
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    # Before: none of these until the first request, so each gunicorn worker's first upload paid for them.
    # detection.tasks is not among them: the web publishes the analysis task by name (jobs.ANALYSE_TASK).
    expected = ["cv2", "detection.views", "kombu.transport.redis", "ml.media"]
    assert loaded["modules"] == expected, loaded
    # torch stays out of the web process (only the worker analyses), and nothing is connected before
    # gunicorn --preload forks: the workers would share one database or Redis socket.
    assert loaded["open_connections"] == [] and loaded["sockets"] == [], loaded


def gunicorn_commands() -> dict[str, str]:
    texts = {
        name: (REPO_ROOT / name).read_text() for name in ("Dockerfile", "docker-compose.yml", "README.md")
    }
    texts["Dockerfile"] = " ".join(json.loads(re.search(r"^CMD (\[.*\])$", texts["Dockerfile"], re.M)[1]))
    texts["benchmarks/load.py"] = (REPO_ROOT / "benchmarks" / "load.py").read_text()
    return {
        f"{name}: {line.strip()}": line
        for name, text in texts.items()
        for line in text.splitlines()
        if re.search(r"\bgunicorn\b.*\bdetector_site\.wsgi\b", line)
    }


def gunicorn_settings() -> dict[str, object]:
    settings: dict[str, object] = {}
    exec((REPO_ROOT / "gunicorn.conf.py").read_text(), settings)
    return settings


def test_every_production_gunicorn_command_reads_the_one_config_file():
    commands = gunicorn_commands()
    assert len(commands) >= 4, commands
    assert all(re.search(r"-c\W+gunicorn\.conf\.py", line) for line in commands.values()), list(commands)


def test_the_gunicorn_config_preloads_the_application_and_serves_polls_beside_uploads():
    settings = gunicorn_settings()
    assert settings["preload_app"] is True
    # Sync workers queued a status poll behind uploads (p95 209 ms in benchmarks.load; 81 ms threaded).
    assert settings["worker_class"] == "gthread" and settings["threads"] >= 2
    assert settings["timeout"] >= 300
