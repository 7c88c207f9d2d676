"""The authorize page (``/google/o/oauth2/v2/auth``): choose an account, consent, redirect.

Client and redirect-URI errors are shown on an error page, as Google shows them, never sent
to an unchecked redirect URI. A configured user named by ``login_hint`` is signed in without
the page when ``auto_consent`` is on (tests). Consent is remembered per (user, client): the
refresh token only comes with ``access_type=offline`` when the consent screen was shown, that
is on first consent, for new scopes, or with ``prompt=consent`` (reference §1a).
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ..core import Request, Response
from .oauth import known_scopes, parse_scopes
from .service import AuthCode, GoogleService, random_token

if TYPE_CHECKING:
    from ..server import Sandbox


def _google(sandbox: Sandbox) -> GoogleService:
    return sandbox.services["google"]  # type: ignore[return-value]


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Google
(sandbox)</title><style>body{{font:15px system-ui,sans-serif;max-width:30rem;margin:3rem auto}}
button{{display:block;width:100%;margin:.4rem 0;padding:.6rem;font-size:15px}}</style></head>
<body><h1>Choose an account</h1><p>to continue to <b>{app}</b> (Google sandbox)</p>
<p>It wants: {scopes}</p><form method="post">{hidden}{buttons}
<button name="deny" value="1">Cancel</button></form></body></html>"""

_ERROR = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error 400</title>
</head><body><h1>Access blocked: authorization error</h1><p>Error 400: {error}</p>
<p>{detail}</p></body></html>"""


def authorize(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    params = {k: v[0] for k, v in request.query.items()}
    if request.method == "POST":
        params.update(request.form())
    client = google.directory.clients.get(params.get("client_id", ""))
    if client is None:
        return _error_page("invalid_client", "The OAuth client was not found.", 401)
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        return _error_page(
            "redirect_uri_mismatch",
            f"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 "
            f"policy. Request details: redirect_uri={redirect_uri}",
        )
    if params.get("response_type") != "code":
        return _redirect(
            redirect_uri, {"error": "unsupported_response_type", "state": params.get("state")}
        )
    scopes = parse_scopes(params.get("scope"))
    if not scopes or not scopes <= known_scopes():
        return _error_page(
            "invalid_scope", f"Some requested scopes were invalid: {params.get('scope')}"
        )
    method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
    if method not in ("", "plain", "S256"):
        return _error_page("invalid_request", "Invalid code_challenge_method.")
    if params.get("deny"):
        return _redirect(redirect_uri, {"error": "access_denied", "state": params.get("state")})
    user = (params.get("user") or "").lower()
    hint = (params.get("login_hint") or "").lower()
    if not user and hint in google.directory.users and google.settings["auto_consent"]:
        user = hint
    if user not in google.directory.users:
        return _choose_account(client.name or client.client_id, params, google)
    prompts = set((params.get("prompt") or "").split())
    with google.lock:
        granted = google.consents.setdefault((user, client.client_id), set())
        consent_shown = "consent" in prompts or not scopes <= granted
        granted |= scopes
        if params.get("include_granted_scopes") == "true":
            scopes = frozenset(granted)
        code = AuthCode(
            code=random_token("4/0sandbox-", 60),
            user=user,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            expires_at=google.now()
            + dt.timedelta(seconds=int(google.settings["auth_code_lifetime_seconds"])),
            # Reference §1a: a refresh token only for offline access when consent was shown.
            offline=params.get("access_type") == "offline" and consent_shown,
            challenge=params.get("code_challenge"),
            challenge_method=method or "plain",
            nonce=params.get("nonce"),
        )
        google.codes[code.code] = code
    return _redirect(
        redirect_uri,
        {"state": params.get("state"), "code": code.code, "scope": " ".join(sorted(scopes))},
    )


def _choose_account(app: str, params: dict[str, str], google: GoogleService) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k != "user"
    )
    buttons = "".join(
        f'<button name="user" value="{html.escape(email)}">{html.escape(u.get("name", email))} '
        f"&lt;{html.escape(email)}&gt;</button>"
        for email, u in google.directory.users.items()
    )
    page = _PAGE.format(
        app=html.escape(app),
        scopes=html.escape(params.get("scope", "")),
        hidden=hidden,
        buttons=buttons,
    )
    return Response.text(200, page, "text/html; charset=utf-8")


def _error_page(error: str, detail: str, status: int = 400) -> Response:
    page = _ERROR.format(error=html.escape(error), detail=html.escape(detail))
    return Response.text(status, page, "text/html; charset=utf-8")


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    return Response.empty(302, {"Location": f"{uri}{separator}{query}"})
