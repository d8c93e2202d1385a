"""The REST API's views: submit analyses, list and read them, delete them, and fetch their reports."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from detection import views as site_views
from detection.forms import HistoryFilterForm, UploadForm
from detection.models import Face, Item
from detection.reports import pdf_response, report_data
from detection.services import submit_uploads
from detection.uploads import accepts_uploads, body_too_large, oversized_files

from .errors import ApiError
from .serializers import (
    AnalysisSerializer,
    AnalysisUploadSerializer,
    CallbackOptionsSerializer,
    ErrorSerializer,
    SubmissionResultSerializer,
)
from .webhooks import attach_callback

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404)}
NOT_READY = OpenApiResponse(ErrorSerializer, description="`not_ready`: the analysis has not finished")
FILTERS = [
    OpenApiParameter("q", str, description="Part of the file name"),
    OpenApiParameter("verdict", str, enum=Item.Verdict.values),
    OpenApiParameter("kind", str, enum=Item.Kind.values),
    OpenApiParameter("status", str, enum=Item.Status.values),
]


@extend_schema_view(
    list=extend_schema(
        summary="Your analyses, newest first",
        parameters=FILTERS,
        responses={200: AnalysisSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        summary="One analysis: status, progress, verdict, faces",
        responses={200: AnalysisSerializer, **ERRORS},
    ),
    destroy=extend_schema(summary="Delete an analysis and its files", responses={204: None, **ERRORS}),
)
class AnalysisViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = AnalysisSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    queryset = Item.objects.none()  # for the schema generator; requests use get_queryset
    parser_classes = [MultiPartParser, FormParser]  # the only request body is the upload

    def get_queryset(self):
        user = self.request.user
        # The list is the caller's own history, like the page; a single item follows the site's rule
        # (owners, and staff for review), and anyone else's is a 404.
        items = Item.objects.filter(owner=user) if self.action == "list" else Item.objects.visible_to(user)
        return items.order_by("-created_at").prefetch_related(
            Prefetch("faces", queryset=Face.objects.select_related("item").order_by("track"))
        )

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = HistoryFilterForm(self.request.query_params)
        if self.request.query_params and not filters.is_valid():
            raise ApiError("invalid_filter", "A filter has a value it cannot take.", details=filters.errors)
        return filters.filter(queryset)

    @extend_schema(
        summary="Submit files for analysis",
        request={"multipart/form-data": AnalysisUploadSerializer},
        responses={
            201: SubmissionResultSerializer,
            413: OpenApiResponse(ErrorSerializer, description="`payload_too_large`"),
            **ERRORS,
        },
    )
    @accepts_uploads  # UploadGuardMiddleware refuses anonymous and oversize bodies unread, counts each file
    def create(self, request: Request) -> Response:
        too_big = body_too_large(request)  # also here: the guard is middleware a deployment could drop
        if too_big:
            raise ApiError("payload_too_large", too_big, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        options = CallbackOptionsSerializer(data=request.POST)
        options.is_valid(raise_exception=True)
        dropped = oversized_files(request._request)  # files the guard stopped reading at the limit
        form = UploadForm(data=request.POST, files=request.FILES, dropped=dropped, owner=request.user)
        if not form.is_valid():
            rejections = form.rejections or form.errors.get("files", [])
            raise ApiError(
                "upload_rejected", "No file was accepted.", details={"rejections": list(rejections)}
            )
        try:
            submissions = submit_uploads(request.user, form.staged)
        finally:
            form.discard_staged()  # anything not turned into an item (no-op for the moved files)
        callback_url = options.validated_data.get("callback_url")
        if callback_url:
            for submission in submissions:
                attach_callback(submission.item, callback_url)
        context = self.get_serializer_context()
        body = {
            "submissions": [{"reused": s.reused, "analysis": s.item} for s in submissions],
            "rejections": form.rejections,
        }
        return Response(
            SubmissionResultSerializer(body, context=context).data, status=status.HTTP_201_CREATED
        )

    def _finished_item(self) -> Item:
        item = self.get_object()
        if not item.is_finished:
            raise ApiError(
                "not_ready", f"The analysis is {item.get_status_display().lower()}.", status.HTTP_409_CONFLICT
            )
        return item

    @extend_schema(summary="JSON report", responses={200: OpenApiTypes.OBJECT, 409: NOT_READY, **ERRORS})
    @action(detail=True, methods=["get"], url_path="report", url_name="report-json")
    def report_json(self, request: Request, pk=None) -> Response:
        return Response(report_data(self._finished_item()))

    @extend_schema(
        summary="One-page PDF report",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 409: NOT_READY, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="report/pdf", url_name="report-pdf")
    def report_pdf(self, request: Request, pk=None) -> HttpResponse:
        item = self._finished_item()
        return pdf_response(item)

    @extend_schema(
        summary="A face's thumbnail or heatmap", responses={(200, "image/*"): OpenApiTypes.BINARY, **ERRORS}
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"faces/(?P<face_id>[0-9]+)/(?P<which>thumbnail|heatmap)",
        url_name="face-image",
    )
    def face_image(self, request: Request, pk=None, face_id=None, which=None) -> HttpResponse:
        face = get_object_or_404(Face, pk=face_id, item=self.get_object())
        return site_views.serve_face_image(request, face, which)
