"""The API settings page: a token is created, replaced and revoked there, and the webhook secret renewed."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from detection.api.models import WebhookSecret

pytestmark = pytest.mark.django_db


def works(key: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/analyses/").status_code == 200


def test_create_replace_and_revoke_a_token(alice_client, user):
    url = reverse("api_settings")
    assert 'id="no-token"' in alice_client.get(url).content.decode()
    alice_client.post(url, {"action": "create_token"})
    first = Token.objects.get(user=user).key
    assert first in alice_client.get(url).content.decode() and works(first)
    alice_client.post(url, {"action": "create_token"})
    second = Token.objects.get(user=user).key
    assert second != first and works(second) and not works(first)
    alice_client.post(url, {"action": "revoke_token"})
    assert not Token.objects.filter(user=user).exists() and not works(second)


def test_renewing_the_webhook_secret_changes_it(alice_client, user):
    url = reverse("api_settings")
    alice_client.get(url)
    old = WebhookSecret.objects.get(user=user).secret
    alice_client.post(url, {"action": "renew_secret"})
    new = WebhookSecret.objects.get(user=user).secret
    assert new != old and len(new) == 64 and new in alice_client.get(url).content.decode()


def test_the_page_needs_a_login(client):
    assert client.get(reverse("api_settings")).status_code == 302
