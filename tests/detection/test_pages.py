"""Pages anyone can read, error pages in the site's layout, the logout page, and site-wide headers."""

import pytest
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

INFO_PAGES = ["how_it_works", "limits", "privacy", "terms"]


def test_visitors_get_a_landing_page_that_says_what_it_does_and_does_not(client):
    response = client.get(reverse("home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "What it does" in html and "What it does not do" in html
    assert reverse("signup") in html


def test_signed_in_users_go_straight_to_upload(alice_client):
    response = alice_client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse("upload")


@pytest.mark.parametrize("logged_in", [False, True])
@pytest.mark.parametrize("name", ["home", "upload", "history", "login", "signup", *INFO_PAGES])
def test_every_page_links_the_information_pages(client, user, name, logged_in):
    if logged_in:
        client.force_login(user)
    response = client.get(reverse(name), follow=True)
    html = response.content.decode()
    for page in INFO_PAGES:
        assert f'href="{reverse(page)}"' in html, f"{name} does not link {page}"


def test_limits_page_shows_the_configured_limits(client, settings):
    settings.MAX_UPLOAD_MB = 77
    settings.MAX_VIDEO_SECONDS = 45
    html = client.get(reverse("limits")).content.decode()
    assert "77 MB" in html and "45 seconds" in html


@override_settings(DEBUG=False)
def test_404_is_in_the_site_layout(alice_client):
    response = alice_client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in html and 'class="topbar"' in html and reverse("history") in html


def test_a_wrong_method_gets_a_page_not_an_empty_405(alice_client, make_item):
    item = make_item()
    response = alice_client.get(reverse("item_delete", args=[item.pk]))
    html = response.content.decode()
    assert response.status_code == 405
    assert 'class="topbar"' in html and "POST" in html


def test_405_for_json_clients_stays_empty(alice_client, make_item):
    item = make_item()
    response = alice_client.get(reverse("item_delete", args=[item.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 405 and response.content == b""


def test_403_and_500_templates_render_without_a_request():
    from django.template.loader import render_to_string

    for name, words in [
        ("403.html", "Not allowed"),
        ("403_csrf.html", "Form expired"),
        ("500.html", "Something went wrong"),
    ]:
        html = render_to_string(name)
        assert words in html and 'class="topbar"' in html


def test_logout_by_get_asks_instead_of_an_empty_405(alice_client):
    response = alice_client.get(reverse("logout"))
    assert response.status_code == 200
    assert "Log out?" in response.content.decode()
    assert alice_client.get(reverse("history")).status_code == 200  # a GET did not log out
    response = alice_client.post(reverse("logout"))
    assert response.status_code == 302
    assert alice_client.get(reverse("history")).status_code == 302


def test_logout_page_for_a_logged_out_visitor(client):
    response = client.get(reverse("logout"))
    assert response.status_code == 200 and "You are logged out" in response.content.decode()


def test_favicon(client):
    html = client.get(reverse("home")).content.decode()
    assert 'rel="icon"' in html
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


@pytest.mark.parametrize("name", ["home", "login", "upload", "history"])
def test_pages_send_a_strict_content_security_policy(alice_client, name):
    response = alice_client.get(reverse(name), follow=True)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src-attr")[0]
    assert "http" not in policy  # no third-party origin
    assert response["X-Content-Type-Options"] == "nosniff"
    html = response.content.decode()
    assert "<script>" not in html and " onclick=" not in html and 'style="' not in html


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_login_cookies_carry_secure_and_httponly_when_configured(client, user):
    client.get(reverse("login"))
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    for name in ("sessionid", "csrftoken"):
        cookie = response.cookies[name]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax", name
