"""Sign-in with Microsoft and Google (django-allauth's OpenID Connect provider).

Where the apps come from. allauth would keep a client secret in plaintext in its ``SocialApp``
table, so Reserva never uses that table (``list_apps`` ignores it and the admin hides it).
An app is built in memory, for each request, from one of two sources:

- the environment: ``MICROSOFT_SIGNIN_CLIENT_ID`` / ``_CLIENT_SECRET`` / ``_TENANT`` (and
  ``_AUTHORITY``), ``GOOGLE_SIGNIN_CLIENT_ID`` / ``_CLIENT_SECRET`` (and ``_SERVER_URL``);
- otherwise an active ``CalendarProvider`` with ``sign_in_enabled``: its credential alias gives
  the client id and the (decrypted at use) secret, its connection alias the identity endpoint
  and the CA bundle to trust. A connection alias whose endpoints ``PROVIDER_ENDPOINT_ALLOWLIST``
  does not allow offers no sign-in (``remote.checked_endpoints``).

Who may sign in. Only an existing, active user whose address (``User.email`` or one of their
allauth ``EmailAddress`` rows) is the one the provider vouches for: Google's ``email`` with
``email_verified``; for Microsoft the ``email`` or ``preferred_username`` claim of an ID token
whose issuer is the configured tenant (allauth checks ``iss`` against the tenant's discovery
document, so a token from another tenant never gets here). The first sign-in links the
provider account to the user; later ones find it by its ``sub``. Nobody gets a new account
unless ``SIGNIN_CREATES_ACCOUNTS`` is on.

TLS. allauth makes its server-side calls (discovery, token, JWKS, userinfo) through
``get_requests_session()``. Ours passes the connection alias's CA bundle as ``verify`` on each
call to that alias's origin: a per-call ``verify`` beats ``REQUESTS_CA_BUNDLE``, which a
session's own ``verify`` does not.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from allauth.socialaccount.providers.openid_connect import views as oidc_views
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from integrations.base import EndpointRefused
from integrations.registry import sign_in_kinds

from .crypto import DecryptionError
from .models import CalendarProvider, CredentialAlias, ProviderKind
from .remote import checked_endpoints

log = logging.getLogger(__name__)

OIDC = "openid_connect"  # allauth's provider class id; our apps are its sub-providers
PROVIDER_IDS = {ProviderKind.MICROSOFT: "microsoft", ProviderKind.GOOGLE: "google"}
LABELS = {"microsoft": "Microsoft", "google": "Google"}
GOOGLE_ISSUER_URL = "https://accounts.google.com"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class SignInApp:
    """One configured sign-in provider, with its secret in memory only."""

    provider_id: str  # "microsoft" or "google": part of the redirect URI
    client_id: str
    secret: str = field(repr=False)  # never in a log line or a traceback's locals summary
    server_url: str = ""  # the OpenID issuer; discovery is at <server_url>/.well-known/...
    ca_bundle: str = ""
    timeout: int = 10
    source: str = "environment"

    @property
    def origin(self) -> str:
        return _origin(self.server_url)

    def social_app(self) -> SocialApp:
        """An unsaved allauth ``SocialApp`` (it is never written to the database)."""
        return SocialApp(
            provider=OIDC,
            provider_id=self.provider_id,
            name=LABELS[self.provider_id],
            client_id=self.client_id,
            secret=self.secret,
            settings={
                "server_url": self.server_url,
                # The ID token carries the claims we need; Microsoft's userinfo endpoint
                # lives on Graph and adds nothing for sign-in.
                "fetch_userinfo": False,
                "oauth_pkce_enabled": True,
            },
        )


def microsoft_server_url(authority: str, tenant: str) -> str:
    """The v2.0 issuer of one tenant (``/common`` would fail allauth's issuer check)."""
    return f"{authority.rstrip('/')}/{tenant}/v2.0"


def google_server_url(authorization_url: str) -> str:
    """Google's issuer from a connection alias's authorization URL.

    ``https://accounts.google.com/o/oauth2/v2/auth`` gives ``https://accounts.google.com``;
    the sandbox's ``<base>/google/o/oauth2/v2/auth`` gives ``<base>/google``.
    """
    head, sep, _ = authorization_url.partition("/o/oauth2")
    return head if sep else GOOGLE_ISSUER_URL


def _from_environment() -> list[SignInApp]:
    apps = []
    ms_id = settings.MICROSOFT_SIGNIN_CLIENT_ID
    if ms_id and settings.MICROSOFT_SIGNIN_CLIENT_SECRET and settings.MICROSOFT_SIGNIN_TENANT:
        apps.append(
            SignInApp(
                "microsoft",
                ms_id,
                settings.MICROSOFT_SIGNIN_CLIENT_SECRET,
                microsoft_server_url(
                    settings.MICROSOFT_SIGNIN_AUTHORITY, settings.MICROSOFT_SIGNIN_TENANT
                ),
            )
        )
    if settings.GOOGLE_SIGNIN_CLIENT_ID and settings.GOOGLE_SIGNIN_CLIENT_SECRET:
        apps.append(
            SignInApp(
                "google",
                settings.GOOGLE_SIGNIN_CLIENT_ID,
                settings.GOOGLE_SIGNIN_CLIENT_SECRET,
                settings.GOOGLE_SIGNIN_SERVER_URL.rstrip("/"),
            )
        )
    return apps


def _from_provider(provider: CalendarProvider) -> SignInApp | None:
    connection = provider.connection
    try:
        # Only the fields sign-in needs: a service-account key is not decrypted for nothing.
        credential = CredentialAlias.objects.only(
            "kind", "tenant_id", "client_id", "client_secret"
        ).get(pk=provider.credential_id)
    except DecryptionError:
        log.warning(
            "Sign-in with provider %s is off: its client secret cannot be decrypted", provider.pk
        )
        return None
    provider.credential = credential
    try:
        checked_endpoints(provider)
    except EndpointRefused as refused:
        # The secret would go to an address PROVIDER_ENDPOINT_ALLOWLIST does not name.
        log.warning("Sign-in with provider %s is off: %s", provider.pk, refused.message)
        return None
    secret = credential.client_secret
    if not (credential.client_id and secret):
        return None
    if provider.kind == ProviderKind.MICROSOFT:
        if not credential.tenant_id:
            return None
        server_url = microsoft_server_url(
            connection.endpoint("authority_url"), credential.tenant_id
        )
    else:
        server_url = google_server_url(connection.endpoint("authorization_url"))
    return SignInApp(
        PROVIDER_IDS[provider.kind],
        credential.client_id,
        secret,
        server_url,
        ca_bundle=connection.ca_bundle,
        timeout=connection.timeout_seconds,
        source=f"provider {provider.name}",
    )


def configured_apps() -> list[SignInApp]:
    """The sign-in apps in effect: the environment's, then providers for the other kinds."""
    apps = _from_environment()
    taken = {app.provider_id for app in apps}
    providers = CalendarProvider.objects.filter(
        is_active=True, sign_in_enabled=True, kind__in=sign_in_kinds()
    ).select_related("connection")
    for provider in providers:
        if PROVIDER_IDS[provider.kind] in taken:
            continue
        app = _from_provider(provider)
        if app:
            apps.append(app)
            taken.add(app.provider_id)
    return apps


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class ProviderSession(requests.Session):
    """A requests session that trusts each sign-in provider's own CA bundle, per call."""

    def __init__(self, trust: dict[str, tuple[str, int]], default_timeout: int) -> None:
        super().__init__()
        self._trust = trust
        self._default_timeout = default_timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        ca_bundle, timeout = self._trust.get(_origin(url), ("", self._default_timeout))
        kwargs.setdefault("timeout", timeout)
        if ca_bundle and kwargs.get("verify") is None:
            if not os.path.isfile(ca_bundle):
                # requests would raise OSError, which allauth does not expect; this one it
                # turns into its sign-in error page.
                raise requests.exceptions.SSLError(f"CA bundle not found: {ca_bundle}")
            kwargs["verify"] = ca_bundle
        return super().request(method, url, *args, **kwargs)


class SignInAdapter(DefaultSocialAccountAdapter):
    """allauth's social adapter for Reserva: apps without stored secrets, existing users only."""

    def list_apps(
        self, request: HttpRequest | None, provider: str | None = None, client_id: str | None = None
    ) -> list[SocialApp]:
        apps = []
        for app in configured_apps():
            if provider and provider not in (OIDC, app.provider_id):
                continue
            if client_id and client_id != app.client_id:
                continue
            apps.append(app.social_app())
        return apps

    def get_requests_session(self) -> requests.Session:
        trust = {app.origin: (app.ca_bundle, app.timeout) for app in configured_apps()}
        return ProviderSession(trust, default_timeout=settings.SOCIALACCOUNT_REQUESTS_TIMEOUT)

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if sociallogin.is_existing:
            return  # linked before; allauth still refuses an inactive user
        provider_id = sociallogin.account.provider
        label = LABELS.get(provider_id, provider_id)
        email = claimed_email(provider_id, sociallogin.account.extra_data)
        if not email:
            refuse(
                request,
                f"{label} did not tell Reserva a verified email address for your account, so "
                "Reserva cannot tell which account is yours. Sign in with your username and "
                "password instead.",
            )
        users = users_with_email(email)
        if len(users) > 1:
            refuse(
                request,
                f"More than one Reserva account uses {email}; ask a Reserva administrator to "
                "sort that out, or sign in with your username and password.",
            )
        if not users:
            if settings.SIGNIN_CREATES_ACCOUNTS:
                # allauth signs the person up with this address (is_open_for_signup below);
                # it reads only the "email" claim, which Microsoft may leave out.
                sociallogin.email_addresses = [
                    EmailAddress(email=email, verified=True, primary=True)
                ]
                return
            refuse(
                request,
                f"No active Reserva account uses {email}, so you cannot sign in with {label}. "
                "Ask a Reserva administrator to create your account or add this address to it.",
            )
        user = users[0]
        if request.user.is_authenticated and sociallogin.state.get("process") == "connect":
            if user.pk != request.user.pk:
                refuse(request, f"{email} belongs to another Reserva account.")
            return  # allauth connects it to the signed-in user
        sociallogin.connect(request, user)

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return settings.SIGNIN_CREATES_ACCOUNTS

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict) -> Any:
        user = super().populate_user(request, sociallogin, data)
        email = claimed_email(sociallogin.account.provider, sociallogin.account.extra_data)
        if email:
            user.email = email  # Microsoft's address is preferred_username, unseen by allauth
        return user


def claims_of(extra_data: dict[str, Any]) -> dict[str, Any]:
    """The identity claims allauth kept: userinfo if fetched, else the ID token's."""
    return extra_data.get("userinfo") or extra_data.get("id_token") or extra_data


def claimed_email(provider_id: str, extra_data: dict[str, Any]) -> str:
    """The address the provider vouches for, or "" when it does not vouch for one."""
    claims = claims_of(extra_data)
    if provider_id == "microsoft":
        # Entra sends no email_verified. Within one tenant (pinned by the issuer check) the
        # sign-in name and mail are set by the tenant's administrators, not by the user.
        candidates = [claims.get("email"), claims.get("preferred_username")]
    elif claims.get("email_verified") in (True, "true"):
        candidates = [claims.get("email")]
    else:
        candidates = []
    for value in candidates:
        if isinstance(value, str) and "@" in value.strip():
            return value.strip().lower()
    return ""


def users_with_email(email: str) -> list[Any]:
    """Active users who own ``email``: as their account address or a verified extra one."""
    User = get_user_model()
    owners = EmailAddress.objects.filter(email__iexact=email, verified=True).values("user_id")
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(email__iexact=email) | Q(pk__in=owners))
        .distinct()
        .order_by("pk")
    )


def refuse(request: HttpRequest, message: str) -> None:
    """Stop the sign-in and say why on the sign-in page."""
    messages.error(request, message)
    raise ImmediateHttpResponse(redirect("account_login"))


def _guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """allauth's view, with an unreachable or misbehaving provider told plainly (never a 500).

    allauth's callback already turns request errors into its error page; the login step fetches
    the discovery document outside any such handling.
    """

    def wrapper(request: HttpRequest, provider_id: str) -> HttpResponse:
        try:
            return view(request, provider_id=provider_id)
        except (requests.RequestException, KeyError, ValueError) as exc:
            label = LABELS.get(provider_id, provider_id)
            log.warning("Sign-in with %s failed: %s", label, type(exc).__name__)
            messages.error(
                request,
                f"Sign-in with {label} is not available right now (Reserva could not reach "
                "it). Try again later or sign in with your username and password.",
            )
            return redirect("account_login")

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


login = _guarded(oidc_views.login)
callback = _guarded(oidc_views.callback)


def hide_plaintext_secret_admin() -> None:
    """Take allauth's SocialApp (plaintext secret) and SocialToken pages out of the admin."""
    from allauth.socialaccount.models import SocialToken
    from django.contrib import admin

    for model in (SocialApp, SocialToken):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
