"""The Microsoft identity platform (v2.0 endpoints), as msal sees it.

Routes under ``/{tenant}/``: the OpenID configuration document, the signing keys, the
authorize endpoint (a small sign-in page, or immediate sign-in when ``login_hint`` names a
configured user and auto-consent is on) and the token endpoint for client credentials,
authorization code (single use, PKCE, RS256 id token with the nonce, client_info) and refresh
tokens (rotated on every use, expiring after the idle lifetime, revocable). Refusals carry the
documented AADSTS codes; see the README's strictness list.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from ..core import Request, Response, Router
from .authorize import OIDC_SCOPES, authorize, b64url, ms_state, short_scopes, tenant_or_error
from .errors import IDENTITY, identity_error
from .state import App, RefreshGrant
from .tokens import GRAPH_RESOURCES, issue_access_token, sign_jwt

if TYPE_CHECKING:
    from ..server import Sandbox

T = r"/(?P<tenant>[A-Za-z0-9.\-]+)"


def openid_configuration(request: Request, sandbox: Sandbox) -> Response:
    found = tenant_or_error(request, ms_state(sandbox))
    if isinstance(found, Response):
        return found
    tid = found.id if found else "{tenantid}"
    path_tenant = found.id if found else request.params["tenant"]
    base = f"{sandbox.base_url}/{path_tenant}"
    return Response.json(
        200,
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{sandbox.base_url}/{tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{sandbox.base_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        },
    )


def keys(request: Request, sandbox: Sandbox) -> Response:
    state = ms_state(sandbox)
    numbers = state.signing_key.public_key().public_numbers()

    def b64int(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    key = {
        "kty": "RSA",
        "use": "sig",
        "kid": state.key_id,
        "x5t": state.key_id,
        "n": b64int(numbers.n),
        "e": b64int(numbers.e),
        "issuer": f"{sandbox.base_url}/{{tenantid}}/v2.0",
    }
    return Response.json(200, {"keys": [key]})


# -- token -----------------------------------------------------------------------------


def _client_auth(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:]).decode()
        except ValueError:
            decoded = ":"
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret")


def token(request: Request, sandbox: Sandbox) -> Response:
    state = ms_state(sandbox)
    found = tenant_or_error(request, state)
    if isinstance(found, Response):
        return found
    form = request.form()
    client_id, secret = _client_auth(request, form)
    app = state.app(client_id)
    if app is None or (found and app.tenant_id != found.id):
        where = found.display_name if found else "the directory"
        return identity_error(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' "
            f"was not found in the directory '{where}'. This can happen if the application "
            "has not been installed by the administrator of the tenant or consented to by any "
            "user in the tenant. You might have sent your authentication request to the wrong "
            "tenant.",
        )
    if not secret and not form.get("client_assertion"):
        return identity_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following "
            "parameter: 'client_assertion' or 'client_secret'.",
        )
    if not secret or not secrets.compare_digest(secret, app.client_secret):
        return identity_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret "
            "being sent in the request is the client secret value, not the client secret ID, "
            f"for a secret added to app '{app.client_id}'.",
        )
    grant = form.get("grant_type")
    if grant == "client_credentials":
        return _client_credentials(app, form, sandbox)
    if grant == "authorization_code":
        return _authorization_code(app, form, sandbox)
    if grant == "refresh_token":
        return _refresh(app, form, sandbox)
    return identity_error(
        400,
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant}'.",
    )


def _client_credentials(app: App, form: dict[str, str], sandbox: Sandbox) -> Response:
    scopes = form.get("scope", "").split()
    graph_default = [f"{r}/.default" for r in GRAPH_RESOURCES]
    if len(scopes) != 1 or scopes[0] not in graph_default:
        shown = " ".join(scopes)
        if len(scopes) == 1 and scopes[0].endswith("/.default"):
            return identity_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named "
                f"{scopes[0][: -len('/.default')]} was not found in the tenant.",
            )
        return identity_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {shown} is not "
            "valid. Client credential flows must have a scope value with /.default suffixed "
            "to the resource identifier (application ID URI).",
        )
    access, lifetime = issue_access_token(sandbox, app, app.tenant_id, user=None, scopes=[])
    return _token_response({"access_token": access, "expires_in": lifetime})


def _token_response(data: dict[str, Any]) -> Response:
    body = {"token_type": "Bearer", "expires_in": data["expires_in"]}
    body["ext_expires_in"] = data["expires_in"]
    body |= data
    return Response.json(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def _pkce_ok(code: dict[str, Any], verifier: str | None) -> bool:
    challenge = code.get("code_challenge")
    if not challenge:
        return True
    if not verifier:
        return False
    if code.get("method") == "S256":
        computed = b64url(hashlib.sha256(verifier.encode()).digest())
        return secrets.compare_digest(computed, challenge)
    return secrets.compare_digest(verifier, challenge)


def _authorization_code(app: App, form: dict[str, str], sandbox: Sandbox) -> Response:
    state = ms_state(sandbox)
    with state.lock:
        code = state.auth_codes.get(form.get("code", ""))
        if code is None or code["client_id"] != app.client_id:
            return identity_error(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        if code["redeemed"]:
            return identity_error(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already "
                "redeemed, please retry with a new valid code or use an existing refresh token.",
            )
        if code["expires"] < sandbox.clock.timestamp():
            return identity_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token "
                "has expired due to inactivity. Send a new interactive authorization request "
                "for this user and resource.",
            )
        if form.get("redirect_uri") != code["redirect_uri"]:
            return identity_error(
                400,
                "invalid_grant",
                500112,
                "The reply address does not match the reply "
                "address provided when requesting Authorization code.",
            )
        if not _pkce_ok(code, form.get("code_verifier")):
            return identity_error(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the "
                "code_challenge supplied in the authorization request.",
            )
        code["redeemed"] = True
    return _user_tokens(
        app,
        code["tenant_id"],
        code["user_id"],
        code["scopes"],
        form,
        sandbox,
        nonce=code.get("nonce"),
    )


def _refresh(app: App, form: dict[str, str], sandbox: Sandbox) -> Response:
    state = ms_state(sandbox)
    idle_days = float(sandbox.config["microsoft"].get("refresh_token_idle_days", 90))
    with state.lock:
        grant = state.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id != app.client_id:
            return identity_error(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        if grant.revoked:
            return identity_error(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being "
                "revoked, a fresh auth token is needed. The user might have changed or reset "
                "their password.",
            )
        if grant.redeemed:
            return identity_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token "
                "has expired due to inactivity. Send a new interactive authorization request "
                "for this user and resource.",
            )
        idle = (sandbox.clock.now() - grant.last_used).total_seconds()
        if idle > idle_days * 86400:
            return identity_error(
                400,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. "
                f"The token was issued on {grant.last_used.isoformat()} and was inactive for "
                f"{int(idle_days)}.00:00:00.",
            )
        # Rotation: the new token replaces the old one, which stops working.
        grant.redeemed = True
        scopes = form.get("scope", "").split() or grant.scopes
    return _user_tokens(app, grant.tenant_id, grant.user_id, scopes, form, sandbox)


def _user_tokens(
    app: App,
    tenant_id: str,
    user_id: str,
    scopes: list[str],
    form: dict[str, str],
    sandbox: Sandbox,
    nonce: str | None = None,
) -> Response:
    state = ms_state(sandbox)
    user = state.mailbox(user_id)
    assert user is not None
    graph_scopes = [
        s for s in short_scopes(scopes) if s not in OIDC_SCOPES and s in app.delegated_permissions
    ]
    access, lifetime = issue_access_token(sandbox, app, tenant_id, user=user, scopes=graph_scopes)
    data: dict[str, Any] = {
        "scope": " ".join(graph_scopes + [s for s in scopes if s in OIDC_SCOPES]),
        "access_token": access,
        "expires_in": lifetime,
    }
    if "offline_access" in scopes:
        refresh = b64url(secrets.token_bytes(64))
        with state.lock:
            state.refresh_tokens[refresh] = RefreshGrant(
                app.client_id, tenant_id, user.id, scopes, sandbox.clock.now()
            )
        data["refresh_token"] = refresh
    if "openid" in scopes:
        now = int(sandbox.clock.timestamp())
        claims = {
            "aud": app.client_id,
            "iss": f"{sandbox.base_url}/{tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.address,
            "sub": b64url(hashlib.sha256(f"{user.id}{app.client_id}".encode()).digest()),
            "tid": tenant_id,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        data["id_token"] = sign_jwt(state, claims)
    if form.get("client_info") == "1":
        info = json.dumps({"uid": user.id, "utid": tenant_id}).encode()
        data["client_info"] = b64url(info)
    return _token_response(data)


def register(router: Router, sandbox: Sandbox) -> None:
    routes = [
        ("GET", f"{T}/v2.0/\\.well-known/openid-configuration", openid_configuration, "openid"),
        ("GET", f"{T}/discovery/v2.0/keys", keys, "keys"),
        ("GET", f"{T}/oauth2/v2.0/authorize", authorize, "authorize"),
        ("POST", f"{T}/oauth2/v2.0/authorize", authorize, "authorize"),
        ("POST", f"{T}/oauth2/v2.0/token", token, "token"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, handler, service=IDENTITY, name=f"identity {name}")
