"""Shared pieces of the GoogleClient tests: a sandbox per test, configs pointing at it, and a
client whose waits move the sandbox clock instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from integrations.base import CalendarRef, EventData, ProviderConfig
from integrations.google import auth
from integrations.google.client import GoogleClient
from integrations.http import HttpClient, RetryPolicy
from integrations.sandbox.config import default_config
from integrations.sandbox.testing import SandboxHandle, start_sandbox

DOMAIN = "northwind.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
BLOCKER = f"reserva-blocker@{DOMAIN}"
ATLAS = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
BOREALIS = "c_188b2e1f8e3c5d42@resource.calendar.google.com"
COSMOS = "c_188c3f2a9f4d6e53@resource.calendar.google.com"
CLIENT_ID = "284719300001-reservasandbox.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-sandbox-demo-not-a-real-secret"
REDIRECT = "http://localhost:8000/calendars/oauth/google/callback/"
CALENDAR = "https://www.googleapis.com/auth/calendar"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
# Calendars as the client's calls name them: a Google calendar by its id, which for a room's
# resource calendar and a person's own calendar is also the mailbox's address.
ATLAS_CAL = CalendarRef(ATLAS, ATLAS)
BLOCKER_CAL = CalendarRef(BLOCKER, BLOCKER)
ALICE_CAL = CalendarRef(ALICE, ALICE)


def running_sandbox(
    tmp_path_factory: pytest.TempPathFactory, config: dict[str, Any] | None = None
) -> Iterator[SandboxHandle]:
    """A fresh sandbox (and an empty credentials cache) for one test; use in a fixture."""
    state_dir = tmp_path_factory.getbasetemp() / "google-client-sandbox"
    handle = start_sandbox(state_dir, config or default_config())
    auth.clear_service_account_tokens()
    try:
        yield handle
    finally:
        handle.stop()
        auth.clear_service_account_tokens()


def key_info(handle: SandboxHandle, name: str = "reserva-sync") -> dict[str, Any]:
    path = Path(handle.sandbox.state_dir) / "google" / f"{name}.json"
    return json.loads(path.read_text())


def make_config(handle: SandboxHandle, **changes: Any) -> ProviderConfig:
    config = ProviderConfig(
        kind="google",
        authority_url=f"{handle.base_url}/google/oauth2/token",
        authorization_url=f"{handle.base_url}/google/o/oauth2/v2/auth",
        api_base_url=f"{handle.base_url}/google/calendar/v3",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        service_account_key=key_info(handle),
        scopes=(CALENDAR,),
        delegated_user=BLOCKER,
        ca_bundle=str(handle.ca_file),
        timeout=10,
    )
    return replace(config, **changes)


def make_http(handle: SandboxHandle, waits: list[float], *, minute: bool = False) -> HttpClient:
    """An HttpClient whose waits are recorded and move the sandbox clock (a minute, when
    ``minute``: Google's per-user quota window, which a short backoff would not clear)."""

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        handle.sandbox.advance_clock(max(seconds, 61.0) if minute else seconds)

    return HttpClient(
        ca_bundle=str(handle.ca_file), timeout=10, policy=RetryPolicy(max_attempts=3), sleep=sleep
    )


def make_client(
    handle: SandboxHandle, waits: list[float] | None = None, *, minute: bool = False, **changes: Any
) -> GoogleClient:
    config = make_config(handle, **changes)
    return GoogleClient(config, make_http(handle, [] if waits is None else waits, minute=minute))


def control_session(handle: SandboxHandle) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    return session


def control(handle: SandboxHandle, method: str, path: str, **kwargs: Any) -> Any:
    response = control_session(handle).request(
        method, f"{handle.base_url}/_sandbox/api/google{path}", timeout=10, **kwargs
    )
    assert response.status_code < 400, response.text
    return response.json() if response.content else None


def stored_events(handle: SandboxHandle, calendar: str) -> list[dict[str, Any]]:
    """Every event in a calendar as the sandbox holds it (deleted ones included)."""
    return control(handle, "GET", f"/calendars/{calendar}/events")["value"]


def booking(reservation_id: int = 41, hour: int = 9, **changes: Any) -> EventData:
    start = START.replace(hour=hour)
    data = EventData(
        reservation_id=reservation_id,
        subject="Quarterly review",
        start=start,
        end=start + timedelta(hours=1),
        body="Booked in Reserva",
        location="Atlas (4th floor)",
        time_zone="Europe/London",
    )
    return replace(data, **changes)


def request_log(handle: SandboxHandle, service: str = "google-calendar") -> list[dict[str, Any]]:
    """The sandbox's request log for one service (no secrets in it), oldest first."""
    response = control_session(handle).get(
        f"{handle.base_url}/_sandbox/api/log",
        params={"service": service, "limit": "2000"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["value"]
