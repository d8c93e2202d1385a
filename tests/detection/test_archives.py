"""ZIP uploads: one item per media member, with unsafe, oversized and bomb-like members refused."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from detection.archives import expand_archives
from detection.models import Item
from tests.detection.conftest import image_bytes


def zip_upload(members: dict[str, bytes], name: str = "batch.zip", compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as bundle:
        for member, content in members.items():
            bundle.writestr(member, content)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def test_members_become_uploads_and_junk_is_skipped():
    bundle = zip_upload(
        {
            "photos/a.png": image_bytes(),
            "b.jpg": image_bytes("JPEG"),
            "__MACOSX/photos/._a.png": b"resource fork",
            ".DS_Store": b"finder",
            "photos/": b"",
        }
    )
    plain = SimpleUploadedFile("c.png", image_bytes())
    uploads, rejections = expand_archives([bundle, plain])
    assert rejections == []
    assert [upload.name for upload in uploads] == ["a.png", "b.jpg", "c.png"]
    assert uploads[0].read() == image_bytes()


@pytest.mark.parametrize(
    "member", ["../../etc/evil.png", "/abs/evil.png", "C:/evil.png", "dir\\..\\evil.png"]
)
def test_paths_that_leave_the_archive_are_refused(member):
    uploads, rejections = expand_archives([zip_upload({member: image_bytes(), "ok.png": image_bytes()})])
    assert [upload.name for upload in uploads] == ["ok.png"]
    assert len(rejections) == 1 and "leaves the archive" in rejections[0]


def test_a_member_that_inflates_too_much_is_refused(settings):
    settings.ZIP_MAX_RATIO = 50
    uploads, rejections = expand_archives([zip_upload({"bomb.png": b"\0" * 1_000_000})])
    assert uploads == [] and "times its packed size" in rejections[0]


def test_archive_limits_on_members_and_total_size(settings):
    settings.ZIP_MAX_MEMBERS = 2
    _, rejections = expand_archives([zip_upload({f"{i}.png": image_bytes() for i in range(3)})])
    assert "at most 2" in rejections[0]
    settings.ZIP_MAX_MEMBERS = 100
    settings.MAX_UPLOAD_MB = 0
    settings.MAX_UPLOAD_BYTES = 10
    _, rejections = expand_archives([zip_upload({"big.png": image_bytes()}, compression=zipfile.ZIP_STORED)])
    assert "larger than 0 MB" in rejections[0]


def test_a_broken_archive_is_one_readable_refusal():
    uploads, rejections = expand_archives([SimpleUploadedFile("broken.zip", b"PK\x03\x04 not really")])
    assert uploads == [] and rejections == ["broken.zip is not a readable ZIP archive."]


@pytest.mark.django_db
def test_upload_page_turns_a_zip_into_one_item_per_media_file(alice_client, user):
    bundle = zip_upload(
        {
            "a.png": image_bytes(),
            "b.png": image_bytes(color=(9, 9, 9)),
            "notes.txt": b"text",
            "../x.png": b"x",
        }
    )
    response = alice_client.post(reverse("upload"), {"files": bundle})
    assert response.status_code == 302
    assert sorted(Item.objects.filter(owner=user).values_list("original_name", flat=True)) == [
        "a.png",
        "b.png",
    ]
    page = alice_client.get(response["Location"]).content.decode()
    assert "notes.txt: this file type is not supported" in page and "leaves the archive" in page
