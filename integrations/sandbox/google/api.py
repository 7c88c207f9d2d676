"""The gate every Calendar v3 call passes: credentials, scopes, quota, parameters, body.

:func:`endpoint` wraps a handler for one discovery method (``calendar.events.insert``...). In
order, as Google's front end answers them:

1. a bearer token (``Authorization`` header or ``oauth_token`` parameter): missing gives 401
   ``required``, unknown, expired or revoked gives 401 ``authError``;
2. the token's scopes against the method's ``scopes`` in the discovery document: 403
   ``insufficientPermissions``;
3. the per-user quota (default 600 requests a minute; each batch part counts once): 403
   ``rateLimitExceeded`` (domain ``usageLimits``) or 429, as configured;
4. query parameters and the JSON body against the discovery document (``schema.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import Request, Response
from . import schema
from .errors import ApiError
from .service import AccessToken, GoogleService

if TYPE_CHECKING:
    from ..server import Sandbox

SERVICE = "google-calendar"
INVALID_TOKEN_CHALLENGE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'  # noqa: S105 - a header, not a secret
DEVCONSOLE = "See https://developers.google.com/identity/sign-in/web/devconsole-project."


@dataclass
class Call:
    """One authenticated, validated Calendar v3 call."""

    request: Request
    google: GoogleService
    token: AccessToken
    params: dict[str, Any]
    body: Any

    @property
    def principal(self) -> str:
        return self.token.principal

    def path(self, name: str) -> str:
        from urllib.parse import unquote

        return unquote(self.request.params[name])


def authenticate(google: GoogleService, request: Request) -> AccessToken:
    raw = request.bearer_token() or request.arg("oauth_token") or request.arg("access_token")
    for name in ("oauth_token", "access_token"):
        if name in request.query:
            # The server logs the query string; a token there must not reach the log.
            request.query[name] = ["***"]
    header = {"location": "Authorization", "locationType": "header"}
    challenge = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    if not raw:
        raise ApiError(
            401,
            "required",
            "Request is missing required authentication credential. Expected OAuth 2 access "
            f"token, login cookie or other valid authentication credential. {DEVCONSOLE}",
            extra=header,
            headers=challenge,
            item_message="Login Required.",
        )
    with google.lock:
        token = google.access_tokens.get(raw)
    if token is None or token.expires_at <= google.now():
        raise ApiError(
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            f"login cookie or other valid authentication credential. {DEVCONSOLE}",
            extra=header,
            headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE},
            item_message="Invalid Credentials",
        )
    return token


def rate_limited(google: GoogleService) -> ApiError:
    status = int(google.settings.get("rate_limit_status", 403))
    return ApiError(
        429 if status == 429 else 403,
        "rateLimitExceeded",
        "Rate Limit Exceeded",
        domain="usageLimits",
    )


def endpoint(
    method_id: str,
) -> Callable[[Callable[[Call], Response]], Callable[[Request, Any], Response]]:
    """Decorate a Calendar v3 handler with the checks in the module docstring."""
    scopes = schema.method_scopes(method_id)
    takes_body = "request" in schema.method(method_id)

    def wrap(handler: Callable[[Call], Response]) -> Callable[[Request, Any], Response]:
        def run(request: Request, sandbox: Sandbox) -> Response:
            google: GoogleService = sandbox.services["google"]  # type: ignore[assignment]
            try:
                token = authenticate(google, request)
                if not token.scopes & scopes:
                    raise ApiError(
                        403,
                        "insufficientPermissions",
                        "Request had insufficient authentication scopes.",
                        item_message="Insufficient Permission",
                    )
                if sandbox.enter_limit(request, ("google", token.principal)) is not None:
                    raise rate_limited(google)
                query = {
                    k: v
                    for k, v in request.query.items()
                    if k not in ("oauth_token", "access_token")
                }
                params = schema.check_query(method_id, query)
                body = schema.check_body(method_id, request.body) if takes_body else None
                return handler(Call(request, google, token, params, body))
            except ApiError as exc:
                return exc.response()

        run.__name__ = handler.__name__
        run.method_id = method_id  # type: ignore[attr-defined]
        return run

    return wrap


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    headers = {"ETag": payload["etag"]} if isinstance(payload.get("etag"), str) else None
    return Response.json(status, payload, headers)
