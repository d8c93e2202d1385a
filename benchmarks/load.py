"""Load: 200 photo uploads from 20 concurrent API clients against the site started the production way.

    python -m benchmarks.load [--uploads 200] [--clients 20] [--pollers 4] [--workers 2] [--web-workers 4]

Loopback only, bounded in count and time. It starts gunicorn (--web-workers processes), --workers Celery
worker processes (queues images and video, one job at a time each, as scripts/run_site.py starts them), on
the local Redis (127.0.0.1:6379, database 8, keys under a prefix of their own) and a throwaway PostgreSQL
database on 127.0.0.1:5432 (trust auth) that it migrates and drops at the end, with MEDIA_ROOT in a
temporary folder. The analysis uses the site's default models (ml/weights/defaults.json: the CLIP probe
decides photos); `python -m ml prepare` builds its weights first, as scripts/start does.

Each client thread is its own user with an API token and sends photos of a face (scikit-image's astronaut,
256 px, each with a different small perturbation so no two files share bytes) to POST /api/v1/analyses/,
while --pollers threads read the status of accepted analyses (GET /api/v1/analyses/<id>/). After the
uploads it waits for the queue to drain and checks the database: one item per accepted upload, none
duplicated, none lost (answered 201 but without an item, or never finished). The workers run niced below
the web server (--worker-nice), as an operator would on one machine, so status reads stay fast.
Last line: uploads=... items=... done=... failed=... lost=... duplicated=... upload_p95_ms=...
status_p95_ms=... drain_seconds=...
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
POSTGRES = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/8"
API = "/api/v1/analyses/"
MAX_UPLOADS, MAX_CLIENTS = 2000, 64
FINISHED = ("done", "failed")


# --- Accounting (pure; tests/benchmarks/test_load.py) ---------------------------------------------------


@dataclass(frozen=True)
class UploadRecord:
    """One upload as the client saw it: HTTP status (0: no answer), the analysis id it got, latency."""

    sha256: str
    status: int
    item_id: str = ""
    ms: float = 0.0

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class ItemRow:
    """One item of the benchmark's users, as the database holds it after the drain."""

    id: str
    sha256: str
    status: str


@dataclass
class Summary:
    uploads: int
    items: int
    done: int
    failed: int
    lost: int
    duplicated: int
    upload_p95_ms: float
    status_p95_ms: float
    drain_seconds: float
    server_errors: int = 0
    refused: int = 0  # uploads answered with a 4xx or not at all


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least the first
    return float(ordered[int(rank) - 1])


def account(
    records: Sequence[UploadRecord],
    items: Sequence[ItemRow],
    status_ms: Sequence[float],
    drain_seconds: float,
    status_codes: Sequence[int] = (),
) -> Summary:
    """Lost: an accepted upload whose analysis is not in the database, or never finished. Duplicated:
    items beyond the first for the same bytes."""
    by_id = {item.id: item for item in items}
    per_file = Counter(item.sha256 for item in items)
    lost = sum(
        1
        for record in records
        if record.accepted
        and (
            record.item_id not in by_id
            or by_id[record.item_id].sha256 != record.sha256
            or by_id[record.item_id].status not in FINISHED
        )
    )
    codes = [record.status for record in records] + list(status_codes)
    return Summary(
        uploads=len(records),
        items=len(items),
        done=sum(item.status == "done" for item in items),
        failed=sum(item.status == "failed" for item in items),
        lost=lost,
        duplicated=sum(count - 1 for count in per_file.values()),
        upload_p95_ms=percentile([record.ms for record in records], 95),
        status_p95_ms=percentile(status_ms, 95),
        drain_seconds=drain_seconds,
        server_errors=sum(code >= 500 for code in codes),
        refused=sum(not record.accepted for record in records),
    )


def summary_line(summary: Summary) -> str:
    return (
        f"uploads={summary.uploads} items={summary.items} done={summary.done} failed={summary.failed} "
        f"lost={summary.lost} duplicated={summary.duplicated} upload_p95_ms={summary.upload_p95_ms:.0f} "
        f"status_p95_ms={summary.status_p95_ms:.0f} drain_seconds={summary.drain_seconds:.1f}"
    )


# --- Inputs -----------------------------------------------------------------------------------------------


def face_photos(count: int, side: int = 256, seed: int = 0) -> list[bytes]:
    """`count` JPEGs of the astronaut's face, each with its own faint noise: distinct bytes, same face."""
    import numpy as np
    from PIL import Image
    from skimage.data import astronaut

    base = np.asarray(Image.fromarray(astronaut()).resize((side, side)), np.int16)
    rng = np.random.default_rng(seed)
    photos, seen = [], set()
    while len(photos) < count:
        noisy = np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, format="JPEG", quality=90)
        if buffer.getvalue() not in seen:
            seen.add(buffer.getvalue())
            photos.append(buffer.getvalue())
    return photos


# --- HTTP on loopback ---------------------------------------------------------------------------------------


def request(
    port: int, method: str, path: str, token: str, body: bytes = b"", content_type: str = ""
) -> tuple[int, bytes, float]:
    """(status, body, milliseconds); status 0 when the server did not answer."""
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        status, data = response.status, response.read()
    except OSError:
        status, data = 0, b""
    finally:
        connection.close()
    return status, data, (time.perf_counter() - started) * 1000


def upload_photo(port: int, token: str, name: str, content: bytes) -> UploadRecord:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    status, data, ms = request(port, "POST", API, token, body, f"multipart/form-data; boundary={boundary}")
    item_id = ""
    if 200 <= status < 300:
        submissions = json.loads(data).get("submissions") or []
        item_id = submissions[0]["analysis"]["id"] if submissions else ""
    return UploadRecord(hashlib.sha256(content).hexdigest(), status, item_id, ms)


@dataclass
class LoadRun:
    """What the client threads share: the work left, what they saw, and the ids they may poll."""

    port: int
    tokens: list[str]
    photos: list[bytes]
    records: list[UploadRecord] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    status_codes: list[int] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (item id, owner's token)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_polling: threading.Event = field(default_factory=threading.Event)
    next_index: int = 0

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= len(self.photos):
                return None
            self.next_index += 1
            return self.next_index - 1

    def uploader(self, client: int) -> None:
        token = self.tokens[client]
        while (index := self.take()) is not None:
            record = upload_photo(self.port, token, f"load-{index:04d}.jpg", self.photos[index])
            with self.lock:
                self.records.append(record)
                if record.item_id:
                    self.accepted.append((record.item_id, token))

    def poller(self, interval: float) -> None:
        rng = random.Random()
        while not self.stop_polling.wait(interval):
            with self.lock:
                target = rng.choice(self.accepted) if self.accepted else None
            if target is None:
                continue
            status, _, ms = request(self.port, "GET", f"{API}{target[0]}/", target[1])
            with self.lock:
                self.status_ms.append(ms)
                self.status_codes.append(status)


# --- The site, started the production way -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


class Site:
    """Throwaway database, media folder and Redis key prefix; gunicorn and Celery workers. `close` undoes
    all of it, whatever state a failure left it in."""

    def __init__(self, web_workers: int, workers: int, worker_nice: int) -> None:
        self.web_workers, self.workers, self.worker_nice = web_workers, workers, worker_nice
        self.tag = f"load_{os.getpid()}_{secrets.token_hex(3)}"
        self.scratch = Path(tempfile.mkdtemp(prefix="detector-load-"))
        self.database = f"detector_{self.tag}"
        self.port = free_port()
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.database_created = False
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "detector_site.settings",
            "DATABASE_URL": f"{POSTGRES}/{self.database}",
            "REDIS_URL": REDIS_URL,
            "BROKER_KEY_PREFIX": f"{self.tag}:",
            "MEDIA_ROOT": str(self.scratch / "media"),
            "VAR_DIR": str(self.scratch / "var"),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # workers share the cores: one thread per core each would make them wait on each other
            # (drain 66 s with two threads each, 41 s with one, 2 workers on 2 cores)
            "DETECTOR_THREADS": os.environ.get("DETECTOR_THREADS")
            or str(max(1, (os.cpu_count() or 1) // workers)),
        }

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')
        self.database_created = True
        manage = [PYTHON, "manage.py", "migrate", "--noinput", "--skip-checks"]
        subprocess.run(manage, cwd=REPO_ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL)

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.scratch / f"{name}.log").open("wb")
        popen = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((name, popen))
        return popen

    def log(self, name: str) -> str:
        return (self.scratch / f"{name}.log").read_text(errors="replace")

    def start(self, timeout: float = 180) -> None:
        self.spawn(
            "web",
            [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "detector_site.wsgi"]
            + ["--bind", f"{HOST}:{self.port}", "--workers", str(self.web_workers), "--log-level", "warning"],
        )
        for number in range(self.workers):
            worker = [PYTHON, "-m", "celery", "-A", "detector_site", "worker", "-Q", "images,video"]
            worker += [
                "-n",
                f"{self.tag}-{number}@%h",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
            ]
            self.spawn(f"worker-{number}", ["nice", "-n", str(self.worker_nice), *worker])
        deadline = time.monotonic() + timeout
        while not (
            listening(self.port) and all("ready." in self.log(f"worker-{n}") for n in range(self.workers))
        ):
            for name, popen in self.processes:
                if popen.poll() is not None:
                    raise RuntimeError(f"{name} exited with {popen.returncode}:\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the site did not start within {timeout:.0f} s")
            time.sleep(0.5)

    def close(self) -> None:
        for _, popen in self.processes:
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
        for _, popen in self.processes:
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        self._forget_database()
        self._forget_redis_keys()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _forget_database(self) -> None:
        if not self.database_created:
            return
        from django.db import connections

        connections.close_all()
        import psycopg

        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _forget_redis_keys(self) -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{self.tag}:*", count=500))
        if keys:
            client.delete(*keys)


# --- The run ---------------------------------------------------------------------------------------------


def setup_django(site: Site) -> None:
    """This process reads the same database as the site (users and tokens in, results out)."""
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "MEDIA_ROOT",
        "VAR_DIR",
        "SECRET_KEY",
        "LOG_LEVEL",
    ):
        os.environ[name] = site.env[name]
    import django

    django.setup()


def make_tokens(count: int, prefix: str) -> list[str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    users = [get_user_model().objects.create_user(f"{prefix}{n}", password=None) for n in range(count)]
    return [Token.objects.create(user=user).key for user in users]


def item_rows(prefix: str) -> list[ItemRow]:
    from detection.models import Item

    rows = Item.objects.filter(owner__username__startswith=prefix).values_list("pk", "sha256", "status")
    return [ItemRow(str(pk), sha256, status) for pk, sha256, status in rows]


def wait_until_finished(prefix: str, expected: int, timeout: float) -> bool:
    """Wait until the database holds `expected` items of these users, all DONE or FAILED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = item_rows(prefix)
        if len(rows) >= expected and all(row.status in FINISHED for row in rows):
            return True
        time.sleep(0.5)
    return False


def last_finished_at(prefix: str) -> float | None:
    from django.db.models import Max

    from detection.models import Item

    latest = Item.objects.filter(owner__username__startswith=prefix).aggregate(at=Max("finished_at"))["at"]
    return latest.timestamp() if latest else None


def models_used(prefix: str) -> str:
    """Which model decided the finished items (their model_version), e.g. 'clip-probe@1 x200'."""
    from detection.models import Item

    done = Item.objects.filter(owner__username__startswith=prefix, status="done")
    counts = Counter(done.values_list("model_version", flat=True))
    return ", ".join(f"{model} x{count}" for model, count in counts.most_common()) or "none"


def warm_up(site: Site, timeout: float) -> None:
    """Photos sent side by side first, so every Celery worker has its models loaded and every gunicorn
    worker its database and Redis connections (a long-running site has): the measured run is steady
    state. The upload path's imports no longer need it: gunicorn --preload loads them in the master."""
    token = make_tokens(1, "warmup")[0]
    photos = face_photos(2 * max(site.workers, site.web_workers), seed=1)

    def send(index: int) -> None:
        record = upload_photo(site.port, token, f"warm-{index}.jpg", photos[index])
        if not record.accepted:
            print(f"warm-up upload refused with HTTP {record.status}", flush=True)

    senders = [threading.Thread(target=send, args=(index,)) for index in range(len(photos))]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    if not wait_until_finished("warmup", len(photos), timeout):
        raise RuntimeError(f"warm-up jobs did not finish in {timeout:.0f} s:\n{site.log('worker-0')[-3000:]}")


def run_load(site: Site, args: argparse.Namespace) -> Summary:
    prefix = "loadclient"
    run = LoadRun(site.port, make_tokens(args.clients, prefix), face_photos(args.uploads))
    threads = [threading.Thread(target=run.uploader, args=(n,)) for n in range(args.clients)]
    pollers = [threading.Thread(target=run.poller, args=(args.poll_interval,)) for _ in range(args.pollers)]
    started = time.time()
    for thread in threads + pollers:
        thread.start()
    for thread in threads:
        thread.join()
    uploaded = time.time() - started
    accepted = sum(record.accepted for record in run.records)
    print(
        f"uploads sent in {uploaded:.1f} s ({accepted} accepted); waiting for the queue to drain", flush=True
    )
    drained = wait_until_finished(prefix, accepted, args.drain_timeout)
    run.stop_polling.set()
    for thread in pollers:
        thread.join()
    finished_at = last_finished_at(prefix)
    drain = (finished_at - started) if drained and finished_at else float(args.drain_timeout)
    if not drained:
        print(f"the queue did not drain within {args.drain_timeout:.0f} s", flush=True)
    print(f"decided by: {models_used(prefix)}", flush=True)
    return account(run.records, item_rows(prefix), run.status_ms, drain, run.status_codes)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=200, help=f"photos to upload (at most {MAX_UPLOADS})")
    parser.add_argument(
        "--clients", type=int, default=20, help=f"concurrent uploaders (at most {MAX_CLIENTS})"
    )
    parser.add_argument("--pollers", type=int, default=4, help="threads reading analyses' status meanwhile")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds between one poller's reads")
    parser.add_argument(
        "--workers", type=int, default=2, help="Celery worker processes (1 job at a time each)"
    )
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--worker-nice", type=int, default=10, help="nice increment of the Celery workers")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for the queue")
    args = parser.parse_args(argv)
    if not (1 <= args.uploads <= MAX_UPLOADS and 1 <= args.clients <= MAX_CLIENTS):
        parser.error(f"--uploads must be 1..{MAX_UPLOADS} and --clients 1..{MAX_CLIENTS}")
    if not (1 <= args.workers <= 8 and 1 <= args.web_workers <= 16 and 0 <= args.pollers <= 16):
        parser.error("--workers must be 1..8, --web-workers 1..16, --pollers 0..16")
    args.drain_timeout = min(max(args.drain_timeout, 1.0), 3600.0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    subprocess.run([PYTHON, "-m", "ml", "prepare"], cwd=REPO_ROOT, check=True)
    from ml.registry import default_ref

    print(f"models: photos decided by {default_ref('clip')} (site default; CNN {default_ref('image')})")

    def on_term(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    site = Site(args.web_workers, args.workers, args.worker_nice)
    try:
        site.create_database()
        setup_django(site)
        site.start()
        print(
            f"site on http://{HOST}:{site.port}/ ({args.web_workers} gunicorn, {args.workers} Celery workers)"
        )
        warm_up(site, timeout=300)
        summary = run_load(site, args)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        site.close()
    print(f"http 5xx={summary.server_errors} refused_uploads={summary.refused}")
    print(summary_line(summary), flush=True)
    return 0 if summary.lost == 0 and summary.duplicated == 0 and summary.server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
