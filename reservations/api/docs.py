"""``/api/schema/`` and ``/api/docs/``: the OpenAPI schema and its Swagger UI.

Public by default (the schema describes no data); with ``API_PUBLIC_SCHEMA=false`` both need a
signed-in user or an API token with the ``read`` scope, and refuse anyone else with a 401/403
in the API's JSON error shape, not an HTML or YAML page.

The Swagger page is drf-spectacular's "split" view: its start-up script is served as a file
(``/api/docs/?script=``), not inline, so the Content-Security-Policy needs no
``'unsafe-inline'`` for scripts; its template moves the page's few inline styles to a file.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer

from .permissions import ApiAccess


class SchemaAccess(ApiAccess):
    """Anyone while ``API_PUBLIC_SCHEMA`` is on; otherwise what the API itself requires."""

    def has_permission(self, request, view) -> bool:
        return settings.API_PUBLIC_SCHEMA or super().has_permission(request, view)


class _JsonErrors:
    """Refusals in the API's JSON error shape, whatever the view renders when it succeeds."""

    def handle_exception(self, exc):
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


class SchemaView(_JsonErrors, SpectacularAPIView):
    permission_classes = [SchemaAccess]


class SwaggerView(_JsonErrors, SpectacularSwaggerSplitView):
    permission_classes = [SchemaAccess]
    template_name = "api/swagger_ui.html"
