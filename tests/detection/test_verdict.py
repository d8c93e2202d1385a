"""The three-way verdict as the owner and the admin see it: page, history, status JSON and the CLI agree,
and a reviewer's decision comes first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from detection import jobs
from detection.models import Face, Item, Review

pytestmark = pytest.mark.django_db

TOO_SMALL = {"code": "face_too_small", "text": "The face is only 35 pixels across."}


def done(
    make_item, verdict: str, p: float | None, name: str = "photo.png", kind: str = "image", **result
) -> Item:
    """A finished item with the result the pipeline would have stored (`result` adds to it)."""
    fields = {
        "verdict": verdict,
        "fake_probability": p,
        "status": Item.Status.DONE,
        "name": name,
        "kind": kind,
    }
    if verdict == "uncertain":
        fields["uncertain_reasons"] = result.get("uncertain_reasons", [TOO_SMALL])
    strength = None
    if verdict in ("real", "fake"):
        chance = p if verdict == "fake" else 1 - p
        strength = {"level": "strong" if chance >= 0.9 else "moderate" if chance >= 0.75 else "weak"}
    base = {"timeline": [], "threshold": 0.5, "uncertain_band": [0.35, 0.65], "strength": strength}
    return make_item(result={**base, "lean": "fake" if p and p >= 0.5 else "real", **result}, **fields)


def test_a_photo_whose_mixed_models_disagree_shows_why_and_each_models_reading(alice_client, make_item):
    reason = {"code": "models_disagree", "text": "The two models behind the score read it in opposite ways"}
    members = {"CLIP probe": 0.96, "fine-tuned CNN": 0.05}
    face = {"track": 0, "fake_probability": 0.56, "member_probabilities": members}
    item = done(make_item, "uncertain", 0.56, uncertain_reasons=[reason], faces=[face])
    Face.objects.create(item=item, track=0, box=[0, 0, 32, 32], frames=[0], fake_probability=0.56)

    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert f'data-code="models_disagree">{reason["text"]}' in html
    assert "Face 1: <strong>56.0%</strong> fake" in html and "CLIP probe 96.0% · fine-tuned CNN 5.0%" in html
    # a face without them (CNN or probe alone) says nothing more
    face.pop("member_probabilities")
    item.result = {**item.result, "faces": [face]}
    item.save()
    assert "face-members" not in alice_client.get(item.get_absolute_url()).content.decode()


def test_overturned_fake_reads_real_first_on_page_history_and_status(alice_client, make_item, staff_user):
    item = done(make_item, "fake", 0.521)
    Review.objects.create(item=item, reviewer=staff_user, decision=Review.Decision.OVERTURN_REAL, note="ok")

    html = alice_client.get(item.get_absolute_url()).content.decode()
    banner = html.index('id="verdict"')
    assert 'class="verdict verdict-real" id="verdict"' in html
    assert html.index("REAL", banner) < html.index("The model's verdict") < html.index("FAKE", banner)
    assert "52.1% fake probability" in html  # the model's verdict stays beside the review
    assert html.count(" UTC</time>") >= 2  # the review's time says its zone, like the upload's

    status = alice_client.get(reverse("item_status", args=[item.pk])).json()
    assert (status["verdict"], status["model_verdict"]) == ("real", "fake")
    assert status["review"]["decision"] == "overturn_real" and status["review"]["note"] == "ok"

    history = alice_client.get(reverse("history")).content.decode()
    assert "verdict-pill verdict-real" in history and "model: FAKE" in history
    assert item.original_name in alice_client.get(reverse("history"), {"verdict": "real"}).content.decode()
    assert "<table" not in alice_client.get(reverse("history"), {"verdict": "fake"}).content.decode()


def test_unclear_review_reads_uncertain(alice_client, make_item, staff_user):
    item = done(make_item, "fake", 0.9)
    Review.objects.create(item=item, reviewer=staff_user, decision=Review.Decision.UNCLEAR, note="?")
    assert alice_client.get(reverse("item_status", args=[item.pk])).json()["verdict"] == "uncertain"


def test_uncertain_page_explains_why_and_what_the_model_misses(alice_client, make_item):
    limits = [{"what": "Whole-face synthesis (StyleGAN).", "measured": "AUC 0.47 held out.", "command": ""}]
    item = done(make_item, "uncertain", 0.18, known_limits=limits)
    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert 'class="verdict verdict-uncertain" id="verdict"' in html and "UNCERTAIN" in html
    assert "The model cannot tell" in html and "towards REAL" in html
    assert 'data-code="face_too_small"' in html and "only 35 pixels across" in html
    assert "What this model is known to miss" in html and "Whole-face synthesis" in html
    assert 'class="scale-band" style="left:35.0%;width:30.0%"' in html
    assert 'id="strength"' not in html  # no strength is claimed for a guess


def test_page_without_known_limits_shows_no_empty_section(alice_client, make_item):
    html = alice_client.get(done(make_item, "real", 0.05).get_absolute_url()).content.decode()
    assert "known to miss" not in html and "strong verdict" in html


def test_a_52_percent_fake_does_not_look_like_a_90_percent_fake(alice_client, make_item):
    weak = alice_client.get(done(make_item, "fake", 0.7, name="a.png").get_absolute_url()).content.decode()
    strong = alice_client.get(done(make_item, "fake", 0.95, name="b.png").get_absolute_url()).content.decode()
    assert "weak verdict" in weak and "●○○" in weak and "not far from the threshold" in weak
    assert "strong verdict" in strong and "●●●" in strong
    assert 'class="scale-marker" style="left:70.0%"' in weak


def test_history_shows_uncertainty_and_strength(alice_client, make_item):
    done(make_item, "uncertain", 0.55, name="doubt.png")
    done(make_item, "fake", 0.97, name="sure.png")
    html = alice_client.get(reverse("history")).content.decode()
    assert "verdict-pill verdict-uncertain" in html and 'title="The face is only 35 pixels across."' in html
    assert "strong" in html
    assert "doubt.png" in alice_client.get(reverse("history"), {"verdict": "uncertain"}).content.decode()


def test_video_page_says_how_the_clip_score_is_formed_from_frames(alice_client, make_item):
    frames = [0.6 + 0.21 * i / 31 for i in range(32)]
    timeline = [{"frame": i, "time": i / 10, "fake_probability": p} for i, p in enumerate(frames)]
    face = {"track": 0, "fake_probability": 0.478, "frame_probabilities": frames}
    reason = {"code": "frames_disagree_with_clip_model", "text": "The two models disagree."}
    item = done(
        make_item,
        "uncertain",
        0.478,
        kind="video",
        name="clip.mp4",
        timeline=timeline,
        faces=[face],
        uncertain_reasons=[reason],
    )
    html = alice_client.get(item.get_absolute_url()).content.decode()
    assert 'class="clip-score"' in html and "clip score 47.8%" in html
    explained = html[html.index('id="clip-explained"') :]
    assert (
        "47.8%" in explained
        and "all 32 frames of face 1" in explained
        and "median <strong>70.5%" in explained
    )
    assert "The two models disagree." in html


def test_video_page_says_the_clip_score_is_the_average_of_the_points_on_the_clip_path(
    alice_client, make_item
):
    frames = [0.62, 0.70, 0.81, 0.66]
    timeline = [{"frame": i * 8, "time": i * 0.8, "fake_probability": p} for i, p in enumerate(frames)]
    face = {"track": 0, "fake_probability": 0.71, "frame_probabilities": frames}
    item = done(
        make_item,
        "fake",
        0.71,
        kind="video",
        name="clip.mp4",
        timeline=timeline,
        faces=[face],
        video_score="frame_mean",
    )
    explained = alice_client.get(item.get_absolute_url()).content.decode()
    explained = explained[explained.index('id="clip-explained"') :]
    assert "average of the 4 points of face 1" in explained
    assert "between the lowest (62.0%) and the highest (81.0%)" in explained
    # Not the LSTM path's story of two models that may disagree.
    assert "photo model" not in explained.split("</p>")[0]


def _tiny_face_photo(tmp_path: Path, face_image_path: Path) -> Path:
    image = Image.open(face_image_path)
    small = image.resize((image.width * 35 // 100, image.height * 35 // 100), Image.Resampling.LANCZOS)
    path = tmp_path / "tiny.jpg"
    small.save(path, quality=92)
    return path


@pytest.mark.slow
def test_page_status_admin_and_cli_show_the_same_verdict(
    alice_client, client, make_item, tmp_path, face_image_path, django_user_model, capsys
):
    """The real pipeline on a clear photo and on a tiny-face one; the CLI JSON, /status/, the page and the
    admin's queue must all say the same."""
    from ml.__main__ import main as ml_main
    from ml.pipeline import analyse

    admin = django_user_model.objects.create_superuser("boss", "b@example.com", "boss-password-1")
    for source in (face_image_path, _tiny_face_photo(tmp_path, face_image_path)):
        capsys.readouterr()
        assert ml_main(["predict", "--json", str(source)]) == 0
        cli = json.loads(capsys.readouterr().out)
        item = make_item(name=source.name)
        artifacts = jobs.fresh_artifacts_dir(item)
        item = jobs.store_result(item.pk, analyse(source, artifacts_dir=artifacts), artifacts)
        assert item.verdict == cli["verdict"]
        assert item.uncertain_reasons == cli["uncertain_reasons"]
        status = alice_client.get(reverse("item_status", args=[item.pk])).json()
        assert status["verdict"] == status["model_verdict"] == cli["verdict"]
        page = alice_client.get(item.get_absolute_url()).content.decode()
        assert f'class="verdict verdict-{cli["verdict"]}" id="verdict"' in page
        client.force_login(admin)
        queue = client.get(reverse("admin:detection_flaggeditem_changelist"), {"review": "all"}).content
        assert (source.name in queue.decode()) is (cli["verdict"] in ("fake", "uncertain"))
        admin_page = client.get(reverse("admin:detection_item_changelist")).content.decode()
        assert f'<td class="field-verdict">{item.get_verdict_display()}</td>' in admin_page
        client.force_login(item.owner)
    assert cli["verdict"] == "uncertain" and cli["uncertain_reasons"][0]["code"] == "face_too_small"
