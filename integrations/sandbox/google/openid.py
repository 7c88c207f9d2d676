"""OpenID pieces of Google's sign-in: ID tokens, signing keys (JWKS), discovery, userinfo.

ID tokens are RS256 JWTs with Google's claims (``iss`` https://accounts.google.com, ``aud`` and
``azp`` the client id, ``sub``, ``email``, ``email_verified``, ``hd``, ``nonce`` when asked),
signed with a key kept in the state dir and published at ``/google/oauth2/v3/certs``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..core import Request, Response
from .service import GoogleService

if TYPE_CHECKING:
    from ..server import Sandbox

ISSUER = "https://accounts.google.com"
SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
IDENTITY_SCOPES = {"openid", *SCOPE_ALIASES.values()}
INVALID_TOKEN_CHALLENGE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'  # noqa: S105 - a header, not a secret


def _google(sandbox: Sandbox) -> GoogleService:
    return sandbox.services["google"]  # type: ignore[return-value]


def signing_key(google: GoogleService) -> tuple[rsa.RSAPrivateKey, str]:
    """The key that signs ID tokens; kept in the state dir so its kid survives restarts."""
    cached = getattr(google, "_signing_key", None)
    if cached:
        return cached
    path = google.sandbox.state_dir / "google" / "oidc-signing-key.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        key = serialization.load_pem_private_key(
            path.read_bytes(), None, unsafe_skip_rsa_key_validation=True
        )
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.public_key().public_numbers()
    kid = hashlib.sha1(str(numbers.n).encode()).hexdigest()  # noqa: S324 - an identifier
    google._signing_key = (key, kid)  # type: ignore[attr-defined]
    return key, kid


def id_token(google: GoogleService, user: str, client_id: str, nonce: str | None) -> str:
    key, kid = signing_key(google)
    now = int(google.now().timestamp())
    person = google.directory.users.get(user, {})
    claims = {
        "iss": ISSUER,
        "azp": client_id,
        "aud": client_id,
        "sub": _subject_id(user),
        "hd": google.directory.domain,
        "email": user,
        "email_verified": True,
        "name": person.get("name", user),
        "iat": now,
        "exp": now + 3600,
    }
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _subject_id(email: str) -> str:
    """A stable numeric ``sub`` for a user, like Google's 21-digit account ids."""
    return str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def certs(request: Request, sandbox: Sandbox) -> Response:
    key, kid = signing_key(_google(sandbox))
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
    }
    return Response.json(200, {"keys": [jwk]})


def openid_configuration(request: Request, sandbox: Sandbox) -> Response:
    base = f"{sandbox.base_url}/google"
    return Response.json(
        200,
        {
            "issuer": ISSUER,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/oauth2/token",
            "userinfo_endpoint": f"{base}/v1/userinfo",
            "revocation_endpoint": f"{base}/oauth2/revoke",
            "jwks_uri": f"{base}/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": [
                "aud",
                "email",
                "email_verified",
                "exp",
                "iat",
                "iss",
                "name",
                "sub",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ],
        },
    )


def userinfo(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    with google.lock:
        access = google.access_tokens.get(request.bearer_token() or "")
    if access is None or access.expires_at <= google.now():
        return Response.json(
            401,
            {"error": "invalid_request", "error_description": "Invalid Credentials"},
            {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE},
        )
    if not access.scopes & IDENTITY_SCOPES:
        return Response.json(
            403, {"error": "insufficient_scope", "error_description": "Insufficient Permission"}
        )
    person = google.directory.users.get(access.principal, {})
    info: dict[str, Any] = {"sub": _subject_id(access.principal)}
    if SCOPE_ALIASES["profile"] in access.scopes or "openid" in access.scopes:
        name = person.get("name", access.principal)
        info.update(name=name, given_name=name.split()[0], family_name=" ".join(name.split()[1:]))
    if SCOPE_ALIASES["email"] in access.scopes:
        info.update(email=access.principal, email_verified=True, hd=google.directory.domain)
    return Response.json(200, info)


def tokeninfo(request: Request, sandbox: Sandbox) -> Response:
    google = _google(sandbox)
    with google.lock:
        access = google.access_tokens.get(request.arg("access_token") or "")
    if access is None or access.expires_at <= google.now():
        return Response.json(400, {"error": "invalid_token", "error_description": "Invalid Value"})
    left = int((access.expires_at - google.now()).total_seconds())
    return Response.json(
        200,
        {
            "azp": access.client_id,
            "aud": access.client_id,
            "scope": " ".join(sorted(access.scopes)),
            "exp": str(int(access.expires_at.timestamp())),
            "expires_in": str(left),
            "email": access.principal,
        },
    )
