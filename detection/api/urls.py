"""URLs under /api/: version 1 of the API, its OpenAPI schema and the offline docs pages."""

from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from ..site_middleware import allow_injected_styles
from .errors import ApiError
from .views import AnalysisViewSet

app_name = "api"

router = SimpleRouter()
router.register("analyses", AnalysisViewSet, basename="analysis")


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def unknown_endpoint(request, *args, **kwargs):
    """Any other /api/ path: a JSON 404 in the API's error shape, not the site's HTML page."""
    raise ApiError("not_found", "There is no such API endpoint.", 404)


urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's set-up script from a URL: the site's CSP forbids inline script.
    path(
        "docs/",
        allow_injected_styles(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path("redoc/", allow_injected_styles(SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
    re_path(r"^.*$", unknown_endpoint),
]
