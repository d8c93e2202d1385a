"""`manage.py analyse`: folders and files go through the upload form and the queue, like the page."""

import io

import pytest
from django.core.management import CommandError, call_command

from detection.models import Item
from tests.detection.conftest import image_bytes

pytestmark = pytest.mark.django_db


def test_files_and_folders_are_queued_for_the_user_with_a_table(user, tmp_path, settings):
    settings.MAX_FILES_PER_UPLOAD = 2  # three files: two batches, as the form takes at most two at once
    folder = tmp_path / "batch"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.png").write_bytes(image_bytes())
    (folder / "nested" / "b.png").write_bytes(image_bytes(color=(1, 1, 1)))
    (folder / ".hidden.png").write_bytes(image_bytes(color=(2, 2, 2)))
    (folder / "readme.txt").write_text("not media")
    single = tmp_path / "c.jpg"
    single.write_bytes(image_bytes("JPEG"))
    out, err = io.StringIO(), io.StringIO()
    call_command("analyse", str(folder), str(single), "--user", "alice", stdout=out, stderr=err)
    assert set(Item.objects.filter(owner=user).values_list("original_name", flat=True)) == {
        "a.png",
        "b.png",
        "c.jpg",
    }
    assert "readme.txt: this file type is not supported" in err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "VERDICT", "FAKE", "%", "MODEL", "ID"]
    assert len(lines) == 4 and all(" queued " in line for line in lines[1:])


def test_unknown_user_and_missing_path_are_errors(user, tmp_path):
    with pytest.raises(CommandError, match="No user called"):
        call_command("analyse", str(tmp_path), "--user", "nobody")
    with pytest.raises(CommandError, match="no such file"):
        call_command("analyse", str(tmp_path / "missing.png"), "--user", "alice")
