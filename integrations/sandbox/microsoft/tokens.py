"""Access tokens: RS256 JWTs shaped like Entra's v1 Graph tokens, and their verification.

An application token carries ``roles`` (the app's application permissions) and
``idtyp: app``; a delegated token carries ``scp`` and the signed-in user's ``oid``/``upn``.
Graph verifies the signature with the sandbox's key and the expiry on the sandbox clock.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization

from .state import App, Mailbox, MicrosoftState

if TYPE_CHECKING:
    from ..server import Sandbox

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_RESOURCES = (GRAPH_AUDIENCE, "00000003-0000-0000-c000-000000000000")
# Checking an RS256 signature costs about as much as the rest of a batch item: the claims of
# this many checked tokens are kept (per sandbox), and their expiry checked on every use.
VERIFIED_CLAIMS_KEPT = 1024


def sign_jwt(state: MicrosoftState, claims: dict[str, Any]) -> str:
    pem = state.signing_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": state.key_id, "typ": "JWT"})


def issue_access_token(
    sandbox: Sandbox, app: App, tenant_id: str, user: Mailbox | None, scopes: list[str]
) -> tuple[str, int]:
    """A Graph access token; lifetime randomised like Entra's (60-90 minutes by default)."""
    state: MicrosoftState = sandbox.services["microsoft"]  # type: ignore[assignment]
    base = int(sandbox.config["microsoft"].get("access_token_lifetime_seconds", 3900))
    lifetime = max(60, base + random.randint(-900, 900)) if base >= 3600 else base
    now = int(sandbox.clock.timestamp())
    claims: dict[str, Any] = {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": app.client_id,
        "app_displayname": app.display_name,
        "tid": tenant_id,
        "ver": "1.0",
        "uti": secrets.token_urlsafe(16),
    }
    if user is None:
        claims |= {
            "idtyp": "app",
            "oid": app.service_principal_id,
            "sub": app.service_principal_id,
            "roles": list(app.application_permissions),
        }
    else:
        claims |= {
            "idtyp": "user",
            "oid": user.id,
            "sub": user.id,
            "upn": user.address,
            "name": user.display_name,
            "scp": " ".join(scopes),
        }
    with state.lock:
        state.live_token_ids.add(claims["uti"])
    return sign_jwt(state, claims), lifetime


def expire_access_tokens(state: MicrosoftState) -> int:
    """Every access token issued so far is expired from now on (as if its lifetime had
    ended); clients must get new ones. Returns how many were live."""
    with state.lock:
        count = len(state.live_token_ids)
        state.expired_token_ids |= state.live_token_ids
        state.live_token_ids = set()
    return count


@dataclass
class Principal:
    """Who is calling Graph, from a verified access token."""

    app_id: str
    tenant_id: str
    permissions: set[str]
    user_id: str | None  # None for an application token

    @property
    def is_app(self) -> bool:
        return self.user_id is None


class TokenInvalid(Exception):
    """The bearer token cannot be used; ``str(exc)`` is Graph's message (no token in it)."""


def verify_access_token(sandbox: Sandbox, token: str | None) -> Principal:
    state: MicrosoftState = sandbox.services["microsoft"]  # type: ignore[assignment]
    if not token:
        raise TokenInvalid("Access token is empty.")
    if token.count(".") != 2:
        raise TokenInvalid(
            "IDX14100: JWT is not well formed, there are no dots (.). The token needs to be in "
            "JWS or JWE Compact Serialization Format."
        )
    claims = state.verified_claims.get(token)
    if claims is None:
        try:
            claims = jwt.decode(
                token,
                state.signing_key.public_key(),
                algorithms=["RS256"],
                audience=GRAPH_RESOURCES,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenInvalid("Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid("Invalid signature.") from exc
        if len(state.verified_claims) >= VERIFIED_CLAIMS_KEPT:
            state.verified_claims.clear()  # tokens live an hour: a rare, cheap reset
        state.verified_claims[token] = claims
    if claims["exp"] <= sandbox.clock.timestamp() or claims.get("uti") in state.expired_token_ids:
        raise TokenInvalid("Lifetime validation failed, the token is expired.")
    if claims.get("idtyp") == "app":
        return Principal(claims["appid"], claims["tid"], set(claims.get("roles", [])), None)
    return Principal(
        claims["appid"], claims["tid"], set(claims.get("scp", "").split()), claims["oid"]
    )
