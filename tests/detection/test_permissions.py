"""Other users' items, media files and thumbnails are 404 to everyone but their owner and staff."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def urls_for(item) -> list[str]:
    face = item.faces.get()
    return [
        reverse("item_detail", args=[item.pk]),
        reverse("item_status", args=[item.pk]),
        reverse("item_original", args=[item.pk]),
        reverse("face_thumbnail", args=[item.pk, face.pk]),
        reverse("face_heatmap", args=[item.pk, face.pk]),
    ]


def test_other_user_gets_404_everywhere(client, make_item, other_user):
    item = make_item(faces=1)
    client.force_login(other_user)
    for url in urls_for(item):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("item_delete", args=[item.pk])).status_code == 404
    assert item.__class__.objects.filter(pk=item.pk).exists()


def test_staff_can_see_everything(client, make_item, staff_user):
    item = make_item(faces=1)
    client.force_login(staff_user)
    for url in urls_for(item):
        assert client.get(url).status_code == 200, url


def test_anonymous_is_sent_to_login(client, make_item):
    item = make_item(faces=1)
    for url in urls_for(item):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_face_of_another_item_is_404(client, make_item, user):
    mine = make_item(faces=1)
    theirs_face = make_item(faces=1).faces.get()
    client.force_login(user)
    assert client.get(reverse("face_thumbnail", args=[mine.pk, theirs_face.pk])).status_code == 404


def test_media_is_never_served_as_static_or_media_url(client, make_item, user):
    item = make_item()
    client.force_login(user)
    for prefix in ("/media/", "/media-not-served/", "/static/"):
        assert client.get(f"{prefix}{item.original.name}").status_code == 404
