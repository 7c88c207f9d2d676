"""Where a connection alias may send a credential: the ``PROVIDER_ENDPOINT_ALLOWLIST``.

Reserva sends a credential alias's client secret (or a token signed with its service-account
key) to the connection alias's authority URL, and people's sign-in to its authorization URL.
A connection alias is edited by people who may not even see the credential, so its URLs are
checked twice: when the alias is saved (a form error) and when a client is built from it (an
``EndpointRefused`` that pauses the binding), so a row written some other way never gets a
secret sent to it.

An allowlist entry is a host name, which allows https on port 443, or an origin
(``scheme://host[:port]``), which allows exactly that scheme, host and port (the only way to
allow http or another port: the sandbox, an on-premises server). A URL is allowed when its
scheme, host and port equal an entry's: no suffix or wildcard match, so
``graph.microsoft.com.evil.test`` is not ``graph.microsoft.com``; a URL with user info
(``https://graph.microsoft.com@evil.test/``) or anything but a plain host is refused outright.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

SETTING = "PROVIDER_ENDPOINT_ALLOWLIST"
# The connection alias's fields that decide where a credential goes or whom it trusts.
URL_FIELDS = ("authority_url", "authorization_url", "api_base_url", "batch_url")
ENDPOINT_FIELDS = (*URL_FIELDS, "ca_bundle")
PERMISSION = "calendars.manage_provider_endpoints"
DEFAULT_PORTS = {"https": 443, "http": 80}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def may_manage(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether ``user`` may set a connection alias's URLs and CA bundle (superusers may)."""
    return user.has_perm(PERMISSION)


def _host(hostname: str | None) -> str:
    # "graph.microsoft.com." is the same name as "graph.microsoft.com" to a resolver.
    return (hostname or "").lower().rstrip(".")


def _entry(text: str) -> Origin | None:
    text = text.strip()
    if not text:
        return None
    try:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            return None
        return Origin(scheme, _host(parts.hostname), parts.port or DEFAULT_PORTS[scheme])
    except ValueError:
        return None


def allowed_origins() -> set[Origin]:
    """The setting, parsed; entries that are not a host or an origin allow nothing."""
    return {origin for text in settings.PROVIDER_ENDPOINT_ALLOWLIST if (origin := _entry(text))}


def refusal(url: str) -> str:
    """Why ``url`` may not receive a credential ("" when it may)."""
    if any(char.isspace() or char == "\\" or ord(char) < 32 for char in url):
        return "This URL holds spaces, backslashes or control characters."
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return "Only https (or an http origin named in the allowlist) is allowed."
        if "@" in parts.netloc:
            return "A URL with a user name or password in it is not allowed."
        host = _host(parts.hostname)
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # a bad port or a broken [IPv6] host
        return "This URL's host or port cannot be read."
    if not host:
        return "This URL has no host."
    if Origin(scheme, host, port) in allowed_origins():
        return ""
    shown = host if (scheme, port) == ("https", 443) else f"{scheme}://{host}:{port}"
    return (
        f"{shown} is not in the {SETTING} setting. Reserva sends the provider's client "
        "secret there, so whoever deploys Reserva must allow it first (README: Provider "
        "endpoints)."
    )
