"""Access tokens for Calendar v3 through google-auth: the service account's and a person's.

- **Service account with domain-wide delegation.** ``Credentials.from_service_account_info``
  with ``subject`` = the delegated user (a person who can write to the room calendars; the
  resource's own email is the calendar id, never the subject). One credentials object per
  (key, subject, token URL, scopes) and process, kept in a module-level map, so google-auth's
  cached token serves every client until it is close to expiry. The token URL is the
  connection alias's when set (a private endpoint or the sandbox), else the key's
  ``token_uri``.
- **A person's token** (the OAuth web-server flow, ``oauth.py``): the stored authorized-user
  info plus the client secret from the credential alias make a
  ``google.oauth2.credentials.Credentials``; an expired access token is refreshed and the new
  one handed back through ``UserCredentials.changed`` / ``.token``, for the caller to store.

google-auth talks to the token endpoint through ``google.auth.transport.requests.Request`` on a
``requests.Session`` with ``trust_env = False`` (this machine's REQUESTS_CA_BUNDLE would
otherwise override ``verify``) and ``verify`` = the connection alias's CA bundle.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from typing import Any

import google.auth.transport.requests as google_requests
import requests
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from ..base import AuthenticationFailed, ProviderConfig, TokenRevoked, UserCredentials
from .errors import service_account_error, transport_error, user_refresh_error

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
# Identity scopes belong to a person's sign-in; a service account asks for API scopes only.
IDENTITY_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    }
)

_CREDENTIALS: dict[tuple, tuple[service_account.Credentials, threading.Lock]] = {}
_LOCK = threading.Lock()


class _Request(google_requests.Request):
    """google-auth's transport with the connection alias's timeout (its default is 120 s)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method, body, headers, timeout or self._timeout, **kwargs)


def auth_session(config: ProviderConfig) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = config.ca_bundle or True
    return session


def transport(config: ProviderConfig) -> google_requests.Request:
    return _Request(auth_session(config), config.timeout)


def service_scopes(config: ProviderConfig) -> list[str]:
    chosen = [s for s in config.scopes if s not in IDENTITY_SCOPES]
    return chosen or [CALENDAR_SCOPE]


def token_url(config: ProviderConfig, fallback: str = "") -> str:
    return config.authority_url or fallback or GOOGLE_TOKEN_URL


def service_account_email(config: ProviderConfig) -> str:
    return str((config.service_account_key or {}).get("client_email") or "the service account")


def _key_digest(key: dict[str, Any]) -> str:
    # The private key itself never becomes a dict key or a log line, only its digest.
    return hashlib.sha256(str(key.get("private_key") or "").encode()).hexdigest()


def _build(config: ProviderConfig) -> service_account.Credentials:
    key = config.service_account_key
    if not key:
        raise AuthenticationFailed(
            "The credential alias holds no Google service-account key; upload the JSON key.",
            code="no_key",
        )
    if key.get("type", "service_account") != "service_account":
        raise AuthenticationFailed(
            "The stored Google key is not a service-account key (its type is "
            f"{str(key.get('type'))[:40]!r}); download a JSON key of the service account.",
            code="bad_key",
        )
    info = dict(key, token_uri=token_url(config, str(key.get("token_uri") or "")))
    try:
        creds = service_account.Credentials.from_service_account_info(
            info, scopes=service_scopes(config), subject=config.delegated_user or None
        )
    except (ValueError, TypeError, KeyError):
        # The exception text may quote the key; say what is wrong without it.
        raise AuthenticationFailed(
            "The Google service-account key is not valid (a field is missing or the private "
            "key cannot be read). Download a new JSON key and store it in the credential alias.",
            code="bad_key",
        ) from None
    return creds


def service_account_token(config: ProviderConfig, *, fresh: bool = False) -> str:
    """The service account's access token (as the delegated user), refreshed when needed."""
    key = config.service_account_key or {}
    cache_key = (
        str(key.get("client_email") or ""),
        str(key.get("private_key_id") or ""),
        _key_digest(key),
        config.delegated_user.lower(),
        token_url(config, str(key.get("token_uri") or "")),
        tuple(service_scopes(config)),
        config.ca_bundle or "",
    )
    with _LOCK:
        entry = _CREDENTIALS.get(cache_key)
        if entry is None:
            entry = _CREDENTIALS[cache_key] = (_build(config), threading.Lock())
    creds, lock = entry
    with lock:
        if fresh or not creds.valid:
            try:
                creds.refresh(transport(config))
            except auth_exceptions.RefreshError as exc:
                raise service_account_error(
                    exc, subject=config.delegated_user, account=service_account_email(config)
                ) from None
            except auth_exceptions.TransportError as exc:
                raise transport_error(exc, "the Google token endpoint") from None
        return str(creds.token)


def clear_service_account_tokens() -> None:
    """Forget every cached credential (tests; after an administrator changes a key)."""
    with _LOCK:
        _CREDENTIALS.clear()


# -- a person's token ----------------------------------------------------------------------


def _expiry(value: Any) -> datetime | None:
    """google-auth keeps expiry as a naive UTC datetime."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def user_info(creds: user_credentials.Credentials, previous: dict[str, Any]) -> dict[str, Any]:
    """The authorized-user info Reserva stores: no client secret (it stays in the alias)."""
    info = dict(previous)
    info.update(
        token=creds.token,
        refresh_token=creds.refresh_token or previous.get("refresh_token"),
        token_uri=creds.token_uri,
        client_id=creds.client_id,
        scopes=list(creds.granted_scopes or creds.scopes or previous.get("scopes") or []),
        expiry=creds.expiry.replace(tzinfo=UTC).isoformat() if creds.expiry else None,
    )
    info.pop("client_secret", None)
    return info


def user_token(config: ProviderConfig, person: UserCredentials, *, fresh: bool = False) -> str:
    """A person's access token, refreshed when expired (or ``fresh``); see module doc."""
    stored = dict(person.token or {})
    if not stored.get("refresh_token"):
        raise TokenRevoked(
            f"No Google refresh token is stored for {person.account_email}; connect the "
            "calendar again.",
            code="no_refresh_token",
        )
    creds = user_credentials.Credentials(
        token=stored.get("token") if not fresh else None,
        refresh_token=stored["refresh_token"],
        token_uri=token_url(config, str(stored.get("token_uri") or "")),
        client_id=stored.get("client_id") or config.client_id,
        client_secret=config.client_secret,
        scopes=stored.get("scopes") or None,
        expiry=_expiry(stored.get("expiry")),
    )
    if creds.valid:
        return str(creds.token)
    try:
        creds.refresh(transport(config))
    except auth_exceptions.RefreshError as exc:
        raise user_refresh_error(exc, account=person.account_email) from None
    except auth_exceptions.TransportError as exc:
        raise transport_error(exc, "the Google token endpoint") from None
    person.token = user_info(creds, stored)
    person.changed = True
    return str(creds.token)
