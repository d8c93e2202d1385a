"""The REST API without a worker: auth, upload validation, ownership, filters, delete, errors, schema."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from detection.models import Item

pytestmark = pytest.mark.django_db

URL = "/api/v1/analyses/"


def png(name: str = "photo.png", **kwargs) -> SimpleUploadedFile:
    from tests.detection.conftest import image_bytes

    return SimpleUploadedFile(name, image_bytes(**kwargs), content_type="image/png")


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_requests_without_a_valid_token_are_401_with_a_stable_code(user, openapi):
    anonymous = APIClient()
    response = anonymous.get(URL)
    assert response.status_code == 401 and error_code(response) == "not_authenticated"
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anonymous.get(URL)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"
    openapi(response)


def test_upload_creates_queued_analyses_for_the_caller(api, user, openapi):
    response = api.post(URL, {"files": [png("a.png"), png("b.png", color=(1, 2, 3))]}, format="multipart")
    assert response.status_code == 201, response.content
    openapi(response)
    body = response.json()
    assert body["rejections"] == []
    names = sorted(s["analysis"]["name"] for s in body["submissions"])
    assert names == ["a.png", "b.png"]
    assert set(Item.objects.filter(owner=user).values_list("original_name", flat=True)) == {"a.png", "b.png"}
    first = body["submissions"][0]["analysis"]
    assert first["status"] == "queued" and first["verdict"] is None
    assert first["links"]["self"].endswith(f"{URL}{first['id']}/")


def test_upload_uses_the_sites_validation_and_reports_each_refusal(api, user, openapi):
    text = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
    fake_png = SimpleUploadedFile("fake.png", b"not an image at all", content_type="image/png")
    response = api.post(URL, {"files": [text, fake_png]}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "upload_rejected"
    openapi(response)
    rejections = response.json()["error"]["details"]["rejections"]
    assert len(rejections) == 2 and rejections[0].startswith("notes.txt: this file type is not supported")
    assert not Item.objects.exists()

    mixed = api.post(URL, {"files": [png("ok.png"), SimpleUploadedFile("x.txt", b"x")]}, format="multipart")
    assert mixed.status_code == 201 and len(mixed.json()["rejections"]) == 1


def test_missing_files_and_bad_callback_urls_are_refused(api):
    response = api.post(URL, {}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "upload_rejected"
    response = api.post(URL, {"files": [png()], "callback_url": "ftp://example.org/x"}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "invalid"
    assert "callback_url" in response.json()["error"]["details"]


def test_other_users_items_are_404_and_cannot_be_deleted(api, other_api, make_item, openapi):
    item = make_item(faces=1)
    assert api.get(f"{URL}{item.pk}/").status_code == 200
    response = other_api.get(f"{URL}{item.pk}/")
    assert response.status_code == 404 and error_code(response) == "not_found"
    openapi(response)
    assert other_api.delete(f"{URL}{item.pk}/").status_code == 404
    face = item.faces.get()
    assert other_api.get(f"{URL}{item.pk}/faces/{face.pk}/thumbnail/").status_code == 404
    assert other_api.get(URL).json()["count"] == 0
    assert Item.objects.filter(pk=item.pk).exists()


def test_detail_has_faces_with_fetchable_thumbnails_and_the_review(api, make_item, staff_user, openapi):
    from detection.services import record_review

    item = make_item(faces=2, status="done", verdict="fake", fake_probability=0.91, model_version="cnn@3")
    record_review(item, staff_user, "confirm_fake", "lip sync is off")
    response = api.get(f"{URL}{item.pk}/")
    openapi(response)
    body = response.json()
    assert body["verdict"] == "fake" and body["fake_probability"] == 0.91 and body["model_version"] == "cnn@3"
    assert body["review"]["decision"] == "confirm_fake"
    assert [face["track"] for face in body["faces"]] == [0, 1]
    image = api.get(body["faces"][0]["thumbnail_url"])
    assert image.status_code == 200 and b"".join(image.streaming_content)[:2] == b"\xff\xd8"


def test_list_is_paginated_and_filtered_like_the_history_page(api, make_item, other_user, openapi, settings):
    make_item(name="cat.png", status="done", verdict="real")
    make_item(name="dog.png", status="done", verdict="fake")
    make_item(name="clip.mp4", kind="video", status="queued")
    make_item(owner=other_user, name="cat-of-someone-else.png")
    response = api.get(URL)
    openapi(response)
    assert response.json()["count"] == 3
    assert [r["name"] for r in api.get(URL, {"verdict": "fake"}).json()["results"]] == ["dog.png"]
    assert [r["name"] for r in api.get(URL, {"q": "cat"}).json()["results"]] == ["cat.png"]
    assert [r["name"] for r in api.get(URL, {"kind": "video"}).json()["results"]] == ["clip.mp4"]
    bad = api.get(URL, {"status": "sleeping"})
    assert bad.status_code == 400 and error_code(bad) == "invalid_filter"
    openapi(bad)


def test_delete_removes_the_item(api, make_item, openapi):
    item = make_item()
    response = api.delete(f"{URL}{item.pk}/")
    assert response.status_code == 204
    openapi(response)
    assert not Item.objects.filter(pk=item.pk).exists()
    assert error_code(api.get(f"{URL}{item.pk}/")) == "not_found"


def test_reports_wait_for_the_analysis_to_end(api, make_item, openapi):
    item = make_item(status="running")
    response = api.get(f"{URL}{item.pk}/report/")
    assert response.status_code == 409 and error_code(response) == "not_ready"
    openapi(response)


def test_unknown_api_paths_answer_json(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_docs_page_is_served_without_a_cdn(client, user):
    client.force_login(user)
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
