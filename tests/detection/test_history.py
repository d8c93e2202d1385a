"""History: sorting by column, bulk delete, the batch status endpoint, and the empty-filter message."""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from detection.models import Item

pytestmark = pytest.mark.django_db


def names_in(response) -> list[str]:
    return [item.original_name for item in response.context["items"]]


def test_sort_by_name_and_by_score_both_ways(alice_client, make_item):
    make_item(name="b.png", fake_probability=0.2, status=Item.Status.DONE)
    make_item(name="a.png", fake_probability=0.9, status=Item.Status.DONE)
    make_item(name="c.png", fake_probability=0.5, status=Item.Status.DONE)
    url = reverse("history")
    assert names_in(alice_client.get(url, {"sort": "name"})) == ["a.png", "b.png", "c.png"]
    assert names_in(alice_client.get(url, {"sort": "-name"})) == ["c.png", "b.png", "a.png"]
    assert names_in(alice_client.get(url, {"sort": "-fake"})) == ["a.png", "c.png", "b.png"]
    assert names_in(alice_client.get(url)) == ["c.png", "a.png", "b.png"]  # newest first
    assert names_in(alice_client.get(url, {"sort": "owner__password"})) == ["c.png", "a.png", "b.png"]


def test_sort_links_keep_the_filters_and_flip_the_current_column(alice_client, make_item):
    make_item(name="a.png")
    html = alice_client.get(reverse("history"), {"sort": "name", "q": "a"}).content.decode()
    assert 'href="?q=a&amp;sort=-name"' in html and 'aria-sort="ascending"' in html


def test_a_filter_with_no_match_says_so_to_a_user_with_items(alice_client, make_item):
    make_item(name="holiday.png")
    html = alice_client.get(reverse("history"), {"q": "nothing-like-this"}).content.decode()
    assert "No uploads match these filters" in html and "Nothing here yet" not in html


def test_a_new_user_is_invited_to_upload(alice_client):
    assert "Nothing here yet" in alice_client.get(reverse("history")).content.decode()


def test_bulk_delete_removes_only_own_selected_items_and_their_files(
    alice_client, make_item, other_user, django_capture_on_commit_callbacks
):
    keep, first, second = make_item(name="keep.png"), make_item(name="1.png"), make_item(name="2.png")
    foreign = make_item(owner=other_user, name="foreign.png")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("items_delete"), {"ids": [first.pk, second.pk, foreign.pk, "not-an-id"]}
        )
    assert response.status_code == 302
    assert set(Item.objects.values_list("original_name", flat=True)) == {"keep.png", "foreign.png"}
    assert not (Path(settings.MEDIA_ROOT) / "items" / str(first.pk)).exists()
    assert (Path(settings.MEDIA_ROOT) / keep.original.name).exists()


def test_batch_status_only_reports_visible_items(alice_client, make_item, other_user):
    mine = make_item(status=Item.Status.RUNNING, stage="probing", progress=10)
    foreign = make_item(owner=other_user)
    response = alice_client.get(reverse("item_statuses"), {"id": [mine.pk, foreign.pk, "junk"]})
    items = response.json()["items"]
    assert [entry["id"] for entry in items] == [str(mine.pk)]
    assert items[0]["stage_display"] == "reading the file" and response["Cache-Control"] == "no-store"


def test_queue_position_counts_the_jobs_ahead_in_the_same_queue(alice_client, make_item, other_user):
    make_item(owner=other_user, name="earlier.png")
    make_item(name="video.mp4", kind="video")  # another queue
    make_item(name="running.png", status=Item.Status.RUNNING)
    mine = make_item(name="mine.png")
    data = alice_client.get(reverse("item_status", args=[mine.pk])).json()
    assert data["queue_position"] == 2
    html = alice_client.get(mine.get_absolute_url()).content.decode()
    assert 'id="queue-position-number">2<' in html


def test_item_page_numbers_faces_from_one_and_shows_the_time_zone(alice_client, make_item):
    item = make_item(faces=2, status=Item.Status.DONE, verdict="fake", fake_probability=0.9)
    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert "Face 1:" in html and "Face 2:" in html and "Face 0" not in html
    assert " UTC</time>" in html


def test_every_stage_the_pipeline_reports_has_words_for_people():
    import re

    from detection.models import STAGE_LABELS

    source = (Path(__file__).resolve().parents[2] / "ml" / "pipeline.py").read_text()
    stages = set(re.findall(r'progress\(\s*"([^"]+)"', source))
    assert stages and stages <= set(STAGE_LABELS), stages - set(STAGE_LABELS)
    assert "probing" not in STAGE_LABELS.values() and "writing results" not in STAGE_LABELS.values()
