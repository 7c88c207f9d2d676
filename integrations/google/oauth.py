"""A person's Google sign-in for their calendar: the OAuth 2.0 web-server flow.

``begin_authorization`` builds the authorization URL the browser is sent to; the caller keeps
``state`` and the PKCE ``code_verifier`` in the session. ``complete_authorization`` exchanges
the code for tokens and returns a :class:`~integrations.base.TokenGrant` whose ``token`` is
the authorized-user info to store (encrypted): refresh token, access token and expiry, token
URL, client id, scopes, never the client secret (that stays in the credential alias).
``revoke`` ends the grant at Google (revoking either token revokes both).

From Google's web-server guide (reference §1a): ``access_type=offline`` asks for a refresh
token, which Google only returns when the consent screen was shown, hence ``prompt=consent``
(a person reconnecting after a revocation gets a new one); ``include_granted_scopes=true``
keeps earlier grants (incremental authorization); PKCE with S256. The account's address
comes from the ID token (``openid email`` are added to the scopes); the ID token is read
without verifying its signature because it comes straight from the token endpoint over TLS
(OpenID Connect Core §3.1.3.7), but its audience must be our client id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..base import AuthenticationFailed, ProviderConfig, ProviderError, TokenGrant
from ..http import HttpClient
from .auth import CALENDAR_SCOPE, token_url
from .errors import oauth_error

GOOGLE_AUTHORIZATION_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"
SIGN_IN_SCOPES = ("openid", "email")
ISSUERS = {"https://accounts.google.com", "accounts.google.com"}


def _http(config: ProviderConfig, http: HttpClient | None) -> HttpClient:
    return http or HttpClient(ca_bundle=config.ca_bundle, timeout=config.timeout)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge); 64 URL-safe characters, within RFC 7636's 43-128."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def begin_authorization(
    config: ProviderConfig,
    redirect_uri: str,
    scopes: tuple[str, ...] | list[str],
    state: str,
    login_hint: str | None = None,
) -> tuple[str, str]:
    """The URL to send the browser to, and the PKCE code verifier to keep for the callback."""
    verifier, challenge = pkce_pair()
    wanted = list(dict.fromkeys([*SIGN_IN_SCOPES, *(scopes or (CALENDAR_SCOPE,))]))
    params = {
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(wanted),
        "access_type": "offline",
        "include_granted_scopes": "true",
        "prompt": "consent",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    base = config.authorization_url or GOOGLE_AUTHORIZATION_URL
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(params)}", verifier


def _claims(id_token: str) -> dict[str, Any]:
    try:
        payload = id_token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def userinfo_url(config: ProviderConfig) -> str:
    """Google's userinfo endpoint, or the one beside a private token URL (``.../v3/userinfo``)."""
    url = token_url(config)
    parts = urlsplit(url)
    if parts.hostname == "oauth2.googleapis.com":
        return GOOGLE_USERINFO_URL
    path = parts.path.rsplit("/", 1)[0] + "/v3/userinfo"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def revoke_url(config: ProviderConfig) -> str:
    """``.../token`` -> ``.../revoke`` (https://oauth2.googleapis.com/revoke for Google)."""
    url = token_url(config)
    return url.rsplit("/", 1)[0] + "/revoke"


def _account_email(config: ProviderConfig, answer: dict[str, Any], http: HttpClient) -> str:
    claims = _claims(str(answer.get("id_token") or ""))
    if claims:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if config.client_id not in audiences or claims.get("iss") not in ISSUERS:
            raise AuthenticationFailed(
                "Google's ID token was not issued to this OAuth client.", code="id_token"
            )
        if claims.get("email") and claims.get("email_verified", True):
            return str(claims["email"]).lower()
    response = http.request(
        "GET",
        userinfo_url(config),
        headers={"Authorization": f"Bearer {answer.get('access_token')}"},
    )
    if response.status_code == 200:
        email = str(response.json().get("email") or "")
        if email:
            return email.lower()
    raise AuthenticationFailed(
        "Google did not tell which account signed in; the sign-in needs the email scope.",
        code="no_email",
    )


def complete_authorization(
    config: ProviderConfig,
    redirect_uri: str,
    code: str,
    code_verifier: str,
    http: HttpClient | None = None,
) -> TokenGrant:
    """Exchange the callback's code for tokens (raises our errors, never with a secret)."""
    http = _http(config, http)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    response = http.request("POST", token_url(config), data=form)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200 or "access_token" not in answer:
        raise oauth_error(answer, response.status_code)
    if not answer.get("refresh_token"):
        raise ProviderError(
            "Google returned no refresh token, so Reserva could not keep calendar access. "
            "Connect again (the consent screen must be shown).",
            code="no_refresh_token",
        )
    email = _account_email(config, answer, http)
    scopes = tuple(str(answer.get("scope") or "").split())
    expires_at = datetime.now(UTC) + timedelta(seconds=int(answer.get("expires_in") or 3600))
    token = {
        "type": "authorized_user",
        "token": answer["access_token"],
        "refresh_token": answer["refresh_token"],
        "token_uri": token_url(config),
        "client_id": config.client_id,
        "scopes": list(scopes),
        "expiry": expires_at.isoformat(),
        "account": email,
    }
    return TokenGrant(account_email=email, token=token, expires_at=expires_at, scopes=scopes)


def revoke(config: ProviderConfig, token: dict[str, Any], http: HttpClient | None = None) -> None:
    """Revoke the grant at Google; an unknown or already revoked token counts as done."""
    value = token.get("refresh_token") or token.get("token")
    if not value:
        return
    response = _http(config, http).request("POST", revoke_url(config), data={"token": value})
    if response.status_code == 200:
        return
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code == 400 and answer.get("error") in ("invalid_token", "invalid_request"):
        return  # revoked already (by the person, or a password change)
    raise oauth_error(answer, response.status_code)
