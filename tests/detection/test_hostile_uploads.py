"""The hostile input corpus through the real upload view, and the accepted ones through a real worker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detection import services
from detection.models import Item

from . import hostile_corpus
from .hostile_corpus import ACCEPT

# Words that mean an internal message reached the user.
INTERNAL = re.compile(r"Traceback|cv2|OpenCV|site-packages|/work/|/tmp/|Error:|error: \(|Assertion", re.I)
STORED_ORIGINAL = re.compile(r"^items/[0-9a-f-]{36}/original\.[a-z0-9]+$")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, hostile_corpus.Case]:
    cases = hostile_corpus.build(tmp_path_factory.mktemp("hostile"))
    return {case.id: case for case in cases}


@pytest.fixture
def limits(settings, tmp_path):
    settings.MAX_UPLOAD_MB, settings.MAX_UPLOAD_BYTES = 2, 2 * 1024 * 1024
    settings.MAX_VIDEO_SECONDS = 4
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # every real upload goes through a temporary file
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    return Path(settings.FILE_UPLOAD_TEMP_DIR)


def assert_plain(message: str) -> None:
    assert message and len(message) < 400 and not INTERNAL.search(message), message


def assert_nothing_left_behind(temp_dir: Path) -> None:
    assert list(temp_dir.iterdir()) == []  # no temporary upload file
    incoming = Path(settings.MEDIA_ROOT) / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []  # no staged file
    assert not Path("/tmp/escape.png").exists()
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            relative = path.relative_to(settings.MEDIA_ROOT).as_posix()
            assert STORED_ORIGINAL.match(relative) or "/artifacts/" in relative, relative


def test_the_corpus_has_at_least_30_distinct_inputs(corpus):
    assert len(corpus) >= 30 and len({case.content for case in corpus.values()}) >= 30


def test_the_corpus_lists_its_cases(corpus):
    assert tuple(corpus) == hostile_corpus.CASE_IDS


@pytest.mark.django_db
@pytest.mark.parametrize("case_id", hostile_corpus.CASE_IDS)
def test_each_hostile_upload_gets_a_plain_answer_and_leaves_nothing_behind(
    case_id, corpus, limits, alice_client, monkeypatch
):
    monkeypatch.setattr(services, "enqueue_after_commit", lambda item: None)  # the worker test runs them
    case = corpus[case_id]
    upload = SimpleUploadedFile(case.name, case.content)
    response = alice_client.post(
        reverse("upload"), {"files": upload}, headers={"x-requested-with": "XMLHttpRequest"}
    )
    answer = response.json()
    if response.status_code == 200:
        assert ACCEPT in case.expect.split("|"), f"{case_id} was accepted: {answer}"
        item = Item.objects.get()
        assert STORED_ORIGINAL.match(item.original.name), item.original.name
        assert "/" not in item.original_name and "\u202e" not in item.original_name
        assert not any(ord(ch) < 32 for ch in item.original_name)
        assert item.original.size == len(case.content)
    else:
        assert response.status_code in (400, 413), response.status_code
        message = " ".join(answer["errors"])
        pattern = "|".join(part for part in case.expect.split("|") if part != ACCEPT)
        assert pattern and re.search(pattern, message), f"{case_id}: {message!r} does not match {pattern!r}"
        assert_plain(message)
        assert not Item.objects.exists()
    assert_nothing_left_behind(limits)


# Accepted files in whose faces the detector must find someone (the EXIF-rotated one only when upright).
FACES_EXPECTED = ("jpeg-plus-zip", "jpeg-plus-html", "cmyk-jpeg", "gray16-png", "gray-png", "exif-rotated")


@pytest.mark.slow
@pytest.mark.queue
@pytest.mark.django_db(transaction=True)
def test_accepted_hostile_files_end_done_or_failed_with_a_reason_on_a_real_worker(
    corpus, limits, alice_client, start_worker, wait
):
    # The file-name cases differ from a plain photo only by name (their storage is checked above); one
    # of them rides along to show a hostile name changes nothing on the worker side either.
    accepted = [
        case
        for case in corpus.values()
        if ACCEPT in case.expect.split("|")
        and (not case.id.startswith("name-") or case.id == "name-dot-dot-slash")
    ]
    refused = [corpus["truncated-mp4"], corpus["png-bomb-60000"]]  # in the same batch: it goes on
    files = [SimpleUploadedFile(case.name, case.content) for case in accepted + refused]
    assert len(files) <= settings.MAX_FILES_PER_UPLOAD
    response = alice_client.post(reverse("upload"), {"files": files}, follow=True)
    assert response.status_code == 200
    items = list(Item.objects.all())
    names = {case.id: hostile_corpus.display_name_of(case) for case in accepted}
    assert len(items) == len(accepted)
    worker = start_worker()
    wait(
        lambda: all(item.is_finished for item in Item.objects.all()),
        600,
        interval=1,
        message=lambda: (
            f"not all finished: {list(Item.objects.values_list('original_name', 'status'))}\n"
            f"{worker.log[-3000:]}"
        ),
    )
    by_name = {item.original_name: item for item in Item.objects.all()}
    for case in accepted:
        item = by_name[names[case.id]]
        assert item.status in case.settle, (case.id, item.status, item.error)
        if item.status == Item.Status.FAILED:
            assert_plain(item.error)
            assert item.attempts == 1, (case.id, item.attempts)  # deterministic: not retried
        if case.id in FACES_EXPECTED:
            assert item.verdict != "no_face", (case.id, item.verdict)  # a face was found
    assert worker.popen.poll() is None  # the worker survived all of it
    assert_nothing_left_behind(limits)
    print("hostile batch on a real worker:", {case.id: by_name[names[case.id]].status for case in accepted})
