"""One error shape for the whole API: ``{"error": {"code", "message", "fields"}}``.

DRF's own errors (validation, auth, throttling, 404) and the booking service's exceptions are
turned into it here, so a client handles every failure the same way. A booking conflict (409)
also lists the clashing slots (space and times only: never another person's title or name)
and, for a one-off booking, ``next_free``: the same space's next free slots of the same length
(``reservations.freetimes``), so a client can offer them without another round trip.
A slot the space or its location is closed for (a closure) is a 409 too, with code ``closed``
and the closure's reason as the message: like a taken slot, it is the state of the space at
that time, not the caller's rights (403), that refuses it. So is a check-in outside the
booking's window (``check_in_closed``), an action refused because the booking still awaits
approval (``needs_approval``) and a decision on a booking that awaits none
(``already_decided``); deciding without being an approver is a 403. A person's limits
(``reservations.limits``) are a 403 with code ``limit_exceeded`` or ``too_soon``: the slot is
free, but not for this person.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .. import services

SERVICE_STATUS = {
    services.NotAllowed: status.HTTP_403_FORBIDDEN,
    services.Conflict: status.HTTP_409_CONFLICT,
    services.StaleReservation: status.HTTP_409_CONFLICT,
    services.CheckInClosed: status.HTTP_409_CONFLICT,
    services.NeedsApproval: status.HTTP_409_CONFLICT,
    services.AlreadyDecided: status.HTTP_409_CONFLICT,
}

DRF_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None, **extra):
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field" or "parent.field": [messages]}``."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def _service_error(exc: services.BookingError) -> Response:
    code = status.HTTP_400_BAD_REQUEST
    for cls, mapped in SERVICE_STATUS.items():
        if isinstance(exc, cls):
            code = mapped
            break
    fields = {exc.field: [exc.message]} if exc.field else {}
    extra: dict[str, Any] = {}
    if isinstance(exc, services.Conflict):
        extra["clashes"] = [
            {
                "space": clash.space_name,
                "start": clash.start.astimezone(_zone(clash.time_zone)).isoformat(),
                "end": clash.end.astimezone(_zone(clash.time_zone)).isoformat(),
                "description": clash.describe(),
            }
            for clash in exc.clashes
        ]
        extra["unavailable"] = [
            {"date": item.day.isoformat(), "reason": item.reason} for item in exc.unavailable
        ]
        if exc.next_free is not None:
            extra["next_free"] = [
                {"start": start.isoformat(), "end": end.isoformat()} for start, end in exc.next_free
            ]
    return Response(error_body(exc.code, exc.message, fields, **extra), status=code)


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, services.BookingError):
        return _service_error(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django report it (500)
    code = DRF_CODES.get(response.status_code, "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "The request is not valid; see fields."
        if list(fields) == ["non_field_errors"]:
            message = fields["non_field_errors"][0]
        response.data = error_body(code, message, fields)
    elif isinstance(exc, exceptions.NotAuthenticated) and _bearer(context):
        # A token was sent but is unknown, expired or revoked: DRF would say none was given.
        response.data = error_body(
            "invalid_token",
            "The access token is invalid, expired or revoked; get a new one from /o/token/.",
        )
    else:
        detail = getattr(exc, "detail", "")
        response.data = error_body(code, str(detail) if detail else code.replace("_", " "))
    return response


# --- Django's error views (config/urls.py) ----------------------------------------------------
# What DRF's handler never sees - an unexpected exception (500), a request Django refuses
# before any view (400: a bad Host header, a suspicious request) - still answers in the shape
# above under /api/; every other path keeps Django's pages.


def _for_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _json(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_api(request):
        return _json("invalid", "The request could not be read.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_api(request):
        return _json("permission_denied", "You are not allowed to do this.", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_api(request):
        return _json("not_found", "No such API endpoint.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _for_api(request):
        # No detail: the exception is in the server's log, not for the client.
        return _json("server_error", "Something went wrong on our side; try again later.", 500)
    return defaults.server_error(request)


def _bearer(context: dict) -> bool:
    request = context.get("request")
    header = request.META.get("HTTP_AUTHORIZATION", "") if request is not None else ""
    return header.lower().startswith("bearer ")


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "clashes": {"type": "array", "items": {"type": "object"}},
                "unavailable": {"type": "array", "items": {"type": "object"}},
                "next_free": {
                    "type": "array",
                    "description": (
                        "Booking a space once (POST /reservations/) refused as taken or "
                        "closed: the same space's next free slots of the same length (up to "
                        "3, within 14 days and the booking horizon), in the location's zone"
                    ),
                    "items": {
                        "type": "object",
                        "required": ["start", "end"],
                        "properties": {
                            "start": {"type": "string", "format": "date-time"},
                            "end": {"type": "string", "format": "date-time"},
                        },
                    },
                },
            },
        }
    },
}

_ERROR_DESCRIPTIONS = {
    "400": "Invalid input",
    "401": "Not authenticated",
    "403": (
        "Not allowed: by the permissions (code `not_allowed` or `permission_denied`), by one "
        "of the person's limits at the location (code `limit_exceeded`: active bookings, hours "
        "per week, an overlapping booking; the message names the limit and what the person "
        "already holds), or by timing (code `too_soon`: inside the minimum notice, or beyond "
        "the person's booking window)"
    ),
    "404": "Not found",
    "409": (
        "Conflict: the slot is taken (code `conflict`, with `clashes`), the space or its "
        "location is closed then (code `closed`, the closure's reason as the message); "
        "booking once, both carry `next_free`, the space's next free slots of the same length; "
        "check-in outside the booking's window or to a released booking (code "
        "`check_in_closed`, the window in the message), an action on a booking still "
        "awaiting approval (code `needs_approval`), an approval decision for a booking that "
        "is not awaiting one (code `already_decided`), or a stale version (code `stale`)"
    ),
    "429": "Rate limit exceeded",
    "500": "Server error (the same shape; the details are in the server's log)",
}


def document_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: every operation documents the error shape, so
    clients (and the schemathesis run) can rely on it for every status, not only 2xx."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in _ERROR_DESCRIPTIONS.items():
                operation["responses"].setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
