"""What the site stores: uploaded items, the faces the pipeline found in them, and human reviews."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Value, When
from django.urls import reverse


def item_dir(item_id: uuid.UUID | str) -> str:
    """Directory, relative to MEDIA_ROOT, that holds everything belonging to one item."""
    return f"items/{item_id}"


def original_upload_path(item: Item, filename: str) -> str:
    # The user's file name is kept in Item.original_name; on disk only its extension survives, so no
    # user-chosen text ever becomes part of a path.
    suffix = PurePosixPath(filename).suffix.lower()
    return f"{item_dir(item.pk)}/original{suffix}"


# What the stage names written by the pipeline and the job runner mean to a person.
STAGE_LABELS = {
    "starting": "starting",
    "probing": "reading the file",
    "detecting faces": "finding faces",
    "scoring faces": "checking each face",
    "writing results": "saving the result",
    "waiting to retry": "waiting to try again",
    "re-queued after a worker stopped": "waiting to start again",
    "done": "finished",
}


class ItemQuerySet(models.QuerySet):
    def visible_to(self, user) -> ItemQuerySet:
        """Owners see their own items; staff see everyone's (for review)."""
        if user.is_staff:
            return self
        return self.filter(owner=user)

    def flagged(self) -> ItemQuerySet:
        """Finished items that need a human look: every FAKE and every UNCERTAIN verdict of the model."""
        return self.filter(status=Item.Status.DONE, verdict__in=[Item.Verdict.FAKE, Item.Verdict.UNCERTAIN])

    def alias_latest_decision(self) -> ItemQuerySet:
        """Alias `latest_decision`: the newest review's decision, NULL for none (Item.latest_review in
        SQL, so querysets can filter on it)."""
        newest = Review.objects.filter(item=OuterRef("pk")).order_by("-created_at").values("decision")[:1]
        return self.alias(latest_decision=Subquery(newest))

    def with_shown_verdict(self) -> ItemQuerySet:
        """Annotate `verdict_shown`: the newest review's verdict where there is one, else the model's
        (the same rule as Item.shown_verdict, in SQL so history can filter on it)."""
        return self.alias_latest_decision().annotate(
            verdict_shown=Case(
                *(When(latest_decision=d, then=Value(v)) for d, v in REVIEW_VERDICT.items()),
                default=F("verdict"),
                output_field=models.CharField(),
            )
        )


class Item(models.Model):
    """One uploaded file and the state and result of its analysis job."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Verdict(models.TextChoices):
        # The values are ml.verdict.VERDICTS; the rule that picks one lives there.
        REAL = "real", "REAL"
        FAKE = "fake", "FAKE"
        UNCERTAIN = "uncertain", "UNCERTAIN"
        NO_FACE = "no_face", "NO FACE FOUND"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="items")
    original = models.FileField(upload_to=original_upload_path, max_length=255)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    size = models.BigIntegerField(help_text="Bytes")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds; 0 for images")

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=64, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    verdict = models.CharField(
        max_length=16, choices=Verdict.choices, blank=True, help_text="The model's verdict (ml.verdict)"
    )
    fake_probability = models.FloatField(null=True, blank=True)
    uncertain_reasons = models.JSONField(
        default=list, blank=True, help_text="Why the verdict is UNCERTAIN: [{code, text}, ...]"
    )
    model_version = models.CharField(max_length=128, blank=True)
    result = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "sha256"]), models.Index(fields=["owner", "-created_at"])]
        constraints = [
            # The same bytes from the same user make one item (services.submit_uploads reuses it): as a
            # constraint, because ten simultaneous uploads each checking first created 2-6 items. A failed
            # item does not count, so the file can be sent again after a failure.
            models.UniqueConstraint(
                fields=["owner", "sha256"],
                condition=~Q(status="failed"),
                name="one_live_item_per_owner_and_file",
            )
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("item_detail", args=[self.pk])

    @property
    def queue_name(self) -> str:
        """Videos have their own queue so a GPU machine can take them (`celery worker -Q video`)."""
        return "video" if self.kind == self.Kind.VIDEO else "images"

    @property
    def artifacts_dir(self) -> str:
        """Where the pipeline writes thumbnails and heatmaps, relative to MEDIA_ROOT."""
        return f"{item_dir(self.pk)}/artifacts"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def fake_percent(self) -> float | None:
        return None if self.fake_probability is None else round(self.fake_probability * 100, 1)

    @property
    def timeline(self) -> list[dict]:
        return (self.result or {}).get("timeline") or []

    @property
    def threshold(self) -> float:
        return float((self.result or {}).get("threshold", 0.5))

    @property
    def clip_summary(self) -> dict | None:
        """How a video's score is formed from its most suspicious face track: the mean of the frames the
        chart shows (`rule` "frame_mean", the CLIP path), or the clip model's reading beside the median of
        the per-frame scores ("sequence_model", the LSTM path and results stored before the key existed)."""
        faces = [f for f in (self.result or {}).get("faces") or [] if f.get("frame_probabilities")]
        if self.kind != self.Kind.VIDEO or not faces:
            return None
        top = max(faces, key=lambda f: f["fake_probability"])
        frames = sorted(top["frame_probabilities"])
        middle = len(frames) // 2
        median = frames[middle] if len(frames) % 2 else (frames[middle - 1] + frames[middle]) / 2
        return {
            "face": int(top.get("track", 0)) + 1,
            "faces": len(faces),
            "frames": len(frames),
            "score_percent": round(top["fake_probability"] * 100, 1),
            "frame_median_percent": round(median * 100, 1),
            "frame_low_percent": round(frames[0] * 100, 1),
            "frame_high_percent": round(frames[-1] * 100, 1),
            "rule": (self.result or {}).get("video_score", "sequence_model"),
        }

    @property
    def stage_display(self) -> str:
        return STAGE_LABELS.get(self.stage, self.stage)

    def queue_position(self) -> int | None:
        """1 for the next job its queue will take; None once it is no longer waiting."""
        if self.status != self.Status.QUEUED:
            return None
        waiting = Item.objects.filter(status=self.Status.QUEUED, kind=self.kind)
        return waiting.filter(created_at__lt=self.created_at).count() + 1

    @property
    def latest_review(self) -> Review | None:
        """The newest decision (reviews are ordered newest first; a prefetch of them is reused)."""
        return next(iter(self.reviews.all()), None)

    @property
    def shown_verdict(self) -> str:
        """What the owner is told: a reviewer's decision overrides the model's verdict."""
        review = self.latest_review
        return REVIEW_VERDICT[review.decision] if review else self.verdict

    @property
    def shown_verdict_display(self) -> str:
        return self.Verdict(self.shown_verdict).label if self.shown_verdict else ""

    @property
    def uncertain(self) -> bool:
        """The model's verdict is UNCERTAIN (the API's and the report's `uncertain` field)."""
        return self.verdict == self.Verdict.UNCERTAIN

    @property
    def strength(self) -> dict | None:
        """{"level": weak|moderate|strong, "chance": ...} of a decided verdict (ml.verdict.strength)."""
        return (self.result or {}).get("strength")

    @property
    def lean(self) -> str:
        """The side of the threshold the score is on, also for an UNCERTAIN verdict."""
        return (self.result or {}).get("lean") or ""

    @property
    def known_limits(self) -> list[dict]:
        return (self.result or {}).get("known_limits") or []

    @property
    def score_scale(self) -> dict | None:
        """Percent positions for the page's 0-100 % scale: the score, the threshold and the card's band."""
        band = (self.result or {}).get("uncertain_band")
        if self.fake_probability is None or not band:
            return None
        low, high = (round(float(b) * 100, 1) for b in band)
        return {
            "marker": self.fake_percent,
            "threshold": round(self.threshold * 100, 1),
            "band_low": low,
            "band_high": high,
            "band_width": round(high - low, 1),
        }


class Face(models.Model):
    """One face track the pipeline found, with its own score and images."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="faces")
    track = models.PositiveIntegerField()
    box = models.JSONField(help_text="[x, y, width, height] in pixels of the first frame it appears in")
    frames = models.JSONField(default=list)
    fake_probability = models.FloatField()
    thumbnail = models.FileField(max_length=255)
    heatmap = models.FileField(max_length=255, blank=True)

    class Meta:
        ordering = ["track"]

    def __str__(self) -> str:
        return f"face {self.track} of {self.item_id}"

    @property
    def fake_percent(self) -> float:
        return round(self.fake_probability * 100, 1)

    @property
    def number(self) -> int:
        """How the face is named to people: tracks count from 0, people from 1."""
        return self.track + 1

    @property
    def member_percents(self) -> list[tuple[str, float]]:
        """A photo scored by the photo mix: each mixed model's own score of this face, from the stored result
        (empty for other items)."""
        for face in (self.item.result or {}).get("faces") or []:
            if face.get("track") == self.track:
                members = face.get("member_probabilities") or {}
                return [(name, round(p * 100, 1)) for name, p in members.items()]
        return []


class Review(models.Model):
    """A reviewer's decision about an item. Every decision is kept; the newest is the one shown."""

    class Decision(models.TextChoices):
        CONFIRM_FAKE = "confirm_fake", "Confirmed FAKE"
        OVERTURN_REAL = "overturn_real", "Overturned to REAL"
        UNCLEAR = "unclear", "Unclear"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="reviews"
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer} on {self.created_at:%Y-%m-%d}"

    def as_dict(self) -> dict:
        """The decision as /status/ and the reports give it to the owner (never the reviewer's name)."""
        return {
            "decision": self.decision,
            "decision_display": self.get_decision_display(),
            "note": self.note,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


# What each review decision tells the owner, as a verdict.
REVIEW_VERDICT = {
    Review.Decision.CONFIRM_FAKE: Item.Verdict.FAKE,
    Review.Decision.OVERTURN_REAL: Item.Verdict.REAL,
    Review.Decision.UNCLEAR: Item.Verdict.UNCERTAIN,
}


class FlaggedItem(Item):
    """The admin's review queue: a proxy so it gets its own admin page beside the full item list."""

    class Meta:
        proxy = True
        verbose_name = "flagged item (review queue)"
        verbose_name_plural = "review queue"
