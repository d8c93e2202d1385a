"""The API and the batch command against a real Celery worker on real Redis, with the real pipeline."""

import hashlib
import hmac
import io
import json
import shutil
import subprocess
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from detection.api.models import Callback, WebhookSecret
from detection.models import Item

pytestmark = [pytest.mark.slow, pytest.mark.queue, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 300  # the worker's first job loads the models; on 2 CPU cores that dominates


def test_api_upload_is_analysed_reported_and_called_back(
    api, user, start_worker, face_image_path, webhook_receiver, wait, openapi, tmp_path
):
    worker = start_worker()
    webhook_receiver.statuses = [500]  # the first delivery fails: the retry must bring it through
    upload = SimpleUploadedFile("astronaut.jpg", face_image_path.read_bytes())
    response = api.post(
        "/api/v1/analyses/", {"files": [upload], "callback_url": webhook_receiver.url}, format="multipart"
    )
    assert response.status_code == 201, response.content
    detail_url = response.json()["submissions"][0]["analysis"]["links"]["self"]

    def done() -> bool:
        return api.get(detail_url).json()["status"] in ("done", "failed")

    wait(done, JOB_TIMEOUT, message=lambda: f"job not finished; worker log:\n{worker.log[-3000:]}")
    detail = api.get(detail_url)
    openapi(detail)
    body = detail.json()
    item = Item.objects.get(pk=body["id"])
    assert body["status"] == "done", body["error"]
    assert body["verdict"] == item.verdict and body["fake_probability"] == item.fake_probability
    assert body["model_version"] == item.model_version and "@" in body["model_version"]
    assert body["faces"] and body["faces"][0]["fake_probability"] == item.faces.first().fake_probability
    thumbnail = api.get(body["faces"][0]["thumbnail_url"])
    assert thumbnail.status_code == 200 and b"".join(thumbnail.streaming_content)

    report = api.get(body["links"]["report_json"])
    openapi(report)
    assert report.json()["file"]["sha256"] == hashlib.sha256(face_image_path.read_bytes()).hexdigest()
    pdf = api.get(body["links"]["report_pdf"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    if shutil.which("pdftoppm"):
        (tmp_path / "r.pdf").write_bytes(pdf.content)
        subprocess.run(["pdftoppm", "-r", "40", "-png", tmp_path / "r.pdf", tmp_path / "p"], check=True)
        assert len(list(tmp_path.glob("p*.png"))) == 1

    wait(lambda: len(webhook_receiver.received) >= 2, 60, message=lambda: worker.log[-3000:])
    headers, raw = webhook_receiver.received[-1]
    secret = WebhookSecret.objects.get(user=user).secret.encode()
    assert headers["X-Detector-Signature"] == "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    assert json.loads(raw)["analysis"]["analysis"]["verdict"] == item.verdict
    wait(lambda: Callback.objects.get(item=item).state == Callback.State.DELIVERED, 30)


def test_analyse_command_waits_for_a_zip_of_media(user, start_worker, face_image_path, tmp_path):
    start_worker()
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(face_image_path, "photos/astronaut.jpg")
        bundle.writestr("photos/readme.txt", "not media")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "analyse",
        str(archive),
        "--user",
        "alice",
        "--wait",
        "--timeout",
        str(JOB_TIMEOUT),
        stdout=out,
        stderr=err,
    )
    item = Item.objects.get(owner=user)
    assert item.status == Item.Status.DONE and item.original_name == "astronaut.jpg"
    row = out.getvalue().splitlines()[1]
    assert row.split()[:3] == ["astronaut.jpg", "done", item.get_verdict_display().split()[0]]
    assert str(item.pk) in row and f"{item.fake_percent:.1f}" in row
    assert "readme.txt: this file type is not supported" in err.getvalue() and "1/1 done" in err.getvalue()
