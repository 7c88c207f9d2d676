"""Google's error shapes, for Calendar v3 and for the OAuth endpoints.

Calendar v3 answers every refusal with one JSON shape (Calendar API "Handle API errors"
guide, https://developers.google.com/workspace/calendar/api/guides/errors)::

    {"error": {"code": 404, "message": "Not Found",
               "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
               "status": "NOT_FOUND"}}

The OAuth token and revoke endpoints use the RFC 6749 shape instead
(``{"error": "invalid_grant", "error_description": "..."}``). Handlers raise
:class:`ApiError` / :class:`OAuthError`; the wrappers in ``api.py`` and ``oauth.py`` turn them
into responses, so deep code can refuse a request without threading responses back up.
"""

from __future__ import annotations

from typing import Any

from ..core import Request, Response

# The canonical gRPC status name Google puts next to each HTTP code.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

# The framework's generic error codes (faults, unknown paths) mapped to Google's reasons.
FRAMEWORK_REASONS = {
    "InternalServerError": ("backendError", "Backend Error"),
    "ServiceUnavailable": ("backendError", "Backend Error"),
    "Request_UnsupportedQuery": ("notFound", "Not Found"),
    "NotFound": ("notFound", "Not Found"),
    "Request_BadRequest": ("badRequest", "Method Not Allowed"),
}


class ApiError(Exception):
    """A Calendar v3 refusal: HTTP status, Google ``reason`` and message."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        item_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain
        self.extra = extra or {}
        self.headers = headers or {}
        # Some errors carry a shorter text in errors[0].message ("Invalid Credentials").
        self.item_message = item_message

    def response(self) -> Response:
        return api_error(
            self.status,
            self.reason,
            self.message,
            self.domain,
            self.extra,
            self.headers,
            self.item_message,
        )


class OAuthError(Exception):
    """A token-endpoint refusal in the RFC 6749 shape Google's OAuth server uses."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> Response:
        return Response.json(
            self.status,
            {"error": self.error, "error_description": self.description},
            {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"},
        )


def api_error(
    status: int,
    reason: str,
    message: str,
    domain: str = "global",
    extra: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    item_message: str | None = None,
) -> Response:
    """The Calendar v3 error body for one refusal."""
    item: dict[str, Any] = {"domain": domain, "reason": reason, "message": item_message or message}
    item.update(extra or {})
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [item],
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return Response.json(status, body, headers)


def format_framework_error(
    status: int, code: str, message: str, request: Request | None
) -> Response:
    """Error formatter hook for the server: faults and unknown paths in Google's shape."""
    reason, text = FRAMEWORK_REASONS.get(code, (code, message))
    if code == "Request_UnsupportedQuery" and request is not None:
        text = f"Not Found: {request.method} {request.path}"
    return api_error(status, reason, text if status != 500 else "Backend Error")


def not_found(what: str = "Not Found") -> ApiError:
    return ApiError(404, "notFound", what)


def bad_request(message: str, reason: str = "invalid", **extra: str) -> ApiError:
    return ApiError(400, reason, message, extra=extra or None)


def required(message: str, location: str | None = None) -> ApiError:
    extra = {"locationType": "parameter", "location": location} if location else None
    return ApiError(400, "required", message, extra=extra)


def forbidden(message: str = "Forbidden", reason: str = "forbidden") -> ApiError:
    return ApiError(403, reason, message)
