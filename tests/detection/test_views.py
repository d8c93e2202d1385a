import io
import json

import pytest
from django.urls import reverse
from PIL import Image

from detection import jobs, services
from detection.models import Item, Review

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """Record enqueue calls instead of publishing: these tests are about the web side, not the broker."""
    calls = []
    monkeypatch.setattr(jobs, "enqueue", lambda item: calls.append(item.pk) or True)
    # Outside transactional tests on_commit never fires, so count at the point of scheduling too.
    monkeypatch.setattr(services, "enqueue_after_commit", lambda item: calls.append(item.pk))
    return calls


def png(color=(10, 120, 200)) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "shot.png"
    return buffer


@pytest.mark.parametrize("name", ["upload", "history"])
def test_pages_need_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_signup_logs_in_and_lands_on_upload(client, django_user_model):
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "a-long-Pass-phrase-9",
            "password2": "a-long-Pass-phrase-9",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("upload")
    assert django_user_model.objects.filter(username="newbie").exists()
    assert client.get(reverse("upload")).status_code == 200


def test_login_and_logout(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    assert client.get(reverse("history")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("history")).status_code == 302


def test_upload_page_shows_the_size_limit(alice_client, settings):
    settings.MAX_UPLOAD_MB = 123
    html = alice_client.get(reverse("upload")).content.decode()
    assert "123 MB" in html and "multiple" in html and "drop-zone" in html


@pytest.mark.django_db(transaction=True)
def test_upload_creates_item_enqueues_after_commit_and_redirects_to_it(alice_client, user, monkeypatch):
    enqueued = []
    monkeypatch.setattr(jobs, "enqueue", lambda item: enqueued.append(item.pk) or True)
    response = alice_client.post(reverse("upload"), {"files": png()})
    item = Item.objects.get()
    assert response.status_code == 302 and response["Location"] == item.get_absolute_url()
    assert enqueued == [item.pk]
    assert item.owner == user and item.status == Item.Status.QUEUED and item.kind == "image"
    assert item.original_name == "shot.png" and item.original.name == f"items/{item.pk}/original.png"


def test_xhr_upload_answers_json(alice_client, enqueued):
    response = alice_client.post(
        reverse("upload"), {"files": png()}, headers={"x-requested-with": "XMLHttpRequest"}
    )
    data = response.json()
    assert data["ok"] and data["redirect"] == Item.objects.get().get_absolute_url()


def test_xhr_upload_with_only_bad_files_answers_400_with_messages(alice_client, enqueued):
    bad = io.BytesIO(b"")
    bad.name = "nothing.png"
    response = alice_client.post(
        reverse("upload"), {"files": bad}, headers={"x-requested-with": "XMLHttpRequest"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "nothing.png is empty (0 bytes). Choose the file again or pick another one."
    ]
    assert not Item.objects.exists() and not enqueued


def test_bad_file_message_is_shown_on_the_upload_page(alice_client, enqueued):
    fake = io.BytesIO(b"%PDF-1.4 not a video at all" * 20)
    fake.name = "movie.mp4"
    response = alice_client.post(reverse("upload"), {"files": fake})
    assert response.status_code == 400
    assert "movie.mp4: " in response.content.decode()


def test_several_files_land_on_history(alice_client, enqueued):
    response = alice_client.post(reverse("upload"), {"files": [png((1, 2, 3)), png((4, 5, 6))]})
    assert response["Location"] == reverse("history")
    assert Item.objects.count() == 2 and len(enqueued) == 2


def test_same_file_same_user_reuses_the_item(alice_client, enqueued, make_item, user):
    alice_client.post(reverse("upload"), {"files": png()})
    first = Item.objects.get()
    response = alice_client.post(reverse("upload"), {"files": png()})
    assert response["Location"] == first.get_absolute_url()
    assert Item.objects.count() == 1 and len(enqueued) == 1


def test_same_file_other_user_gets_their_own_item(client, user, other_user, enqueued):
    client.force_login(user)
    client.post(reverse("upload"), {"files": png()})
    client.force_login(other_user)
    client.post(reverse("upload"), {"files": png()})
    assert Item.objects.filter(owner=user).count() == 1
    assert Item.objects.filter(owner=other_user).count() == 1


def test_failed_item_is_not_reused(alice_client, enqueued):
    alice_client.post(reverse("upload"), {"files": png()})
    Item.objects.update(status=Item.Status.FAILED)
    alice_client.post(reverse("upload"), {"files": png()})
    assert Item.objects.count() == 2


def test_status_endpoint(alice_client, make_item):
    item = make_item(status=Item.Status.RUNNING, stage="detecting faces", progress=42)
    data = alice_client.get(reverse("item_status", args=[item.pk])).json()
    assert data["status"] == "running" and data["stage"] == "detecting faces" and data["progress"] == 42
    assert not data["finished"]


def test_done_image_page_shows_verdict_percentage_faces_and_model(alice_client, make_item):
    item = make_item(
        status=Item.Status.DONE,
        verdict="fake",
        fake_probability=0.912,
        model_version="sbi-effnet@3",
        faces=2,
        result={"timeline": [], "threshold": 0.5, "seconds": 1.2},
    )
    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert "FAKE" in html and "91.2% fake probability" in html and "sbi-effnet@3" in html
    face = item.faces.first()
    assert reverse("face_thumbnail", args=[item.pk, face.pk]) in html
    assert reverse("face_heatmap", args=[item.pk, face.pk]) in html
    # the heatmap is drawn by a second network: the page says so and links to how to read it
    assert "a pointer, not proof" in html and reverse("how_it_works") in html


def test_no_face_verdict_reads_no_face_found(alice_client, make_item):
    item = make_item(status=Item.Status.DONE, verdict="no_face", result={"timeline": []})
    assert "NO FACE FOUND" in alice_client.get(item.get_absolute_url()).content.decode()


def test_done_video_page_has_a_server_rendered_svg_timeline(alice_client, make_item):
    timeline = [{"frame": i, "time": i / 10, "fake_probability": i / 20} for i in range(20)]
    item = make_item(
        kind="video",
        name="clip.mp4",
        status=Item.Status.DONE,
        verdict="real",
        fake_probability=0.2,
        result={"timeline": timeline, "threshold": 0.5},
    )
    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert '<svg class="timeline"' in html and "<polyline" in html and "frame 19" in html


def test_failed_item_shows_its_reason(alice_client, make_item):
    item = make_item(status=Item.Status.FAILED, error="The video is truncated.")
    assert "The video is truncated." in alice_client.get(item.get_absolute_url()).content.decode()


def test_reviewed_badge_is_visible_to_the_owner(alice_client, make_item, staff_user):
    item = make_item(status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    Review.objects.create(
        item=item, reviewer=staff_user, decision=Review.Decision.OVERTURN_REAL, note="Known original"
    )
    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert "Reviewed" in html and "Overturned to REAL" in html and "Known original" in html
    assert "reviewer" not in html  # the reviewer's name is for staff only


def test_history_lists_own_items_newest_first_with_filters(alice_client, make_item, other_user):
    old = make_item(name="old-holiday.png", status=Item.Status.DONE, verdict="real")
    new = make_item(name="new-party.mp4", kind="video", status=Item.Status.DONE, verdict="fake")
    make_item(owner=other_user, name="not-mine.png")
    html = alice_client.get(reverse("history")).content.decode()
    assert html.index("new-party.mp4") < html.index("old-holiday.png") and "not-mine.png" not in html
    assert "old-holiday" not in alice_client.get(reverse("history"), {"verdict": "fake"}).content.decode()
    assert "new-party" not in alice_client.get(reverse("history"), {"kind": "image"}).content.decode()
    found = alice_client.get(reverse("history"), {"q": "HOLIDAY"}).content.decode()
    assert "old-holiday" in found and "new-party" not in found
    assert old and new


def test_history_is_paginated(alice_client, make_item, settings):
    settings.HISTORY_PAGE_SIZE = 2
    for i in range(5):
        make_item(name=f"file{i}.png")
    page3 = alice_client.get(reverse("history"), {"page": 3}).content.decode()
    assert "file0.png" in page3 and "Page 3 of 3" in page3


@pytest.mark.django_db(transaction=True)
def test_delete_removes_item_and_files(alice_client, make_item, settings):
    item = make_item(faces=1)
    path = settings.MEDIA_ROOT / "items" / str(item.pk)
    assert path.exists()
    response = alice_client.post(reverse("item_delete", args=[item.pk]))
    assert response.status_code == 302 and not Item.objects.exists() and not path.exists()


def test_delete_needs_post(alice_client, make_item):
    item = make_item()
    assert alice_client.get(reverse("item_delete", args=[item.pk])).status_code == 405


def test_owner_can_fetch_original_and_thumbnail(alice_client, make_item):
    item = make_item(faces=1)
    original = alice_client.get(reverse("item_original", args=[item.pk]))
    assert original.status_code == 200 and original["Content-Type"] == "image/png"
    assert "sandbox" in original["Content-Security-Policy"]
    face = item.faces.get()
    thumb = alice_client.get(reverse("face_thumbnail", args=[item.pk, face.pk]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"


def test_status_json_is_not_cached(alice_client, make_item):
    item = make_item()
    response = alice_client.get(reverse("item_status", args=[item.pk]))
    assert response["Cache-Control"] == "no-store"
    assert json.loads(response.content)["id"] == str(item.pk)


def test_a_body_larger_than_all_limits_is_refused_before_it_is_read(alice_client, settings, enqueued):
    settings.MAX_UPLOAD_MB, settings.MAX_UPLOAD_BYTES, settings.MAX_FILES_PER_UPLOAD = 1, 1024 * 1024, 1
    big = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024))
    big.name = "huge.png"
    response = alice_client.post(
        reverse("upload"), {"files": big}, headers={"x-requested-with": "XMLHttpRequest"}
    )
    assert response.status_code == 413 and "too large" in response.json()["errors"][0]
    assert not Item.objects.exists()
