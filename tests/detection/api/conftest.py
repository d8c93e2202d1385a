"""Fixtures for the REST API tests: token clients and validation of responses against the OpenAPI schema."""

from __future__ import annotations

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
