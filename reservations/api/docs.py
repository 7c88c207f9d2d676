"""``/api/schema/`` and ``/api/docs/``: the OpenAPI schema and its Swagger UI.

The Swagger page is drf-spectacular's "split" view: its start-up script is served as a file
(``/api/docs/?script=``), not inline, so the Content-Security-Policy needs no
``'unsafe-inline'`` for scripts; its template moves the page's few inline styles to a file.
"""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


class SchemaView(SpectacularAPIView):
    pass


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"
