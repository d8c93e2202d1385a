"""Private media: byte ranges for seeking, the user's own file name, and headers that keep the bytes inert."""

from urllib.parse import quote

import pytest
from django.urls import reverse

from detection.serving import content_disposition, parse_range

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 40  # 10,240 distinct-enough bytes


@pytest.fixture
def video(make_item):
    return make_item(name="Holiday été 2024.mp4", kind="video", content=CONTENT)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_range_request_gets_206_with_only_those_bytes(alice_client, video):
    response = alice_client.get(reverse("item_original", args=[video.pk]), HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
    assert response["Content-Length"] == "100"
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == CONTENT[100:200]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=10240-", None, None), ("bytes=-100", 10140, 10239), ("bytes=9000-", 9000, 10239)],
)
def test_open_and_suffix_ranges(alice_client, video, header, first, last):
    response = alice_client.get(reverse("item_original", args=[video.pk]), HTTP_RANGE=header)
    if first is None:  # starts past the end
        assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(CONTENT)}"
        return
    assert response.status_code == 206
    assert body(response) == CONTENT[first : last + 1]


def test_without_a_range_the_whole_file_and_accept_ranges(alice_client, video):
    response = alice_client.get(reverse("item_original", args=[video.pk]))
    assert response.status_code == 200 and response["Accept-Ranges"] == "bytes"
    assert body(response) == CONTENT


def test_served_media_carry_the_original_name_and_stay_inert_and_uncached(alice_client, video):
    response = alice_client.get(reverse("item_original", args=[video.pk]))
    disposition = response["Content-Disposition"]
    assert disposition.startswith("inline; ")
    assert f"filename*=UTF-8''{quote('Holiday été 2024.mp4', safe='')}" in disposition
    assert 'filename="Holiday _t_ 2024.mp4"' in disposition  # the ASCII fallback for old clients
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    # A deleted item's bytes must not stay in the browser cache (was "private, max-age=3600").
    assert "no-store" in response["Cache-Control"] and "max-age" not in response["Cache-Control"]


def test_face_images_are_named_after_the_upload(alice_client, make_item):
    item = make_item(name="party.png", faces=1)
    face = item.faces.get()
    response = alice_client.get(reverse("face_heatmap", args=[item.pk, face.pk]))
    assert 'filename="party face 1 heatmap.png"' in response["Content-Disposition"]


def test_hostile_names_cannot_break_the_header():
    header = content_disposition('evil"\r\nSet-Cookie: x=1;.mp4')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('inline; filename="evil___Set-Cookie: x=1_.mp4"')


def test_media_through_the_web_server_when_configured(alice_client, video, settings):
    settings.MEDIA_ACCEL_REDIRECT = "x-accel-redirect"
    settings.MEDIA_ACCEL_PREFIX = "/protected-media/"
    response = alice_client.get(reverse("item_original", args=[video.pk]))
    assert response["X-Accel-Redirect"] == f"/protected-media/{video.original.name}"
    assert response.content == b"" and response["X-Content-Type-Options"] == "nosniff"
    settings.MEDIA_ACCEL_REDIRECT = "x-sendfile"
    response = alice_client.get(reverse("item_original", args=[video.pk]))
    assert response["X-Sendfile"] == str(settings.MEDIA_ROOT.resolve() / video.original.name)


def test_other_users_still_get_404_for_ranges(client, other_user, video):
    client.force_login(other_user)
    response = client.get(reverse("item_original", args=[video.pk]), HTTP_RANGE="bytes=0-10")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=0-1000", (0, 99)),
        ("bytes=1-2,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected
