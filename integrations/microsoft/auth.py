"""Access tokens for Graph through msal: the app's own (client credentials) and a person's.

- Application tokens: one ``ConfidentialClientApplication`` per (authority, client id,
  secret) and process, kept in a module-level map, so msal's in-memory cache serves the
  token until it is within five minutes of expiry. Keying on a digest of the secret too
  means a corrected secret takes effect at once instead of reusing the app built with the
  wrong one.
- A person's tokens: their serialized ``SerializableTokenCache`` (stored encrypted by the
  caller) is loaded into a fresh app, ``acquire_token_silent_with_error`` refreshes when
  needed, and a changed cache (refresh tokens rotate on every use) is handed back through
  ``UserCredentials.changed`` / ``.token`` for the caller to write under a row lock.

msal talks to the identity platform through its ``http_client``: a ``requests.Session`` with
``trust_env = False`` (this machine's REQUESTS_CA_BUNDLE would otherwise override
``verify``) and ``verify`` set to the connection alias's CA bundle. ``instance_discovery`` is
off: Reserva always names its tenant, and the discovery call would go to
login.microsoftonline.com even for a private authority. A shared ``http_cache`` keeps msal
from fetching the OpenID configuration again for every new app instance.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from ..base import AuthenticationFailed, ProviderConfig, TokenRevoked, UserCredentials
from .clouds import GRAPH_HOSTS
from .errors import msal_error, transport_error

# The app's scope follows the host of the alias's API base URL when it is one of Graph's
# national clouds (``clouds.GRAPH_HOSTS``). Anything else (the sandbox, a proxy) is addressed
# by its own URL but still asks for the public Graph resource, as tokens for
# graph.microsoft.com are what a test double or a forwarding proxy accepts.
DEFAULT_GRAPH_RESOURCE = "https://graph.microsoft.com"
DEFAULT_DELEGATED_SCOPES = ("Calendars.ReadWrite",)
# msal adds these itself and refuses them in a scope list.
RESERVED_SCOPES = {"openid", "profile", "offline_access"}

_APPS: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_HTTP_CACHE: dict[Any, Any] = {}
_LOCK = threading.Lock()


def authority(config: ProviderConfig) -> str:
    return f"{config.authority_url.rstrip('/')}/{config.tenant_id}"


def graph_resource(config: ProviderConfig) -> str:
    parts = urlsplit(config.api_base_url)
    if (parts.hostname or "").lower() in GRAPH_HOSTS:
        return f"https://{parts.hostname.lower()}"
    return DEFAULT_GRAPH_RESOURCE


def app_scopes(config: ProviderConfig) -> list[str]:
    """Client credentials take exactly ``{resource}/.default``."""
    return [f"{graph_resource(config)}/.default"]


def delegated_scopes(config: ProviderConfig, scopes: tuple[str, ...] | list[str] = ()) -> list:
    chosen = [s for s in (scopes or config.scopes or DEFAULT_DELEGATED_SCOPES)]
    chosen = [s for s in chosen if s not in RESERVED_SCOPES and not s.endswith("/.default")]
    return chosen or list(DEFAULT_DELEGATED_SCOPES)


def msal_session(config: ProviderConfig) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = config.ca_bundle or True
    return session


def build_app(
    config: ProviderConfig,
    token_cache: msal.TokenCache | None = None,
    http_cache: dict | None = None,
) -> msal.ConfidentialClientApplication:
    """A new msal app; raises our errors (msal fetches the OpenID configuration here).

    ``http_cache`` defaults to one shared by every app of the process: discovery documents,
    and 400 answers to token requests, which msal replays for 60 seconds to the same request
    (harmless for a person's refresh token, whose request changes with every rotation).
    """
    try:
        return msal.ConfidentialClientApplication(
            config.client_id,
            client_credential=config.client_secret,
            authority=authority(config),
            instance_discovery=False,
            http_client=msal_session(config),
            http_cache=_HTTP_CACHE if http_cache is None else http_cache,
            token_cache=token_cache,
            timeout=config.timeout,
        )
    except requests.RequestException as exc:
        raise transport_error(exc, "the Microsoft sign-in endpoint") from None
    except ValueError as exc:
        # msal reports an unknown tenant (AADSTS90002) as a ValueError while it reads the
        # tenant's OpenID configuration; its text holds a URL and a status, never a secret.
        raise AuthenticationFailed(
            "The tenant was not found at the authority URL. Check the tenant id and the "
            "connection alias's authority URL.",
            code="AADSTS90002" if "90002" in str(exc) or "400" in str(exc) else "authority",
        ) from None


def _app_key(config: ProviderConfig) -> tuple[str, str, str]:
    secret = hashlib.sha256(config.client_secret.encode()).hexdigest()
    return (authority(config), config.client_id, secret)


def application_app(
    config: ProviderConfig, store: MutableMapping | None = None
) -> msal.ConfidentialClientApplication:
    apps = _APPS if store is None else store
    key = _app_key(config)
    with _LOCK:
        app = apps.get(key)
        if app is None:
            # Its own HTTP cache: msal replays a refused client-credentials request for 60
            # seconds, which would hide an administrator's fix (consent just granted).
            app = apps[key] = build_app(config, http_cache={})
    return app


def application_token(
    config: ProviderConfig, *, fresh: bool = False, store: MutableMapping | None = None
) -> str:
    """The app's Graph token (client credentials), from msal's cache unless ``fresh``."""
    app = application_app(config, store)
    if fresh:
        # acquire_token_for_client has no force_refresh; dropping the cached token is how
        # to get a new one after Graph refused it (revoked, signing key rolled, clock skew).
        for item in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            app.token_cache.remove_at(item)
    try:
        result = app.acquire_token_for_client(app_scopes(config))
    except requests.RequestException as exc:
        raise transport_error(exc, "the Microsoft sign-in endpoint") from None
    if not result or "access_token" not in result:
        with _LOCK:
            # A refused app is dropped so the next attempt (after a fix) asks Entra again.
            (_APPS if store is None else store).pop(_app_key(config), None)
        raise msal_error(result or {})
    return result["access_token"]


def load_cache(token: dict[str, Any] | None) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    if token:
        cache.deserialize(json.dumps(token))
    return cache


def user_token(
    config: ProviderConfig,
    creds: UserCredentials,
    scopes: tuple[str, ...] | list[str] = (),
    *,
    fresh: bool = False,
) -> str:
    """A person's Graph token from their stored msal cache, refreshed when needed.

    When msal changed the cache (a refresh rotates the refresh token), ``creds.token`` gets
    the new material and ``creds.changed`` is set: the caller must store it.
    """
    cache = load_cache(creds.token)
    app = build_app(config, token_cache=cache)
    accounts = app.get_accounts(username=creds.account_email) or app.get_accounts()
    if not accounts:
        raise TokenRevoked(
            f"No Microsoft sign-in is stored for {creds.account_email}; connect the calendar "
            "again.",
            code="no_account",
        )
    try:
        result = app.acquire_token_silent_with_error(
            delegated_scopes(config, scopes), accounts[0], force_refresh=fresh
        )
    except requests.RequestException as exc:
        raise transport_error(exc, "the Microsoft sign-in endpoint") from None
    finally:
        if cache.has_state_changed:
            creds.token = json.loads(cache.serialize())
            creds.changed = True
    if result is None:
        raise TokenRevoked(
            f"The stored Microsoft sign-in for {creds.account_email} has no usable refresh "
            "token; connect the calendar again.",
            code="no_refresh_token",
        )
    if "access_token" not in result:
        raise msal_error(result, user=True)
    return result["access_token"]


def clear_application_tokens() -> None:
    """Forget every cached app (tests; after an administrator changes a credential)."""
    with _LOCK:
        _APPS.clear()
