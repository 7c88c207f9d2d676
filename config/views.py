"""Operational endpoints that belong to no app: the health check, /favicon.ico."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

BROKER_TIMEOUT_SECONDS = 2


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not reachable"
        return False, type(exc).__name__
    return True, "ok"


def _broker_ok() -> tuple[bool, str]:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
            if settings.CELERY_BROKER_URL.startswith("filesystem"):
                # The filesystem transport "connects" without touching the disk; check that
                # the queue folder is there and writable, as the worker needs it.
                from pathlib import Path

                folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / ".healthz"
                probe.write_text("ok")
                probe.unlink()
    except Exception as exc:  # refused, timed out, unwritable: all mean "not reachable"
        return False, type(exc).__name__
    return True, "ok"


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming the one that does not."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    body = {
        name: ("ok" if ok else f"unreachable ({detail})") for name, (ok, detail) in checks.items()
    }
    healthy = all(ok for ok, _ in checks.values())
    body["status"] = "ok" if healthy else "unavailable"
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the admin, the API's JSON):
    send them to the portal's icon instead of a 404 in the log."""
    return HttpResponsePermanentRedirect(static("portal/favicon.svg"))
