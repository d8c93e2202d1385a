"""Oversize and anonymous upload bodies are refused before anything reads or spools them (issue 12, #1)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client
from django.urls import reverse

from detection.models import Item

from .conftest import image_bytes

pytestmark = pytest.mark.django_db

BOUNDARY = "guardboundary"


class CountingStream:
    """A request body that records how much of it the server read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.read_bytes if n is None or n < 0 else min(n, self.size - self.read_bytes)
        self.read_bytes += n
        return b"\0" * n

    def readline(self, *args) -> bytes:
        return self.read(1)


class RecordingHandler(FileUploadHandler):
    """Last upload handler in the chain: what reaches it is what Django would have stored."""

    received: dict[str, int] = {}

    def receive_data_chunk(self, raw_data, start):
        RecordingHandler.received[self.file_name] = RecordingHandler.received.get(self.file_name, 0) + len(
            raw_data
        )
        return raw_data

    def file_complete(self, file_size):
        return None


def post_unread_body(client: Client, length: int, headers: dict | None = None, url: str = ""):
    stream = CountingStream(length)
    response = client.generic(
        "POST",
        url or reverse("upload"),
        data=b"x",
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers=headers,
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": stream},
    )
    return response, stream


def csrf_client(client: Client) -> Client:
    """A client that enforces CSRF like a browser, holding a valid CSRF cookie (as an attacker can)."""
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    strict.get(reverse("login"))
    return strict


def test_anonymous_upload_is_sent_to_login_without_reading_the_body(client):
    response, stream = post_unread_body(csrf_client(client), 1024**3)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert stream.read_bytes == 0  # before: the CSRF check parsed (and spooled) the whole body


def test_anonymous_xhr_upload_gets_a_403_json(client):
    response, stream = post_unread_body(client, 10_000, headers={"x-requested-with": "XMLHttpRequest"})
    assert response.status_code == 403 and response.json()["errors"] == ["Log in to upload."]
    assert stream.read_bytes == 0


def test_a_content_length_over_all_limits_is_refused_unread(client, user, settings):
    settings.MAX_UPLOAD_MB, settings.MAX_UPLOAD_BYTES, settings.MAX_FILES_PER_UPLOAD = 1, 1024 * 1024, 2
    strict = csrf_client(client)
    strict.force_login(user)
    response, stream = post_unread_body(strict, 10 * 1024 * 1024)
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert stream.read_bytes == 0


@pytest.fixture
def one_mb_limit(settings, monkeypatch) -> list[io.BytesIO]:
    """A 1 MB per-file limit, RecordingHandler last in the chain, and a 3 MB and a small file to send."""
    settings.MAX_UPLOAD_MB, settings.MAX_UPLOAD_BYTES = 1, 1024 * 1024
    settings.FILE_UPLOAD_HANDLERS = [
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
        "tests.detection.test_upload_guard.RecordingHandler",
    ]
    RecordingHandler.received = {}
    monkeypatch.setattr("detection.jobs.enqueue", lambda item: True)
    big = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024))
    big.name = "huge.png"
    small = io.BytesIO(image_bytes())
    small.name = "fine.png"
    return [big, small]


def test_a_file_over_the_limit_is_dropped_as_it_arrives_and_named(alice_client, one_mb_limit):
    response = alice_client.post(reverse("upload"), {"files": one_mb_limit}, follow=True)
    assert "huge.png is larger than the limit of 1 MB per file." in response.content.decode()
    assert list(Item.objects.values_list("original_name", flat=True)) == ["fine.png"]
    # Stored no more than the limit plus one chunk (before: all 3 MB went to a temporary file)
    assert RecordingHandler.received.get("huge.png", 0) <= 1024 * 1024 + 64 * 1024


def one_file_too_many(limit: int) -> list[io.BytesIO]:
    files = []
    for i in range(limit + 1):
        upload = io.BytesIO(image_bytes(color=(i, 10, 10)))
        upload.name = f"photo{i}.png"
        files.append(upload)
    return files


def test_more_files_than_allowed_without_javascript_get_a_page_that_says_so(alice_client, settings):
    response = alice_client.post(
        reverse("upload"), {"files": one_file_too_many(settings.MAX_FILES_PER_UPLOAD)}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert (
        f"Upload at most {settings.MAX_FILES_PER_UPLOAD} files at a time." in page
    )  # before: "Bad Request (400)"
    assert "<form" in page
    assert not Item.objects.exists()


# --- The API's upload action (token clients), guarded the same way -------------------------------------

API_URL = "/api/v1/analyses/"


@pytest.fixture
def api_token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=user).key


@pytest.mark.parametrize(
    "authorization, code",
    [(None, "not_authenticated"), ("Token not-a-real-token", "authentication_failed")],
)
def test_an_api_upload_without_a_valid_token_is_a_401_unread(client, authorization, code):
    headers = {"authorization": authorization} if authorization else None
    response, stream = post_unread_body(client, 1024**3, headers=headers, url=API_URL)
    assert response.status_code == 401 and response.json()["error"]["code"] == code  # DRF's codes
    assert response["WWW-Authenticate"] == "Token"
    assert stream.read_bytes == 0


def test_an_api_content_length_over_all_limits_is_a_413_unread(client, api_token, settings):
    settings.MAX_UPLOAD_MB, settings.MAX_UPLOAD_BYTES, settings.MAX_FILES_PER_UPLOAD = 1, 1024 * 1024, 2
    headers = {"authorization": f"Token {api_token}"}
    response, stream = post_unread_body(client, 10 * 1024 * 1024, headers=headers, url=API_URL)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert stream.read_bytes == 0


def test_an_api_file_over_the_limit_is_dropped_as_it_arrives_and_named(api_token, one_mb_limit):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token}")
    response = api.post(API_URL, {"files": one_mb_limit}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["rejections"] == ["huge.png is larger than the limit of 1 MB per file."]
    assert list(Item.objects.values_list("original_name", flat=True)) == ["fine.png"]
    # Before: the API's uploads skipped the guard, and all 3 MB went to a temporary file.
    assert RecordingHandler.received.get("huge.png", 0) <= 1024 * 1024 + 64 * 1024


def test_too_many_files_through_the_api_get_the_apis_error(api_token, settings):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token}")
    files = one_file_too_many(settings.MAX_FILES_PER_UPLOAD)
    response = api.post(API_URL, {"files": files}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "upload_rejected"
    assert error["message"] == f"Upload at most {settings.MAX_FILES_PER_UPLOAD} files at a time."
    assert not Item.objects.exists()


def test_a_session_still_uploads_through_the_api(alice_client, monkeypatch):
    monkeypatch.setattr("detection.jobs.enqueue", lambda item: True)
    photo = io.BytesIO(image_bytes(color=(4, 5, 6)))
    photo.name = "session.png"
    response = alice_client.post(API_URL, {"files": photo})
    assert response.status_code == 201, response.content
    assert Item.objects.get().original_name == "session.png"
