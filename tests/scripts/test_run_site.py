"""The local supervisor: dead children come back with backoff, the worker gets a warm shutdown, one beat."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_site():
    spec = importlib.util.spec_from_file_location("run_site", REPO_ROOT / "scripts" / "run_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_site"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)"]


def poll_until(supervisor, condition, timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not met"
        supervisor.check_children()
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_killed_child_is_restarted_with_backoff_and_the_others_keep_running(run_site):
    supervisor = run_site.Supervisor(restart_base=0.2, restart_max=5, stable_seconds=30)
    try:
        web = supervisor.start("web", sleeper())
        worker = supervisor.start("worker", sleeper())
        first_pid, web_pid = worker.popen.pid, web.popen.pid
        os.kill(first_pid, signal.SIGKILL)
        took = poll_until(supervisor, lambda: worker.popen.pid != first_pid, timeout=5)
        print(f"worker restarted {took:.2f} s after kill -9")
        assert worker.popen.poll() is None and web.popen.pid == web_pid and web.popen.poll() is None
        # Dying again soon after a restart doubles the wait: a crash loop does not spin.
        second_pid = worker.popen.pid
        os.kill(second_pid, signal.SIGKILL)
        took_again = poll_until(supervisor, lambda: worker.popen.pid != second_pid, timeout=5)
        assert took_again > 0.35 and took_again > took
    finally:
        supervisor.stop_all()
    assert all(child.popen.poll() is not None for child in supervisor.children)


WARM_WORKER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    log = sys.argv[1]
    # a "pool child" in the same process group, as Celery's prefork pool
    child = subprocess.Popen([sys.executable, "-c", '''
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: (open(sys.argv[1], "a").write("job killed\\\\n"), sys.exit(1)))
    time.sleep(60)
    ''', log])
    def warm(*args):
        time.sleep(1.0)  # finishing the running job
        open(log, "a").write("job finished\\n")
        child.kill(); child.wait()
        sys.exit(0)
    signal.signal(signal.SIGTERM, warm)
    open(log, "a").write("ready\\n")
    time.sleep(60)
    """
)


def test_stopping_the_site_gives_the_worker_a_warm_shutdown(run_site, tmp_path):
    log = tmp_path / "worker.log"
    supervisor = run_site.Supervisor()
    worker = supervisor.start(
        "worker", [sys.executable, "-c", WARM_WORKER, str(log)], signal_group=False, stop_seconds=10
    )
    deadline = time.monotonic() + 10
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # the pool child installs its handler
    supervisor.stop_all()
    assert worker.popen.returncode == 0
    # Before: SIGTERM went to the whole group and the pool child died mid-job.
    assert log.read_text().splitlines() == ["ready", "job finished"]


def test_beat_runs_as_its_own_child_with_a_pidfile(run_site, tmp_path):
    assert "-B" not in run_site.worker_command() and "beat" not in run_site.worker_command()
    beat = run_site.beat_command(tmp_path)
    assert beat[beat.index("-A") + 2] == "beat" and str(tmp_path / "celerybeat.pid") in beat
