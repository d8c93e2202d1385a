"""`manage.py analyse PATH... --user NAME [--wait]`: batch uploads through the site's own upload path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.utils.datastructures import MultiValueDict

from detection.forms import UploadForm
from detection.models import Item
from detection.services import submit_uploads

BAR_WIDTH = 30


def media_paths(paths: list[str]) -> Iterator[Path]:
    """The files named, and every non-hidden file under the folders named, in a stable order."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in relative.parts):
                    yield child
        elif path.is_file():
            yield path
        else:
            raise CommandError(f"{name}: no such file or folder")


def submit_batch(owner, paths: list[Path]) -> tuple[list[Item], list[str]]:
    """Validate and submit up to MAX_FILES_PER_UPLOAD files, exactly as the upload page does."""
    with ExitStack() as stack:
        uploads = [
            UploadedFile(stack.enter_context(path.open("rb")), name=path.name, size=path.stat().st_size)
            for path in paths
        ]
        form = UploadForm(data={}, files=MultiValueDict({"files": uploads}))
        if not form.is_valid():
            return [], form.rejections or [str(error) for error in form.errors.get("files", [])]
        try:
            submissions = submit_uploads(owner, form.staged)
        finally:
            form.discard_staged()
    return [submission.item for submission in submissions], form.rejections


class Command(BaseCommand):
    help = (
        "Analyse files or folders for a user, through the same validation and queue as the upload page "
        "(ZIP archives are expanded). Prints a summary table; --wait shows progress until every job ends."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Files or folders to analyse.")
        parser.add_argument("--user", required=True, help="Username that will own the analyses.")
        parser.add_argument("--wait", action="store_true", help="Wait, with a progress bar, for the results.")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds --wait waits at most.")

    def handle(self, *args, paths: list[str], user: str, wait: bool, timeout: float, **options) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user called {user!r}.")
        files = list(media_paths(paths))
        if not files:
            raise CommandError("No files found.")
        items: list[Item] = []
        batch = settings.MAX_FILES_PER_UPLOAD
        for start in range(0, len(files), batch):
            accepted, rejections = submit_batch(owner, files[start : start + batch])
            items.extend(accepted)
            for rejection in rejections:
                self.stderr.write(f"refused: {rejection}")
        items = list({item.pk: item for item in items}.values())  # the same file twice is one item
        if not items:
            raise CommandError("No file was accepted.")
        if wait:
            self.wait_for(items, timeout)
        self.print_table(items)
        if any(item.status == Item.Status.FAILED for item in items):
            raise CommandError("Some analyses failed (see the table).")

    def wait_for(self, items: list[Item], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for item in items:
                item.refresh_from_db()
            finished = sum(item.is_finished for item in items)
            percent = sum(100 if item.is_finished else item.progress for item in items) / len(items)
            bar = "#" * int(BAR_WIDTH * percent / 100)
            self.stderr.write(
                f"\r[{bar.ljust(BAR_WIDTH, '.')}] {percent:5.1f}%  {finished}/{len(items)} done", ending=""
            )
            if finished == len(items):
                self.stderr.write("")
                return
            if time.monotonic() > deadline:
                self.stderr.write("")
                raise CommandError(
                    f"Timed out after {timeout:.0f} s; {finished}/{len(items)} analyses ended."
                )
            time.sleep(1)

    def print_table(self, items: list[Item]) -> None:
        rows = [("NAME", "STATUS", "VERDICT", "FAKE %", "MODEL", "ID")]
        for item in items:
            rows.append(
                (
                    item.original_name,
                    item.status,
                    item.get_verdict_display() if item.verdict else "-",
                    "-" if item.fake_percent is None else f"{item.fake_percent:.1f}",
                    item.model_version or "-",
                    str(item.pk),
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
