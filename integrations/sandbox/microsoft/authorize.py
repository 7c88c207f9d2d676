"""The identity platform's authorize endpoint: sign-in page, consent, code issue.

Checks the app and the redirect URI before anything else (an error page, never a redirect,
as Entra does), then redirects errors and the code back with ``state``; ``query``,
``fragment`` and ``form_post`` response modes. With ``auto_consent`` on and a ``login_hint``
naming a configured user, sign-in is immediate (what tests and msal scripts need);
otherwise a small page lets a person pick an account.
"""

from __future__ import annotations

import base64
import html
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ..core import Request, Response
from .errors import identity_error
from .state import MicrosoftState, Tenant
from .tokens import GRAPH_RESOURCES

if TYPE_CHECKING:
    from ..server import Sandbox

MULTI_TENANT = {"common", "organizations"}
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}


def ms_state(sandbox: Sandbox) -> MicrosoftState:
    return sandbox.services["microsoft"]  # type: ignore[return-value]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def tenant_or_error(request: Request, state: MicrosoftState) -> Tenant | Response | None:
    key = request.params["tenant"]
    if key.lower() in MULTI_TENANT:
        return None
    tenant = state.tenant(key)
    if tenant is None:
        return identity_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud.",
        )
    return tenant


def _error_page(status: int, aadsts: int, message: str) -> Response:
    body = (
        "<!doctype html><title>Sign in - error</title><h1>Sorry, but we're having trouble "
        f"signing you in.</h1><p>AADSTS{aadsts}: {html.escape(message)}</p>"
    )
    return Response.text(status, body, "text/html; charset=utf-8")


def _redirect(redirect_uri: str, mode: str, params: dict[str, str]) -> Response:
    if mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        page = (
            '<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="POST" action="{html.escape(redirect_uri)}">{fields}'
            "<noscript><button>Continue</button></noscript></form></body></html>"
        )
        return Response.text(200, page, "text/html; charset=utf-8")
    sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return Response.empty(302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"})


def _sign_in_page(params: dict[str, str], state: MicrosoftState, tenant_id: str) -> Response:
    users = [b for b in state.all_mailboxes() if b.kind == "user" and b.tenant_id == tenant_id]
    options = "".join(
        f'<option value="{html.escape(b.address)}">{html.escape(b.display_name)} '
        f"({html.escape(b.address)})</option>"
        for b in users
    )
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k != "login_hint"
    )
    page = (
        "<!doctype html><title>Sign in to your account (sandbox)</title>"
        "<h1>Sign in (Reserva sandbox)</h1><form method='POST'>"
        f"{hidden}<label>Account <select name='login_hint'>{options}</select></label> "
        "<p>Permissions requested: "
        f"{html.escape(params.get('scope', ''))}</p><button>Sign in and accept</button></form>"
    )
    return Response.text(200, page, "text/html; charset=utf-8")


def authorize(request: Request, sandbox: Sandbox) -> Response:
    state = ms_state(sandbox)
    params = {k: v[0] for k, v in request.query.items()}
    if request.method == "POST":
        params |= request.form()
    found = tenant_or_error(request, state)
    if isinstance(found, Response):
        return _error_page(400, 90002, f"Tenant '{request.params['tenant']}' not found.")
    client_id = params.get("client_id", "")
    app = state.app(client_id)
    if app is None or (found and app.tenant_id != found.id):
        return _error_page(
            400,
            700016,
            f"Application with identifier '{client_id}' was not found in the directory.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris:
        return _error_page(
            400,
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not "
            f"match the redirect URIs configured for the application '{app.client_id}'.",
        )
    mode = params.get("response_mode", "query")
    out: dict[str, str] = {}
    if "state" in params:
        out["state"] = params["state"]

    def fail(error: str, aadsts: int, message: str) -> Response:
        return _redirect(
            redirect_uri,
            mode,
            {"error": error, "error_description": f"AADSTS{aadsts}: {message}"} | out,
        )

    if params.get("response_type") != "code":
        return fail("unsupported_response_type", 70005, "The response_type is not supported.")
    method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
    if method and method not in ("S256", "plain"):
        return fail("invalid_request", 501491, "Invalid code_challenge_method.")
    scopes = params.get("scope", "").split()
    unknown = [s for s in short_scopes(scopes) if s not in app.delegated_permissions]
    if unknown and not all(s in OIDC_SCOPES for s in unknown):
        return fail(
            "invalid_client",
            65001,
            f"The user or administrator has not consented to use "
            f"the application with ID '{app.client_id}' for {', '.join(unknown)}.",
        )
    hint = params.get("login_hint", "")
    user = state.mailbox(hint) if hint else None
    tenant_id = found.id if found else app.tenant_id
    auto = sandbox.config["microsoft"].get("auto_consent", True)
    if user is None or user.kind != "user" or user.tenant_id != tenant_id:
        return _sign_in_page(params, state, tenant_id)
    if request.method == "GET" and not auto:
        return _sign_in_page(params, state, tenant_id)
    code = b64url(secrets.token_bytes(48))
    lifetime = int(sandbox.config["microsoft"].get("auth_code_lifetime_seconds", 600))
    with state.lock:
        state.auth_codes[code] = {
            "client_id": app.client_id,
            "tenant_id": tenant_id,
            "user_id": user.id,
            "redirect_uri": redirect_uri,
            "scopes": scopes,
            "nonce": params.get("nonce"),
            "code_challenge": params.get("code_challenge"),
            "method": method,
            "expires": sandbox.clock.timestamp() + lifetime,
            "redeemed": False,
        }
    return _redirect(redirect_uri, mode, {"code": code} | out | {"session_state": code[:36]})


def short_scopes(scopes: list[str]) -> list[str]:
    """'https://graph.microsoft.com/Calendars.ReadWrite' -> 'Calendars.ReadWrite'."""
    result = []
    for scope in scopes:
        for resource in GRAPH_RESOURCES:
            if scope.startswith(resource + "/"):
                scope = scope[len(resource) + 1 :]
        result.append(scope)
    return result
