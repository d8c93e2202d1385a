"""Login throttling (django-axes), per-user upload rate and storage quota (issue 12, abuse limits)."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from detection import services
from detection.models import Item

from .conftest import image_bytes

pytestmark = pytest.mark.django_db


def test_repeated_failed_logins_lock_the_account_from_that_address_with_a_clear_page(client, user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page and "alice" in page
    # Locked out even with the right password, until the cool-off ends or an admin lifts it.
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_lockouts_are_listed_in_the_admin(client, user, admin_client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    page = admin_client.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert "alice" in page


def photo(i: int) -> io.BytesIO:
    upload = io.BytesIO(image_bytes(color=(i, 50, 60)))
    upload.name = f"p{i}.png"
    return upload


@pytest.fixture
def no_enqueue(monkeypatch):
    monkeypatch.setattr(services, "enqueue_after_commit", lambda item: None)


def test_uploads_over_the_hourly_rate_are_refused_with_a_message(alice_client, settings, no_enqueue):
    settings.UPLOADS_PER_HOUR = 3
    alice_client.post(reverse("upload"), {"files": [photo(1), photo(2)]})
    response = alice_client.post(reverse("upload"), {"files": [photo(3), photo(4)]}, follow=True)
    page = response.content.decode()
    assert Item.objects.count() == 3
    assert "p4.png: you have reached the limit of 3 uploads an hour" in page


def test_storage_quota_refuses_what_does_not_fit(alice_client, settings, no_enqueue, make_item, user):
    make_item(content=b"x" * (3 * 1024 * 1024))  # 3 MB already stored
    settings.STORAGE_QUOTA_MB = 3
    response = alice_client.post(reverse("upload"), {"files": [photo(5)]})
    assert response.status_code == 400
    assert "storage quota of 3 MB" in response.content.decode()
    assert Item.objects.count() == 1


def test_staff_are_exempt(client, staff_user, settings, no_enqueue):
    settings.UPLOADS_PER_HOUR = 1
    client.force_login(staff_user)
    client.post(reverse("upload"), {"files": [photo(6), photo(7)]})
    assert Item.objects.filter(owner=staff_user).count() == 2
