"""The delegated authorization-code flow (with PKCE) for personal tokens and space binding.

``begin_authorization`` returns msal's flow dict: the caller keeps all of it in the user's
session and redirects to ``flow["auth_uri"]``. ``complete_authorization`` takes that dict and
the callback's parameters and returns a :class:`~integrations.base.TokenGrant` whose
``token`` is the person's serialized msal token cache (a dict), ready to store encrypted.

The response mode defaults to ``query`` (the code comes back on a GET): a ``form_post``
callback is a cross-site POST, which does not carry a ``SameSite=Lax`` session cookie, so
the flow stored in the session would be out of reach. msal's PKCE, state and nonce checks
apply either way.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from ..base import AuthenticationFailed, ConsentMissing, ProviderConfig, TokenGrant
from . import auth
from .errors import aadsts_codes, msal_error, transport_error


class AuthorizationRejected(AuthenticationFailed):
    """The sign-in came back unusable: forged or stale state, a reused code, a wrong
    redirect URI, or the person cancelled. Start the connection again."""


def begin_authorization(
    config: ProviderConfig,
    redirect_uri: str,
    scopes: tuple[str, ...] | list[str] = (),
    login_hint: str | None = None,
    *,
    response_mode: str = "query",
    prompt: str | None = None,
) -> dict[str, Any]:
    """msal's auth-code flow dict (``auth_uri``, ``state``, PKCE verifier, nonce...)."""
    app = auth.build_app(config)
    with warnings.catch_warnings():
        # msal recommends form_post; see the module docstring for why the default is query.
        warnings.simplefilter("ignore")
        return app.initiate_auth_code_flow(
            auth.delegated_scopes(config, scopes),
            redirect_uri=redirect_uri,
            login_hint=login_hint,
            response_mode=response_mode,
            prompt=prompt,
        )


def complete_authorization(
    config: ProviderConfig, flow: dict[str, Any], query_params: Mapping[str, Any]
) -> TokenGrant:
    """Redeem the code; raises AuthorizationRejected, ConsentMissing or TokenRevoked."""
    params = {k: (v[0] if isinstance(v, list | tuple) else v) for k, v in query_params.items()}
    if params.get("error"):
        raise _authorize_error(params)
    cache = auth.load_cache(None)
    app = auth.build_app(config, token_cache=cache)
    try:
        result = app.acquire_token_by_auth_code_flow(dict(flow), params)
    except ValueError:
        # msal raises ValueError for a state mismatch or a flow that is not this one's:
        # a forged callback, or a second tab that replaced the flow in the session.
        raise AuthorizationRejected(
            "The sign-in answer did not match this browser session (state mismatch). Start "
            "the connection again from the same browser tab.",
            code="state_mismatch",
        ) from None
    except requests.RequestException as exc:
        raise transport_error(exc, "the Microsoft sign-in endpoint") from None
    if "access_token" not in result:
        raise _token_error(result)
    claims = result.get("id_token_claims") or {}
    email = str(claims.get("preferred_username") or claims.get("email") or "")
    expires_in = result.get("expires_in")
    return TokenGrant(
        account_email=email,
        token=json.loads(cache.serialize()),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None,
        scopes=tuple(str(result.get("scope") or "").split()),
    )


def _authorize_error(params: dict[str, Any]) -> Exception:
    error = str(params.get("error"))
    description = str(params.get("error_description") or "")
    if "AADSTS65001" in description or error == "consent_required":
        return ConsentMissing(
            "Microsoft asked for consent that was not given. An administrator can grant admin "
            "consent for the app in Microsoft Entra (API permissions).",
            code="AADSTS65001",
        )
    if error == "access_denied":
        return AuthorizationRejected("The sign-in was cancelled or refused. Try again.", code=error)
    return AuthorizationRejected(
        f"Microsoft refused the sign-in ({error}): {description.split(chr(13))[0][:300]}",
        code=error,
    )


def _token_error(result: dict[str, Any]) -> Exception:
    codes = aadsts_codes(result)
    if codes & {54005, 70008, 9002313}:
        return AuthorizationRejected(
            "This sign-in answer was already used or has expired. Start the connection again.",
            code=f"AADSTS{min(codes)}",
        )
    if codes & {500112, 50011}:
        return AuthorizationRejected(
            "The redirect URI does not match the one registered for the app. Check the public "
            "base URL and the app registration's redirect URIs in Microsoft Entra.",
            code=f"AADSTS{min(codes)}",
        )
    if codes & {501481}:
        return AuthorizationRejected(
            "The sign-in answer failed the PKCE check. Start the connection again.",
            code="AADSTS501481",
        )
    return msal_error(result, user=True)
