"""Account basics: e-mail at sign-up, password reset and change, export of all results, account deletion."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from detection.models import Item

pytestmark = pytest.mark.django_db


def test_signup_asks_for_an_email(client, django_user_model):
    data = {"username": "newbie", "password1": "a-long-Pass-phrase-9", "password2": "a-long-Pass-phrase-9"}
    response = client.post(reverse("signup"), data)
    assert response.status_code == 200 and not django_user_model.objects.filter(username="newbie").exists()
    response = client.post(reverse("signup"), {**data, "email": "newbie@example.com"})
    assert response.status_code == 302
    assert django_user_model.objects.get(username="newbie").email == "newbie@example.com"


def test_password_reset_sends_a_working_link(client, user):
    user.email = "alice@example.com"
    user.save()
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(
        form_url, {"new_password1": "fresh-Pass-phrase-42", "new_password2": "fresh-Pass-phrase-42"}
    )
    assert response.status_code == 302
    # through the login page, as a person would (django-axes refuses authenticate() without a request)
    client.logout()
    response = client.post(reverse("login"), {"username": "alice", "password": "fresh-Pass-phrase-42"})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_password_change_uses_the_site_layout(alice_client, user):
    response = alice_client.get(reverse("password_change"))
    assert response.status_code == 200 and 'class="topbar"' in response.content.decode()
    response = alice_client.post(
        reverse("password_change"),
        {
            "old_password": "alice-password-1",
            "new_password1": "another-Pass-phrase-7",
            "new_password2": "another-Pass-phrase-7",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-Pass-phrase-7")


def test_console_email_by_default_smtp_when_configured():
    assert settings.EMAIL_BACKEND.endswith(("console.EmailBackend", "locmem.EmailBackend"))


def test_export_has_every_item_of_the_user_and_nothing_else(alice_client, make_item, other_user):
    done = make_item(name="a.png", faces=2, status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    make_item(name="b.png")
    make_item(owner=other_user, name="secret.png")
    response = alice_client.get(reverse("export_results"))
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.content)
    assert sorted(item["file"]["name"] for item in document["items"]) == ["a.png", "b.png"]
    exported = next(item for item in document["items"] if item["file"]["id"] == str(done.pk))
    assert exported["analysis"]["verdict"] == "fake" and exported["analysis"]["fake_probability"] == 0.9
    assert len(exported["faces"]) == 2


def test_delete_account_needs_the_password_and_removes_all_media(
    alice_client, user, make_item, django_user_model, django_capture_on_commit_callbacks
):
    item = make_item(faces=1)
    item_dir = Path(settings.MEDIA_ROOT) / "items" / str(item.pk)
    assert item_dir.is_dir()
    response = alice_client.post(reverse("delete_account"), {"password": "wrong"})
    assert response.status_code == 400 and django_user_model.objects.filter(pk=user.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("delete_account"), {"password": "alice-password-1"})
    assert response.status_code == 302
    assert not django_user_model.objects.filter(pk=user.pk).exists()
    assert not Item.objects.exists() and not item_dir.exists()
    assert alice_client.get(reverse("history")).status_code == 302  # logged out
