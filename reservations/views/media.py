"""Uploaded images (floor maps, space photos), served to signed-in people only.

A floor plan says where people sit and where the doors are: it is not put on a public web
server. Files come from ``MEDIA_ROOT`` (Django's ``static.serve``, which refuses paths that
leave it), only with the extensions ``uploads`` stores (png, jpg, svg), with a policy that
sandboxes the file when it is opened on its own (an SVG then runs no script even if one had
got past the upload checks) and nosniff, so a browser never takes one for a page.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from django.views.static import serve as static_serve

from ..uploads import CONTENT_TYPES

MEDIA_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


@login_required
@require_GET
def serve(request: HttpRequest, path: str) -> HttpResponse:
    extension = PurePosixPath(path).suffix.lower().lstrip(".")
    if extension not in CONTENT_TYPES:
        raise Http404("No such image.")
    response = static_serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Content-Type"] = CONTENT_TYPES[extension]
    response["Content-Security-Policy"] = MEDIA_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"  # names change when a file is replaced
    return response
