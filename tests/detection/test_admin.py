import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from detection.models import Item, Review

pytestmark = pytest.mark.django_db

QUEUE_URL = reverse("admin:detection_flaggeditem_changelist")


@pytest.fixture
def admin_client_(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "boss-password-1")
    client.force_login(admin)
    client.admin_user = admin
    return client


def test_review_queue_lists_only_flagged_items_with_thumbnails(admin_client_, make_item):
    likely_fake = make_item(name="fake.png", status=Item.Status.DONE, fake_probability=0.95, faces=1)
    make_item(name="clearly-real.png", status=Item.Status.DONE, fake_probability=0.05)
    make_item(name="borderline.png", status=Item.Status.DONE, fake_probability=0.55)
    html = admin_client_.get(QUEUE_URL).content.decode()
    assert "fake.png" in html and "borderline.png" in html and "clearly-real.png" not in html
    assert reverse("face_thumbnail", args=[likely_fake.pk, likely_fake.faces.get().pk]) in html


def test_threshold_is_configurable(admin_client_, make_item, settings):
    settings.REVIEW_THRESHOLD = 0.99
    make_item(name="fake.png", status=Item.Status.DONE, fake_probability=0.95)
    assert "fake.png" not in admin_client_.get(QUEUE_URL).content.decode()


@pytest.mark.parametrize(
    ("action", "decision"),
    [("confirm_fake", "confirm_fake"), ("overturn_real", "overturn_real"), ("mark_unclear", "unclear")],
)
def test_review_actions_ask_for_a_note_then_store_the_decision(admin_client_, make_item, action, decision):
    item = make_item(status=Item.Status.DONE, fake_probability=0.9)
    first = admin_client_.post(QUEUE_URL, {"action": action, ACTION_CHECKBOX_NAME: [item.pk]})
    assert first.status_code == 200 and b"Note" in first.content and not Review.objects.exists()
    second = admin_client_.post(
        QUEUE_URL, {"action": action, ACTION_CHECKBOX_NAME: [item.pk], "apply": "1", "note": "checked source"}
    )
    assert second.status_code == 302
    review = Review.objects.get()
    assert (review.item, review.decision, review.note, review.reviewer) == (
        item,
        decision,
        "checked source",
        admin_client_.admin_user,
    )
    assert review.created_at is not None


def test_review_filter_separates_reviewed_from_unreviewed(admin_client_, make_item):
    reviewed = make_item(name="done-review.png", status=Item.Status.DONE, fake_probability=0.9)
    make_item(name="todo.png", status=Item.Status.DONE, fake_probability=0.9)
    Review.objects.create(item=reviewed, reviewer=admin_client_.admin_user, decision="confirm_fake")
    todo = admin_client_.get(QUEUE_URL, {"review": "none"}).content.decode()
    assert "todo.png" in todo and "done-review.png" not in todo
    confirmed = admin_client_.get(QUEUE_URL, {"review": "confirm_fake"}).content.decode()
    assert "done-review.png" in confirmed and "todo.png" not in confirmed


def test_item_change_page_shows_faces_and_reviews(admin_client_, make_item):
    item = make_item(status=Item.Status.DONE, fake_probability=0.9, faces=1)
    response = admin_client_.get(reverse("admin:detection_item_change", args=[item.pk]))
    assert response.status_code == 200
    assert reverse("face_heatmap", args=[item.pk, item.faces.get().pk]) in response.content.decode()


def test_non_staff_cannot_open_the_admin(client, user):
    client.force_login(user)
    assert client.get(QUEUE_URL).status_code == 302
