"""Measure upload-to-result seconds through the real site: upload view, storage, Redis, a Celery worker."""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.urls import reverse

from detection.models import Item
from detection.staging import human_size

POLL_SECONDS = 0.05


@dataclass
class Run:
    number: int
    kind: str
    size: int
    status: str
    upload_s: float
    total_s: float
    verdict: str
    fake_probability: float | None
    error: str = ""

    @property
    def queue_to_done_s(self) -> float:
        return self.total_s - self.upload_s


def build_inputs(directory: Path) -> list[Path]:
    """A JPEG of scikit-image's astronaut (512x512, as shipped) and a 10 s 720p video of her face panning
    and zooming, written with OpenCV by ml.synthetic_inputs (the generators the benchmarks use too)."""
    from ml.synthetic_inputs import SPECS, InputSpec, build_input

    photo = build_input(InputSpec("astronaut", 512, 512), directory)
    video = build_input(SPECS["720p-10s"], directory)
    return [photo, video]


def unique_copy(source: Path, target: Path, tag: str) -> Path:
    """`source` with `tag` embedded where decoders ignore it, so each upload has its own SHA-256 (the site
    would otherwise show the earlier item for the same bytes instead of analysing them again)."""
    data = source.read_bytes()
    payload = f"roundtrip {tag}".encode()
    if data[:2] == b"\xff\xd8":  # JPEG: a comment segment right after the start-of-image marker
        data = data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]
    elif data[4:8] == b"ftyp":  # MP4/MOV: a trailing top-level 'free' box
        data += (len(payload) + 8).to_bytes(4, "big") + b"free" + payload
    else:
        raise ValueError(f"cannot tag {source.name}: neither JPEG nor MP4")
    target.write_bytes(data)
    return target


def required_queues() -> set[str]:
    return {Item(kind=kind).queue_name for kind in Item.Kind.values}


def wait_for_workers(timeout: float) -> dict[str, list[str]]:
    """Queue name -> the workers consuming it, once every queue the site publishes to has one.

    Raises CommandError if the broker cannot be reached or no worker covers every queue within `timeout`.
    """
    from kombu.utils.url import maybe_sanitize_url

    from detector_site.celery import app

    broker = maybe_sanitize_url(settings.CELERY_BROKER_URL)
    wanted = required_queues()
    deadline = time.monotonic() + timeout
    consumers: dict[str, list[str]] = {}
    while True:
        try:
            replies = app.control.inspect(timeout=min(1.0, max(0.2, timeout))).active_queues() or {}
        except Exception as exc:
            raise CommandError(f"Cannot reach the Celery broker at {broker}: {exc}") from exc
        consumers = {}
        for worker, queues in replies.items():
            for queue in queues or []:
                consumers.setdefault(queue.get("name", ""), []).append(worker)
        if wanted <= consumers.keys():
            return consumers
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    missing = ", ".join(sorted(wanted - consumers.keys()))
    answered = f"workers that answered: {', '.join(sorted({w for ws in consumers.values() for w in ws}))}"
    raise CommandError(
        f"No Celery worker consuming the queue(s) {missing} answered within {timeout:g} s on {broker} "
        f"({answered if consumers else 'no worker answered at all'}). roundtrip measures the real path and "
        "needs a running worker that shares this database and MEDIA_ROOT, e.g. `bash scripts/start`, or "
        "`celery -A detector_site worker -Q images,video --concurrency=1`."
    )


def median_line(kind: str, runs: list[Run]) -> str:
    done = [r for r in runs if r.status == Item.Status.DONE]
    if not done:
        return f"median  {kind:<6} no DONE runs"
    probabilities = [r.fake_probability for r in done if r.fake_probability is not None]
    return (
        f"median  {kind:<6} {human_size(int(statistics.median(r.size for r in done))):>9}  "
        f"{f'{len(done)} DONE':<7} "
        f"{statistics.median(r.upload_s for r in done):>8.2f} "
        f"{statistics.median(r.queue_to_done_s for r in done):>15.2f} "
        f"{statistics.median(r.total_s for r in done):>8.2f}  "
        f"{'':<13} {statistics.median(probabilities) if probabilities else float('nan'):>6.3f}"
    )


HEADER = (
    f"{'run':<7} {'kind':<6} {'size':>9}  {'status':<7} {'upload_s':>8} {'queue_to_done_s':>15} "
    f"{'total_s':>8}  {'verdict':<13} {'fake_p':>6}"
)


def run_line(run: Run) -> str:
    probability = "-" if run.fake_probability is None else f"{run.fake_probability:.3f}"
    line = (
        f"{run.number:<7} {run.kind:<6} {human_size(run.size):>9}  {run.status.upper():<7} "
        f"{run.upload_s:>8.2f} {run.queue_to_done_s:>15.2f} {run.total_s:>8.2f}  "
        f"{run.verdict or '-':<13} {probability:>6}"
    )
    return f"{line}  error: {run.error}" if run.error else line


class Command(BaseCommand):
    help = (
        "Measure upload-to-result seconds through the real site path: uploads a face photo and a 10 s 720p "
        "video (generated on the fly) through the upload view as a throwaway user, and waits for a running "
        "Celery worker to finish each. upload_s is the request, queue_to_done_s from its end until this "
        f"command sees the item DONE/FAILED (polled every {POLL_SECONDS} s), total_s both. Needs a worker "
        "consuming the images and video queues; items it created are deleted at the end unless --keep."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repeat", type=int, default=3, help="Uploads of each input (default 3).")
        parser.add_argument("--keep", action="store_true", help="Keep the items (and the user) it created.")
        parser.add_argument(
            "--user", default="roundtrip", help="Throwaway user to upload as (default roundtrip)."
        )
        parser.add_argument(
            "--worker-timeout",
            type=float,
            default=10.0,
            help="Seconds to wait for a worker to answer before giving up (default 10).",
        )
        parser.add_argument(
            "--job-timeout",
            type=float,
            default=600.0,
            help="Seconds to wait for one item to finish (default 600).",
        )

    def handle(
        self, *args, repeat: int, keep: bool, user: str, worker_timeout: float, job_timeout: float, **options
    ):
        if repeat < 1:
            raise CommandError("--repeat must be at least 1.")
        consumers = wait_for_workers(worker_timeout)
        self.stdout.write(
            "Workers: "
            + "; ".join(f"{queue}: {', '.join(sorted(ws))}" for queue, ws in sorted(consumers.items()))
        )
        owner, created_user = self.throwaway_user(user)
        client = Client(HTTP_HOST=self.host())
        client.force_login(owner)
        created: list[Item] = []
        runs: list[Run] = []
        try:
            with tempfile.TemporaryDirectory(prefix="roundtrip-") as scratch:
                self.stdout.write("Writing the inputs ...")
                inputs = build_inputs(Path(scratch))
                self.stdout.write(HEADER)
                for number, source in itertools.product(range(1, repeat + 1), inputs):
                    path = Path(scratch) / f"upload-{number}{source.suffix}"
                    run = self.measure(
                        client, unique_copy(source, path, uuid.uuid4().hex), number, job_timeout, created
                    )
                    runs.append(run)
                    self.stdout.write(run_line(run))
                    path.unlink()
                    if run.status == "timeout":
                        break  # the worker is still busy with it: later timings would mean nothing
            for kind in Item.Kind.values:
                self.stdout.write(median_line(kind, [r for r in runs if r.kind == kind]))
        finally:
            client.logout()
            if not keep:
                for item in created:
                    item.delete()  # its files go with it (detection.signals)
                if created_user:
                    owner.delete()
        not_done = [r for r in runs if r.status != Item.Status.DONE]
        if not_done:
            raise CommandError(f"{len(not_done)} of {len(runs)} uploads did not end DONE.")

    def throwaway_user(self, username: str):
        users = get_user_model()
        user, created = users.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
        elif user.has_usable_password() or user.is_staff:
            raise CommandError(
                f"User {username!r} exists and looks like a real account (it has a password or is staff); "
                "pass --user with another name."
            )
        return user, created

    @staticmethod
    def host() -> str:
        """A host name the site answers to, so the request passes ALLOWED_HOSTS as a real one would."""
        for host in settings.ALLOWED_HOSTS:
            if host and host != "*":
                return host.lstrip(".")
        return "localhost"

    def measure(
        self, client: Client, path: Path, number: int, job_timeout: float, created: list[Item]
    ) -> Run:
        with path.open("rb") as upload:
            started = time.perf_counter()
            response = client.post(
                reverse("upload"),
                {"files": upload},
                HTTP_ACCEPT="application/json",
                secure=settings.SECURE_SSL_REDIRECT,
            )
            upload_s = time.perf_counter() - started
        body = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code != 200 or not body.get("ok") or len(body.get("items", [])) != 1:
            raise CommandError(
                f"The upload of {path.name} was refused ({response.status_code}): "
                f"{body.get('errors') or body.get('rejections') or response.content[:500]!r}"
            )
        item = Item.objects.get(pk=body["items"][0]["id"])
        if body["items"][0]["reused"]:
            raise CommandError(f"The site reused item {item.pk} instead of analysing {path.name} again.")
        created.append(item)
        deadline = started + job_timeout
        status = item.status
        while status not in (Item.Status.DONE, Item.Status.FAILED) and time.perf_counter() < deadline:
            time.sleep(POLL_SECONDS)
            status = Item.objects.filter(pk=item.pk).values_list("status", flat=True).first()
            if status is None:
                raise CommandError(f"Item {item.pk} was deleted while it was being measured.")
        total_s = time.perf_counter() - started
        item.refresh_from_db()
        error = item.error if item.status == Item.Status.FAILED else ""
        if not item.is_finished:
            error = (
                f"not finished after {job_timeout:g} s (still {item.status}, stage {item.stage!r}); does the "
                "worker share this database and MEDIA_ROOT?"
            )
        return Run(
            number=number,
            kind=item.kind,
            size=item.size,
            status=item.status if item.is_finished else "timeout",
            upload_s=upload_s,
            total_s=total_s,
            verdict=item.get_verdict_display() if item.verdict else "",
            fake_probability=item.fake_probability,
            error=error,
        )
