"""Shared fixtures for the calendars tests: a provider sandbox, and providers and bindings whose
aliases point at it (so the real clients talk to it over HTTPS, as in production).

- ``sandbox``: a fresh sandbox per test (``.base_url``, ``.ca_file``, ``.sandbox``);
- ``ms_provider`` / ``google_provider``: a Microsoft 365 / Google provider on it (the
  delegated user is the sandbox's ``reserva-blocker@`` account);
- ``ms_binding`` / ``google_binding``: a room bound to ``atlas@contoso.test`` / the Atlas
  resource calendar;
- ``remote_events(handle, provider_kind, calendar)``: every event the sandbox holds there.

Test modules may define their own ``sandbox`` fixture; theirs wins in that module.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from calendars import remote
from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
    SpaceCalendar,
)
from integrations.google import auth as google_auth
from integrations.microsoft import auth as microsoft_auth
from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from integrations.sandbox.testing import SandboxHandle, start_sandbox

MS_ROOM = "atlas@contoso.test"
MS_ROOM2 = "borealis@contoso.test"
MS_DELEGATE = "reserva-blocker@contoso.test"
GOOGLE_ROOM = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
GOOGLE_ROOM2 = "c_188b2e1f8e3c5d42@resource.calendar.google.com"
GOOGLE_DELEGATE = "reserva-blocker@northwind.test"
GOOGLE_CLIENT_ID = "284719300001-reservasandbox.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-sandbox-demo-not-a-real-secret"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/calendar"

_names = itertools.count(1)


def _clear_client_caches() -> None:
    remote._clients.clear()
    microsoft_auth.clear_application_tokens()
    google_auth.clear_service_account_tokens()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxHandle]:
    _clear_client_caches()
    handle = start_sandbox(tmp_path / "sandbox", None)
    try:
        yield handle
    finally:
        handle.stop()
        _clear_client_caches()


def control(handle: SandboxHandle, method: str, path: str, **kwargs: Any) -> Any:
    """Call the sandbox's control API (``/_sandbox/api/<path>``)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    response = session.request(
        method, f"{handle.base_url}/_sandbox/api/{path}", timeout=30, **kwargs
    )
    assert response.status_code < 400, response.text
    return response.json() if response.content else None


def remote_events(handle: SandboxHandle, kind: str, calendar: str) -> list[dict[str, Any]]:
    """Live events in a mailbox / calendar, as the sandbox holds them (deleted ones left out)."""
    if kind == ProviderKind.MICROSOFT:
        items = control(handle, "GET", f"microsoft/mailboxes/{calendar}/events")["value"]
        return [e for e in items if not e.get("isCancelled")]
    items = control(handle, "GET", f"google/calendars/{calendar}/events")["value"]
    return [e for e in items if e.get("status") != "cancelled"]


@pytest.fixture
def ms_provider(db, sandbox: SandboxHandle) -> CalendarProvider:
    n = next(_names)
    connection = ConnectionAlias.objects.create(
        name=f"Sandbox Microsoft {n}",
        kind=ProviderKind.MICROSOFT,
        authority_url=sandbox.base_url,
        authorization_url=sandbox.base_url,
        api_base_url=f"{sandbox.base_url}/v1.0",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    credential = CredentialAlias.objects.create(
        name=f"Sandbox Microsoft app {n}",
        kind=ProviderKind.MICROSOFT,
        tenant_id=DEMO_TENANT_ID,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        scopes="Calendars.ReadWrite",
    )
    return CalendarProvider.objects.create(
        name=f"Microsoft 365 sandbox {n}",
        kind=ProviderKind.MICROSOFT,
        connection=connection,
        credential=credential,
        delegated_user_email=MS_DELEGATE,
    )


@pytest.fixture
def google_provider(db, sandbox: SandboxHandle) -> CalendarProvider:
    n = next(_names)
    key_path = Path(sandbox.sandbox.state_dir) / "google" / "reserva-sync.json"
    connection = ConnectionAlias.objects.create(
        name=f"Sandbox Google {n}",
        kind=ProviderKind.GOOGLE,
        authority_url=f"{sandbox.base_url}/google/oauth2/token",
        authorization_url=f"{sandbox.base_url}/google/o/oauth2/v2/auth",
        api_base_url=f"{sandbox.base_url}/google/calendar/v3",
        ca_bundle=str(sandbox.ca_file),
        timeout_seconds=10,
    )
    credential = CredentialAlias.objects.create(
        name=f"Sandbox Google app {n}",
        kind=ProviderKind.GOOGLE,
        client_id=GOOGLE_CLIENT_ID,
        client_secret=GOOGLE_CLIENT_SECRET,
        service_account_key=json.loads(key_path.read_text()),
        scopes=GOOGLE_SCOPE,
    )
    return CalendarProvider.objects.create(
        name=f"Google sandbox {n}",
        kind=ProviderKind.GOOGLE,
        connection=connection,
        credential=credential,
        delegated_user_email=GOOGLE_DELEGATE,
    )


def bind(space, provider: CalendarProvider, resource: str, **extra: Any) -> SpaceCalendar:
    return SpaceCalendar.objects.create(
        space=space, provider=provider, resource_email=resource, calendar_name="Calendar", **extra
    )


@pytest.fixture
def ms_binding(ms_provider: CalendarProvider, make_space) -> SpaceCalendar:
    return bind(make_space(name="Atlas"), ms_provider, MS_ROOM)


@pytest.fixture
def google_binding(google_provider: CalendarProvider, make_space) -> SpaceCalendar:
    return bind(make_space(name="Atlas NY"), google_provider, GOOGLE_ROOM, calendar_id=GOOGLE_ROOM)
