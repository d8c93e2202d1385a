"""Upload validation with the pipeline's real probe (magic bytes and decoding, not names)."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from PIL import Image

from detection.forms import UploadForm

pytestmark = pytest.mark.django_db


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def form_for(*files: SimpleUploadedFile) -> UploadForm:
    form = UploadForm(data={}, files=MultiValueDict({"files": list(files)}))
    form.is_valid()
    return form


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def test_accepts_a_valid_png_and_stages_it_with_its_hash():
    form = form_for(upload("cat.png", image_bytes("PNG")))
    assert form.is_valid(), form.rejections
    (staged,) = form.staged
    assert staged.kind == "image" and staged.width == 64 and staged.height == 48
    assert len(staged.sha256) == 64 and staged.path.is_file()
    form.discard_staged()
    assert not staged.path.exists()


def test_zero_byte_file_is_refused_with_a_clear_message():
    form = form_for(upload("empty.jpg", b""))
    assert not form.is_valid()
    assert form.rejections == ["empty.jpg is empty (0 bytes). Choose the file again or pick another one."]


def test_pdf_named_mp4_is_refused_and_not_kept():
    form = form_for(upload("holiday.mp4", b"%PDF-1.7\n" + b"x" * 2000))
    assert not form.is_valid()
    assert form.rejections[0].startswith("holiday.mp4: ")
    assert "not a supported image or video" in form.rejections[0]
    assert not form.staged


def test_unsupported_extension_is_refused():
    form = form_for(upload("anim.gif", b"GIF89a" + b"\0" * 100))
    assert not form.is_valid()
    assert "this file type is not supported" in form.rejections[0]


def test_image_named_as_video_is_refused():
    form = form_for(upload("clip.mp4", image_bytes("PNG")))
    assert not form.is_valid()
    assert "contains an image" in form.rejections[0]


def test_file_over_the_size_limit_is_refused(settings):
    settings.MAX_UPLOAD_MB = 1
    settings.MAX_UPLOAD_BYTES = 1024 * 1024
    form = form_for(upload("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (1024 * 1024 + 10)))
    assert not form.is_valid()
    assert "the limit is 1 MB per file" in form.rejections[0]


def test_truncated_image_is_refused():
    form = form_for(upload("cut.jpg", image_bytes("JPEG", (400, 300))[:600]))
    assert not form.is_valid()
    assert form.rejections[0].startswith("cut.jpg: ")


def test_image_bomb_is_refused():
    # A PNG that claims 20000 x 20000 pixels but is tiny on disk.
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")
    form = form_for(upload("bomb.png", buffer.getvalue()))
    assert not form.is_valid()
    assert form.rejections[0].startswith("bomb.png: ")


def test_truncated_video_is_refused(face_video_path: Path):
    content = face_video_path.read_bytes()
    form = form_for(upload("cut.mp4", content[: len(content) // 3]))
    assert not form.is_valid()
    assert form.rejections[0].startswith("cut.mp4")


def test_video_longer_than_the_limit_is_refused(settings, face_video_path: Path):
    settings.MAX_VIDEO_SECONDS = 2  # the fixture video is 4 s
    form = form_for(upload("long.mp4", face_video_path.read_bytes()))
    assert not form.is_valid()
    assert form.rejections == ["long.mp4 is 4 s long; videos can be at most 2 s."]


def test_good_files_survive_beside_bad_ones():
    form = form_for(upload("good.png", image_bytes("PNG")), upload("bad.webp", b"nonsense" * 10))
    assert form.is_valid()
    assert [s.name for s in form.staged] == ["good.png"]
    assert len(form.rejections) == 1 and form.rejections[0].startswith("bad.webp")
    form.discard_staged()


def test_too_many_files_are_refused(settings):
    settings.MAX_FILES_PER_UPLOAD = 2
    form = form_for(*(upload(f"{i}.png", image_bytes()) for i in range(3)))
    assert not form.is_valid()
    assert "at most 2" in str(form.errors["files"])


def test_no_file_at_all():
    form = form_for()
    assert not form.is_valid()
    assert "Choose at least one" in str(form.errors["files"])


def test_the_refusal_names_every_type_the_pipeline_takes():
    """The one list is ml.file_types; the sentence a refused uploader reads has to keep up with it."""
    from detection.staging import SUPPORTED_TYPES_TEXT
    from ml.file_types import MEDIA_EXTENSIONS

    named = {"jpg": "jpeg"}  # the text says JPEG once for both spellings
    missing = [e for e in MEDIA_EXTENSIONS if named.get(e[1:], e[1:]) not in SUPPORTED_TYPES_TEXT.lower()]
    assert missing == []
