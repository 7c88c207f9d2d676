"""Error bodies in the Microsoft shapes.

Graph: ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}``. Identity platform (token endpoint): ``{"error",
"error_description": "AADSTSnnnn: ...\\r\\nTrace ID: ...", "error_codes": [n], "timestamp",
"trace_id", "correlation_id", "error_uri"}``. Messages never contain a secret or a token.
"""

from __future__ import annotations

import datetime as dt
import uuid

from ..core import Request, Response

GRAPH = "graph"
IDENTITY = "microsoft-identity"


def graph_error(
    status: int,
    code: str,
    message: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request_id = str(uuid.uuid4())
    client_request_id = (request.headers.get("client-request-id") if request else None) or (
        request_id
    )
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    extra = {"request-id": request_id, "client-request-id": client_request_id}
    return Response.json(status, body, extra | (headers or {}))


def identity_error(status: int, error: str, aadsts: int, message: str) -> Response:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{aadsts}: {message} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {stamp}"
    )
    body = {
        "error": error,
        "error_description": description,
        "error_codes": [aadsts],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }
    return Response.json(status, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def format_graph(status: int, code: str, message: str, request: Request | None) -> Response:
    """The sandbox's error formatter for the "graph" service (faults, 404s, throttling)."""
    return graph_error(status, code, message, request)


def format_identity(status: int, code: str, message: str, request: Request | None) -> Response:
    """Faults on the identity platform come back in the token endpoint's shape."""
    error = "temporarily_unavailable" if status >= 500 else "invalid_request"
    aadsts = {500: 90100, 503: 90033}.get(status, 900144)
    return identity_error(status, error, aadsts, message)
