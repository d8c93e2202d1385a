"""Page-number pagination whose documented schema is valid OpenAPI 3.1."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class HistoryPagination(PageNumberPagination):
    def get_paginated_response_schema(self, schema: dict) -> dict:
        # DRF documents next/previous with 3.0's `nullable`, which 3.1 dropped: say "string or null".
        response = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):
            response["properties"][link].pop("nullable", None)
            response["properties"][link]["type"] = ["string", "null"]
        return response
