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


def test_review_queue_lists_every_fake_and_uncertain_verdict_with_thumbnails(admin_client_, make_item):
    done = {"status": Item.Status.DONE}
    likely_fake = make_item(name="fake.png", verdict="fake", fake_probability=0.95, faces=1, **done)
    make_item(name="fake-at-68.png", verdict="fake", fake_probability=0.68, **done)
    make_item(name="clearly-real.png", verdict="real", fake_probability=0.05, **done)
    make_item(name="borderline.png", verdict="uncertain", fake_probability=0.55, **done)
    make_item(name="tiny-face.png", verdict="uncertain", fake_probability=0.18, **done)
    html = admin_client_.get(QUEUE_URL).content.decode()
    for name in ("fake.png", "fake-at-68.png", "borderline.png", "tiny-face.png"):
        assert name in html
    assert "clearly-real.png" not in html
    assert reverse("face_thumbnail", args=[likely_fake.pk, likely_fake.faces.get().pk]) in html


def test_queue_shows_the_model_verdict_with_its_reasons(admin_client_, make_item):
    make_item(
        status=Item.Status.DONE,
        verdict="uncertain",
        fake_probability=0.18,
        uncertain_reasons=[{"code": "face_too_small", "text": "small"}],
    )
    html = admin_client_.get(QUEUE_URL).content.decode()
    assert "UNCERTAIN" in html and "face_too_small" in html


def test_queue_opens_on_unreviewed_items_and_all_is_one_click_away(admin_client_, make_item):
    done = {"status": Item.Status.DONE, "verdict": "fake", "fake_probability": 0.9}
    reviewed = make_item(name="reviewed.png", **done)
    make_item(name="waiting.png", **done)
    Review.objects.create(item=reviewed, reviewer=admin_client_.admin_user, decision="confirm_fake", note="x")
    default = admin_client_.get(QUEUE_URL).content.decode()
    assert "waiting.png" in default and "reviewed.png" not in default
    everything = admin_client_.get(QUEUE_URL, {"review": "all"}).content.decode()
    assert "waiting.png" in everything and "reviewed.png" in everything
    assert "?review=all" in default


@pytest.mark.parametrize("note", ["", "   \n  "])
def test_a_decision_without_a_note_is_refused(admin_client_, make_item, note):
    item = make_item(status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    response = admin_client_.post(
        QUEUE_URL, {"action": "overturn_real", ACTION_CHECKBOX_NAME: [item.pk], "apply": "1", "note": note}
    )
    assert response.status_code == 200 and not Review.objects.exists()
    assert "Write a note" in response.content.decode()


def test_review_log_is_read_only(admin_client_, make_item):
    item = make_item(status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    review = Review.objects.create(
        item=item, reviewer=admin_client_.admin_user, decision="confirm_fake", note="x"
    )
    log = admin_client_.get(reverse("admin:detection_review_changelist")).content.decode()
    assert "delete_selected" not in log
    detail = admin_client_.get(reverse("admin:detection_review_change", args=[review.pk])).content.decode()
    delete_url = reverse("admin:detection_review_delete", args=[review.pk])
    assert delete_url not in detail
    assert admin_client_.post(delete_url, {"post": "yes"}).status_code == 403
    assert Review.objects.filter(pk=review.pk).exists()


def test_deleting_an_item_still_takes_its_reviews(admin_client_, make_item):
    item = make_item(status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    Review.objects.create(item=item, reviewer=admin_client_.admin_user, decision="confirm_fake", note="x")
    response = admin_client_.post(reverse("admin:detection_item_delete", args=[item.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Item.objects.exists() and not Review.objects.exists()


@pytest.mark.parametrize(
    ("action", "decision"),
    [("confirm_fake", "confirm_fake"), ("overturn_real", "overturn_real"), ("mark_unclear", "unclear")],
)
def test_review_actions_ask_for_a_note_then_store_the_decision(admin_client_, make_item, action, decision):
    item = make_item(status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
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
    reviewed = make_item(
        name="done-review.png", status=Item.Status.DONE, verdict="fake", fake_probability=0.9
    )
    make_item(name="todo.png", status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    Review.objects.create(item=reviewed, reviewer=admin_client_.admin_user, decision="confirm_fake")
    todo = admin_client_.get(QUEUE_URL, {"review": "none"}).content.decode()
    assert "todo.png" in todo and "done-review.png" not in todo
    confirmed = admin_client_.get(QUEUE_URL, {"review": "confirm_fake"}).content.decode()
    assert "done-review.png" in confirmed and "todo.png" not in confirmed


def test_item_change_page_shows_faces_and_reviews(admin_client_, make_item):
    item = make_item(status=Item.Status.DONE, verdict="fake", fake_probability=0.9, faces=1)
    response = admin_client_.get(reverse("admin:detection_item_change", args=[item.pk]))
    assert response.status_code == 200
    assert reverse("face_heatmap", args=[item.pk, item.faces.get().pk]) in response.content.decode()


def test_non_staff_cannot_open_the_admin(client, user):
    client.force_login(user)
    assert client.get(QUEUE_URL).status_code == 302
