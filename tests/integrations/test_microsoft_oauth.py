"""The delegated flow end to end through the sandbox's authorize and token endpoints, and
acting as the person afterwards: silent refresh written back, revoked and idle tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.base import (
    CalendarRef,
    ConsentMissing,
    EventData,
    ProviderConfig,
    TokenRevoked,
    UserCredentials,
)
from integrations.http import HttpClient
from integrations.microsoft.client import MicrosoftClient
from integrations.microsoft.oauth import (
    AuthorizationRejected,
    begin_authorization,
    complete_authorization,
)
from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from integrations.sandbox.testing import SandboxHandle, start_sandbox

ALICE = "alice@contoso.test"
ROOM = "atlas@contoso.test"
REDIRECT = "http://localhost:8000/calendars/oauth/microsoft/callback/"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.getbasetemp() / "ms-oauth-sandbox")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def config(sandbox: SandboxHandle) -> ProviderConfig:
    return ProviderConfig(
        kind="microsoft",
        authority_url=sandbox.base_url,
        authorization_url=sandbox.base_url,
        api_base_url=f"{sandbox.base_url}/v1.0",
        tenant_id=DEMO_TENANT_ID,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        scopes=("Calendars.ReadWrite",),
        ca_bundle=str(sandbox.ca_file),
        timeout=10,
    )


@pytest.fixture
def client(config: ProviderConfig) -> MicrosoftClient:
    http = HttpClient(ca_bundle=config.ca_bundle, timeout=10)
    return MicrosoftClient(config, http, token_cache_store={})


def browse(sandbox: SandboxHandle, url: str) -> dict[str, str]:
    """What the person's browser does: follow the authorize URL back to the callback."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    response = session.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    query = urlsplit(response.headers["Location"]).query
    return {key: values[0] for key, values in parse_qs(query).items()}


def connect(sandbox: SandboxHandle, config: ProviderConfig) -> UserCredentials:
    flow = begin_authorization(config, REDIRECT, ("Calendars.ReadWrite",), login_hint=ALICE)
    grant = complete_authorization(config, flow, browse(sandbox, flow["auth_uri"]))
    return UserCredentials(account_email=grant.account_email, token=grant.token)


def test_authorization_code_flow_gives_a_storable_token(sandbox, config):
    flow = begin_authorization(config, REDIRECT, ("Calendars.ReadWrite",), login_hint=ALICE)
    assert "code_challenge=" in flow["auth_uri"] and flow["state"]
    params = browse(sandbox, flow["auth_uri"])
    grant = complete_authorization(config, flow, params)
    assert grant.account_email == ALICE
    assert {"AccessToken", "RefreshToken", "Account", "IdToken"} <= set(grant.token)
    assert "Calendars.ReadWrite" in grant.scopes
    assert grant.expires_at and grant.expires_at > datetime.now(UTC)
    assert "access_token" not in repr(grant) and params["code"] not in repr(grant)


def test_forged_state_and_a_reused_code_are_rejected(sandbox, config):
    flow = begin_authorization(config, REDIRECT, login_hint=ALICE)
    params = browse(sandbox, flow["auth_uri"])
    with pytest.raises(AuthorizationRejected, match="state mismatch"):
        complete_authorization(config, flow, params | {"state": "forged"})
    complete_authorization(config, flow, params)
    with pytest.raises(AuthorizationRejected, match="already used") as err:
        complete_authorization(config, flow, params)
    assert err.value.code == "AADSTS54005"


def test_consent_refused_at_authorize_is_consent_missing(sandbox, config):
    flow = begin_authorization(config, REDIRECT, ("Mail.Send",), login_hint=ALICE)
    params = browse(sandbox, flow["auth_uri"])
    assert "error" in params
    with pytest.raises(ConsentMissing):
        complete_authorization(config, flow, params)


def test_cancelled_sign_in_is_rejected(config):
    flow = begin_authorization(config, REDIRECT, login_hint=ALICE)
    with pytest.raises(AuthorizationRejected, match="cancelled"):
        complete_authorization(config, flow, {"error": "access_denied", "state": flow["state"]})


def test_personal_event_invites_the_room_and_reads_its_answer(sandbox, config, client):
    creds = connect(sandbox, config)
    # Someone already holds the 10:00 slot in the room's own calendar.
    client.create_event(CalendarRef(ROOM), booking(1, START.replace(hour=10)))
    free = client.create_event(
        CalendarRef(ALICE), booking(2, START, resources=(ROOM,)), as_user=creds
    )
    busy = client.create_event(
        CalendarRef(ALICE), booking(3, START.replace(hour=10), resources=(ROOM,)), as_user=creds
    )
    assert free.organizer_email == ALICE and free.resource_response == "none"
    assert sandbox.sandbox.wait_idle()
    accepted = client.find_by_reservation(CalendarRef(ALICE), 2, as_user=creds)
    declined = client.find_by_reservation(CalendarRef(ALICE), 3, as_user=creds)
    assert accepted.id == free.id and accepted.resource_response == "accepted"
    assert declined.id == busy.id and declined.resource_response == "declined"
    assert not creds.changed  # msal served the cached access token


def test_a_refresh_is_handed_back_for_storage(sandbox, config, client):
    creds = connect(sandbox, config)
    before = creds.token["RefreshToken"]
    # Graph's clock passes the access token's expiry; msal still holds it (wall clock):
    # Graph answers 401 and the client refreshes once.
    sandbox.sandbox.advance_clock(3 * 3600)
    client.list_calendars(CalendarRef(ALICE), as_user=creds)
    assert creds.changed and creds.token["RefreshToken"] != before


def test_revoked_refresh_token_is_token_revoked(sandbox, config, client):
    creds = connect(sandbox, config)
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    session.post(
        f"{sandbox.base_url}/_sandbox/api/microsoft/refresh-tokens/revoke", json={"user": ALICE}
    )
    sandbox.sandbox.advance_clock(3 * 3600)
    with pytest.raises(TokenRevoked, match="Connect the calendar again") as err:
        client.list_calendars(CalendarRef(ALICE), as_user=creds)
    assert err.value.code == "AADSTS50173" and err.value.permanent


def test_refresh_token_idle_for_90_days_is_token_revoked(sandbox, config, client):
    creds = connect(sandbox, config)
    sandbox.sandbox.advance_clock(91 * 86400)
    with pytest.raises(TokenRevoked) as err:
        client.create_event(CalendarRef(ALICE), booking(5, START), as_user=creds)
    assert err.value.code == "AADSTS700082"


def booking(reservation_id: int, start: datetime, **changes: Any) -> EventData:
    data = EventData(
        reservation_id=reservation_id,
        subject="Design review",
        start=start,
        end=start + timedelta(hours=1),
        attendees=("bob@contoso.test",),
    )
    return replace(data, **changes)
