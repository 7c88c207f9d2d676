"""Personal sync mode: people who connect their own Microsoft or Google account, and
a booking made for them."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import requests

from calendars import remote
from calendars.models import (
    SyncMode,
    SyncSettings,
    TokenStatus,
    UserToken,
)
from integrations.microsoft.oauth import begin_authorization, complete_authorization
from reservations import services
from tests.conftest import local, next_weekday

ALICE = "alice@contoso.test"


BOB = "bob@contoso.test"


REDIRECT = "http://localhost:8000/calendars/oauth/microsoft/callback/"


def connect(sandbox, provider, user) -> UserToken:
    """What the Connect page does: the delegated flow through the sandbox, token stored."""
    config = remote.provider_config(provider)
    flow = begin_authorization(config, REDIRECT, ("Calendars.ReadWrite",), login_hint=user.email)
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    answer = session.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    params = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    grant = complete_authorization(config, flow, params)
    token, _ = UserToken.objects.update_or_create(
        user=user,
        provider=provider,
        defaults={
            "account_email": grant.account_email,
            "token": grant.token,
            "status": TokenStatus.VALID,
        },
    )
    return token


def book(user, space, hour=10, **kwargs):
    start = local(space.location, next_weekday(3), hour)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(hours=1), **kwargs
    ).reservations[0]


def personal_mode():
    settings_row = SyncSettings.load()
    settings_row.mode = SyncMode.PERSONAL
    settings_row.save()


G_ALICE = "alice@northwind.test"


G_REDIRECT = "http://localhost:8000/calendars/oauth/google/callback/"


def connect_google(sandbox, provider, user) -> UserToken:
    """What the Connect page does for Google: the consent flow through the sandbox (it signs a
    configured user in from ``login_hint``), token stored."""
    from integrations.google import oauth as google_oauth

    config = remote.provider_config(provider)
    url, verifier = google_oauth.begin_authorization(
        config, G_REDIRECT, (google_oauth.CALENDAR_SCOPE,), "state", login_hint=user.email
    )
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    answer = session.get(url, allow_redirects=False, timeout=10)
    params = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    grant = google_oauth.complete_authorization(config, G_REDIRECT, params["code"], verifier)
    token, _ = UserToken.objects.update_or_create(
        user=user,
        provider=provider,
        defaults={
            "account_email": grant.account_email,
            "token": grant.token,
            "status": TokenStatus.VALID,
        },
    )
    return token
