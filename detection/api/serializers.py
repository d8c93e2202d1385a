"""What the API says about an analysis (an Item), and what it accepts when one is submitted."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from detection.models import Face, Item, Review


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable machine-readable code, e.g. `not_found`, `upload_rejected`."
    )
    message = serializers.CharField()
    details = serializers.JSONField(help_text="Per-field problems or refused files; null when there are none")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class TimelinePointSerializer(serializers.Serializer):
    frame = serializers.IntegerField()
    time = serializers.FloatField(help_text="Seconds from the start of the video")
    fake_probability = serializers.FloatField()


class ReviewSerializer(serializers.ModelSerializer):
    class Meta:
        model = Review
        fields = ["decision", "note", "created_at"]


class FaceSerializer(serializers.ModelSerializer):
    box = serializers.ListField(child=serializers.FloatField(), help_text="[x, y, width, height] in pixels")
    frames = serializers.ListField(child=serializers.IntegerField())
    frame_probabilities = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()

    class Meta:
        model = Face
        fields = [
            "id",
            "track",
            "box",
            "frames",
            "fake_probability",
            "frame_probabilities",
            "thumbnail_url",
            "heatmap_url",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.FloatField()))
    def get_frame_probabilities(self, face: Face) -> list[float]:
        """The per-frame scores of this face's track (videos); the pipeline keeps them in the item result."""
        for entry in (face.item.result or {}).get("faces") or []:
            if entry.get("track") == face.track:
                return [float(p) for p in entry.get("frame_probabilities") or []]
        return []

    def _image_url(self, face: Face, which: str) -> str | None:
        if not (face.thumbnail if which == "thumbnail" else face.heatmap):
            return None
        return reverse(
            "api:analysis-face-image",
            kwargs={"pk": face.item_id, "face_id": face.pk, "which": which},
            request=self.context.get("request"),
        )

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, face: Face) -> str | None:
        return self._image_url(face, "thumbnail")

    @extend_schema_field(OpenApiTypes.URI)
    def get_heatmap_url(self, face: Face) -> str | None:
        return self._image_url(face, "heatmap")


class AnalysisSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")
    verdict = serializers.SerializerMethodField()
    threshold = serializers.SerializerMethodField()
    faces = FaceSerializer(many=True, read_only=True)
    timeline = TimelinePointSerializer(many=True, read_only=True)
    review = ReviewSerializer(source="latest_review", read_only=True, allow_null=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "name",
            "kind",
            "size",
            "sha256",
            "width",
            "height",
            "duration",
            "status",
            "stage",
            "progress",
            "error",
            "verdict",
            "fake_probability",
            "uncertain",
            "uncertain_reasons",
            "threshold",
            "model_version",
            "created_at",
            "finished_at",
            "faces",
            "timeline",
            "review",
            "links",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=Item.Verdict.choices, allow_null=True))
    def get_verdict(self, item: Item) -> str | None:
        return item.verdict or None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_threshold(self, item: Item) -> float | None:
        return item.threshold if item.result else None

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                name: {"type": "string", "format": "uri"}
                for name in ("self", "page", "report_json", "report_pdf")
            },
            "required": ["self", "page", "report_json", "report_pdf"],
        }
    )
    def get_links(self, item: Item) -> dict[str, str]:
        request = self.context.get("request")

        def url(name: str) -> str:
            return reverse(name, kwargs={"pk": item.pk}, request=request)

        page = item.get_absolute_url()
        return {
            "self": url("api:analysis-detail"),
            "page": request.build_absolute_uri(page) if request else page,
            "report_json": url("api:analysis-report-json"),
            "report_pdf": url("api:analysis-report-pdf"),
        }


class SubmissionSerializer(serializers.Serializer):
    reused = serializers.BooleanField(
        help_text="The same file was already uploaded by you: its earlier analysis"
    )
    analysis = AnalysisSerializer()


class SubmissionResultSerializer(serializers.Serializer):
    submissions = SubmissionSerializer(many=True)
    rejections = serializers.ListField(
        child=serializers.CharField(), help_text="One message per refused file"
    )


class CallbackOptionsSerializer(serializers.Serializer):
    callback_url = serializers.URLField(
        required=False,
        max_length=2000,
        help_text="POSTed the result, signed with your webhook secret, when each analysis ends",
    )

    def validate_callback_url(self, value: str) -> str:
        from .webhooks import callback_url_problem

        problem = callback_url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class AnalysisUploadSerializer(CallbackOptionsSerializer):
    """The documented request body. The files themselves are checked by detection.forms.UploadForm,
    the same validation the upload page uses."""

    files = serializers.ListField(
        child=serializers.FileField(),
        help_text="One or more images or videos, or ZIP archives of them (one analysis per media file)",
    )
