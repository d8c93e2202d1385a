"""Fixtures for the REST API tests: token clients and validation of responses against the OpenAPI schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def token(user) -> Token:
    return Token.objects.create(user=user)


@pytest.fixture
def api(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def other_api(other_user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")
    return client


@pytest.fixture
def openapi(api):
    """Checks a test-client response against the schema the site serves at /api/schema/."""
    from openapi_core import OpenAPI
    from openapi_core.contrib.django import DjangoOpenAPIResponse
    from openapi_core.testing import MockRequest

    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    spec = OpenAPI.from_dict(response.json())

    def validate(response) -> None:
        # Only the method and path matter for checking a response; the request body was consumed.
        request = response.wsgi_request
        operation = MockRequest("http://testserver", request.method.lower(), request.path)
        spec.validate_response(operation, DjangoOpenAPIResponse(response))

    return validate


@dataclass
class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records POSTs and answers with the next scripted status."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict, bytes]] = field(default_factory=list)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append((dict(self.headers), body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
