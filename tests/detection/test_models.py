from pathlib import Path

import pytest
from django.conf import settings

from detection.models import Item, Review, original_upload_path

pytestmark = pytest.mark.django_db


def test_original_path_keeps_only_the_extension_of_the_user_file_name(user):
    item = Item(owner=user)
    assert original_upload_path(item, "../../etc/Evil Name.JPG") == f"items/{item.pk}/original.jpg"


def test_videos_and_images_go_to_separate_queues(make_item):
    assert make_item(kind="video", name="clip.mp4").queue_name == "video"
    assert make_item(kind="image").queue_name == "images"


def test_visible_to_owner_and_staff_only(make_item, user, other_user, staff_user):
    item = make_item(owner=user)
    assert list(Item.objects.visible_to(user)) == [item]
    assert list(Item.objects.visible_to(other_user)) == []
    assert list(Item.objects.visible_to(staff_user)) == [item]


@pytest.mark.parametrize(
    ("verdict", "probability", "flagged"),
    [
        ("fake", 0.95, True),
        ("fake", 0.68, True),  # a FAKE verdict at 68 % never reached the queue before (threshold 0.8)
        ("uncertain", 0.55, True),
        ("uncertain", 0.1, True),  # uncertain for a reason other than the score
        ("real", 0.1, False),
        ("real", 0.3, False),
        ("no_face", None, False),
    ],
)
def test_flagged_means_every_fake_and_every_uncertain_verdict(make_item, verdict, probability, flagged):
    item = make_item(status=Item.Status.DONE, verdict=verdict, fake_probability=probability)
    assert (item in Item.objects.flagged()) is flagged


def test_unfinished_items_are_never_flagged(make_item):
    make_item(status=Item.Status.RUNNING, fake_probability=0.99)
    assert not Item.objects.flagged().exists()


def test_latest_review_is_the_newest_decision(make_item, staff_user):
    item = make_item()
    Review.objects.create(item=item, reviewer=staff_user, decision=Review.Decision.CONFIRM_FAKE)
    newest = Review.objects.create(
        item=item, reviewer=staff_user, decision=Review.Decision.OVERTURN_REAL, note="x"
    )
    assert item.latest_review == newest
    assert item.reviews.count() == 2
    # The SQL form of the same rule, which the history filter and the admin's review filter use.
    by_decision = Item.objects.alias_latest_decision().filter
    assert list(by_decision(latest_decision=Review.Decision.OVERTURN_REAL)) == [item]
    assert not by_decision(latest_decision=Review.Decision.CONFIRM_FAKE).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_an_item_deletes_its_files(make_item):
    item = make_item(faces=1)
    item_dir = Path(settings.MEDIA_ROOT) / "items" / str(item.pk)
    assert (item_dir / "original.png").is_file() and (item_dir / "artifacts" / "face_0.jpg").is_file()
    item.delete()
    assert not item_dir.exists()


def test_percentages_and_timeline_helpers(make_item):
    item = make_item(
        fake_probability=0.87654,
        result={"timeline": [{"frame": 0, "time": 0, "fake_probability": 1}], "threshold": 0.6},
    )
    assert item.fake_percent == 87.7
    assert item.timeline[0]["frame"] == 0
    assert item.threshold == 0.6
