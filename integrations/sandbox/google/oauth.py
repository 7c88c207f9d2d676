"""Google's OAuth 2.0 token endpoint (JWT bearer, authorization code, refresh) and revoke.

The authorize page is in ``authorize.py``; ID tokens, JWKS and userinfo in ``openid.py``.

Behaviour follows google-auth (``google/oauth2/_client.py``) and Google's OAuth guides as
collected in ``/work/shared/reference/google-calendar.md`` §1:

* JWT bearer (service accounts): RS256 checked against the account's key; ``iss`` a known
  service account, ``aud`` the token endpoint, ``exp - iat`` at most one hour and the token
  live now; ``sub`` (domain-wide delegation) must be a user of the Workspace domain, never a
  resource calendar or an outsider ("Invalid email or User ID"), and every scope must have
  been delegated (``unauthorized_client``). No refresh token.
* Authorization code: single use, PKCE (S256 or plain), redirect URI as at authorize; a
  refresh token only with ``access_type=offline`` when the consent screen was shown (first
  consent, new scopes or ``prompt=consent``).
* Refresh: a new access token, never a new refresh token. Revoke: POST ``token=``; revoking
  either token of a grant revokes both.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any

import jwt

from ..core import Request, Response, Router
from .errors import OAuthError
from .openid import IDENTITY_SCOPES, SCOPE_ALIASES, id_token
from .schema import discovery
from .service import AccessToken, GoogleService, RefreshGrant, random_token

if TYPE_CHECKING:
    from ..server import Sandbox

SERVICE = "google-oauth"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
)
MAX_ASSERTION_LIFETIME = 3600
# "A refresh token might stop working ... The user has not used the refresh token for six
# months" (Google OAuth guide, reference §1a); measured on the sandbox clock.
REFRESH_IDLE_LIMIT = dt.timedelta(days=183)
CLOCK_SKEW = 300
INVALID_DWD = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested."
)


def known_scopes() -> set[str]:
    return set(discovery()["auth"]["oauth2"]["scopes"]) | IDENTITY_SCOPES


def parse_scopes(raw: str | None) -> frozenset[str]:
    return frozenset(SCOPE_ALIASES.get(s, s) for s in (raw or "").split())


def _google(sandbox: Sandbox) -> GoogleService:
    return sandbox.services["google"]  # type: ignore[return-value]


# -- token endpoint --------------------------------------------------------------------------


def token(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    form = request.form()
    grant = form.get("grant_type")
    try:
        if not grant:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant == JWT_GRANT:
            issued = _jwt_bearer(google, form)
        elif grant == "authorization_code":
            issued = _authorization_code(google, request, form)
        elif grant == "refresh_token":
            issued = _refresh(google, request, form)
        else:
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
    except OAuthError as exc:
        return exc.response()
    return Response.json(200, issued, {"Cache-Control": "no-cache, no-store, max-age=0"})


def _issue(
    google: GoogleService,
    principal: str,
    client_id: str,
    scopes: frozenset[str],
    kind: str,
    refresh: str | None = None,
) -> tuple[AccessToken, dict[str, Any]]:
    lifetime = int(google.settings["access_token_lifetime_seconds"])
    access = AccessToken(
        token=random_token("ya29.sandbox-", 120),
        principal=principal,
        client_id=client_id,
        scopes=scopes,
        expires_at=google.now() + dt.timedelta(seconds=lifetime),
        kind=kind,
        refresh_token=refresh,
    )
    with google.lock:
        google.access_tokens[access.token] = access
    body = {"access_token": access.token, "expires_in": lifetime, "token_type": "Bearer"}
    return access, body


def _jwt_bearer(google: GoogleService, form: dict[str, str]) -> dict[str, Any]:
    assertion = form.get("assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
    account = google.directory.service_accounts.get(str(unverified.get("iss", "")).lower())
    if account is None:
        raise OAuthError(400, "invalid_grant", "Invalid grant: account not found")
    if header.get("alg") != "RS256":
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
    try:
        claims = jwt.decode(
            assertion,
            account.public_key,
            algorithms=["RS256"],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError:
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
    token_url = f"{google.sandbox.base_url}/google/oauth2/token"
    audience = claims.get("aud")
    if audience not in (*GOOGLE_TOKEN_AUDIENCES, token_url):
        raise OAuthError(
            400, "invalid_grant", "Invalid JWT: Failed audience check. The expected value was "
            f"{GOOGLE_TOKEN_AUDIENCES[0]}, but the actual value was {audience}.",
        )  # fmt: skip
    # The assertion's clock is the client's (real time), not the sandbox clock the control
    # API moves forward: after "two hours pass" a fresh assertion must still be accepted.
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if (
        not isinstance(iat, int | float)
        or not isinstance(exp, int | float)
        or exp - iat > MAX_ASSERTION_LIFETIME
        or exp <= iat
        or iat > now + CLOCK_SKEW
        or exp < now - CLOCK_SKEW
    ):
        raise OAuthError(
            400,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim.",
        )
    scopes = parse_scopes(claims.get("scope"))
    if not scopes or not scopes <= known_scopes():
        raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    subject = str(claims.get("sub") or "").lower()
    if subject and subject != account.email:
        # Domain-wide delegation: only users of the domain, never a resource calendar.
        if not google.directory.is_domain_user(subject):
            raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
        if not account.domain_wide_delegation or not scopes <= account.delegated_scopes:
            raise OAuthError(401, "unauthorized_client", INVALID_DWD)
        _, body = _issue(google, subject, account.client_id, scopes, "delegated")
    else:
        _, body = _issue(google, account.email, account.client_id, scopes, "service_account")
    return body


def _client(google: GoogleService, request: Request, form: dict[str, str]) -> str:
    """Authenticate the OAuth client (form fields or HTTP Basic); return its id."""
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            raise OAuthError(401, "invalid_client", "Unauthorized") from None
    client = google.directory.clients.get(client_id or "")
    if client is None:
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    if not secrets.compare_digest(secret or "", client.client_secret):
        raise OAuthError(401, "invalid_client", "Unauthorized")
    return client.client_id


def _authorization_code(
    google: GoogleService, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    client_id = _client(google, request, form)
    with google.lock:
        code = google.codes.get(form.get("code", ""))
        if code is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if code.used or code.expires_at < google.now() or code.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if code.challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError(400, "invalid_grant", "Missing code verifier.")
            if _challenge(verifier, code.challenge_method) != code.challenge:
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        code.used = True
    refresh = None
    if code.offline:
        refresh = random_token("1//sandbox-", 100)
        with google.lock:
            google.refresh_tokens[refresh] = RefreshGrant(
                refresh, code.user, client_id, code.scopes, last_used=google.now()
            )
    _, body = _issue(google, code.user, client_id, code.scopes, "user", refresh)
    body["scope"] = " ".join(sorted(code.scopes))
    if refresh:
        body["refresh_token"] = refresh
    if "openid" in code.scopes:
        body["id_token"] = id_token(google, code.user, client_id, code.nonce)
    return body


def _refresh(google: GoogleService, request: Request, form: dict[str, str]) -> dict[str, Any]:
    client_id = _client(google, request, form)
    with google.lock:
        grant = google.refresh_tokens.get(form.get("refresh_token", ""))
    now = google.now()
    idle = grant is not None and grant.last_used and now - grant.last_used > REFRESH_IDLE_LIMIT
    if grant is None or grant.revoked or grant.client_id != client_id or idle:
        raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
    grant.last_used = now
    scopes = grant.scopes
    if form.get("scope"):
        asked = parse_scopes(form["scope"])
        if not asked <= grant.scopes:
            raise OAuthError(400, "invalid_scope", "Bad Request")
        scopes = asked
    _, body = _issue(google, grant.user, client_id, scopes, "user", grant.token)
    body["scope"] = " ".join(sorted(scopes))
    if "openid" in scopes:
        body["id_token"] = id_token(google, grant.user, client_id, None)
    return body  # Google sends no new refresh token on refresh.


def _challenge(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# -- revoke -------------------------------------------------------------------------------------


def revoke(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    value = request.form().get("token") or request.arg("token") or ""
    with google.lock:
        access = google.access_tokens.get(value)
        grant = google.refresh_tokens.get(value)
        if grant is None and access is not None and access.refresh_token:
            grant = google.refresh_tokens.get(access.refresh_token)
        if (access is None and grant is None) or (grant is not None and grant.revoked):
            return OAuthError(400, "invalid_token", "Token expired or revoked").response()
        revoke_grant(google, grant, access)
    return Response.json(200, {})


def revoke_grant(
    google: GoogleService, grant: RefreshGrant | None, access: AccessToken | None
) -> None:
    """Revoke a grant and every access token minted from it; call with the lock held."""
    if access is not None:
        google.access_tokens.pop(access.token, None)
    if grant is not None:
        grant.revoked = True
        for key, item in list(google.access_tokens.items()):
            if item.refresh_token == grant.token:
                del google.access_tokens[key]


def register(router: Router, sandbox: Sandbox) -> None:
    from .authorize import authorize
    from .openid import certs, openid_configuration, tokeninfo, userinfo

    routes = [
        ("POST", "/google/oauth2/token", token, "token"),
        ("POST", "/google/oauth2/revoke", revoke, "revoke"),
        ("GET", "/google/o/oauth2/v2/auth", authorize, "authorize"),
        ("POST", "/google/o/oauth2/v2/auth", authorize, "authorize"),
        ("GET", "/google/o/oauth2/auth", authorize, "authorize"),
        ("GET", "/google/oauth2/v3/certs", certs, "certs"),
        ("GET", "/google/oauth2/v1/certs", certs, "certs"),
        (
            "GET",
            "/google/.well-known/openid-configuration",
            openid_configuration,
            "openid configuration",
        ),
        ("GET", "/google/v1/userinfo", userinfo, "userinfo"),
        ("GET", "/google/oauth2/v3/userinfo", userinfo, "userinfo"),
        ("GET", "/google/oauth2/v3/tokeninfo", tokeninfo, "tokeninfo"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, handler, service=SERVICE, name=f"google {name}")
    sandbox.path_services.append(("/google/oauth2", SERVICE))
    sandbox.path_services.append(("/google/o/", SERVICE))
