"""The Google part of the control API and page: changes made as a person would (they show up
in incremental sync and push a notification), expiring sync tokens, revoking tokens,
limits, and the day view."""

from __future__ import annotations

import json
from pathlib import Path

import google.auth.transport.requests as google_requests
import pytest
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as user_credentials

from tests.support.google_sandbox import (
    ALICE,
    ATLAS,
    CLIENT_ID,
    CLIENT_SECRET,
    SYNC_SA,
    alice_fixture,  # noqa: F401 - the "alice" fixture
    authorize,
    control,
    exchange,
    make_event,
    receiver_fixture,  # noqa: F401 - the "receiver" fixture
    sa_credentials,
)

EVENTS = "/calendars/primary/events"


def _sync_token(alice) -> str:
    return alice.get(EVENTS).json()["nextSyncToken"]


def test_overview_names_files_and_urls(sandbox, http):
    info = control(http, sandbox, "GET", "").json()
    assert info["token_uri"] == f"{sandbox.base_url}/google/oauth2/token"
    account = next(a for a in info["service_accounts"] if a["email"] == SYNC_SA)
    assert json.loads(Path(account["key_file"]).read_text())["client_email"] == SYNC_SA
    secrets = json.loads(Path(info["oauth_clients"][0]["secrets_file"]).read_text())
    assert secrets["web"]["client_id"] == CLIENT_ID
    assert secrets["web"]["token_uri"] == info["token_uri"]
    assert ATLAS in [r["email"] for r in info["resources"]]


def test_person_creates_renames_moves_and_deletes(sandbox, http, alice, receiver):
    alice.post(
        "/calendars/primary/events/watch",
        json={"id": "ctl-chan", "type": "web_hook", "address": receiver.url},
    )
    token = _sync_token(alice)
    created = control(
        http, sandbox, "POST", f"/calendars/{ALICE}/events",
        json=make_event(summary="Dentist", id="human0001"),
    )  # fmt: skip
    assert created.status_code == 201
    changes = alice.get(EVENTS, params={"syncToken": token}).json()
    assert [(e["id"], e["summary"]) for e in changes["items"]] == [("human0001", "Dentist")]
    token = changes["nextSyncToken"]

    renamed = control(
        http, sandbox, "PATCH", f"/calendars/{ALICE}/events/human0001",
        json={"summary": "Dentist (moved)", "start": {"dateTime": "2030-01-07T14:00:00Z"},
              "end": {"dateTime": "2030-01-07T15:00:00Z"}},
    )  # fmt: skip
    assert renamed.status_code == 200
    changes = alice.get(EVENTS, params={"syncToken": token}).json()
    moved = changes["items"][0]
    assert moved["summary"] == "Dentist (moved)"
    assert moved["start"] == {"dateTime": "2030-01-07T14:00:00Z"}
    token = changes["nextSyncToken"]

    assert (
        control(http, sandbox, "DELETE", f"/calendars/{ALICE}/events/human0001").status_code == 204
    )
    changes = alice.get(EVENTS, params={"syncToken": token}).json()
    assert changes["items"] == [
        {"kind": "calendar#event", "etag": changes["items"][0]["etag"], "id": "human0001",
         "status": "cancelled"}
    ]  # fmt: skip

    states = [m["X-Goog-Resource-State"] for m in receiver.wait_for(4)]
    assert states == ["sync", "exists", "exists", "exists"]


def test_person_changes_are_checked(sandbox, http):
    bad = control(
        http, sandbox, "POST", f"/calendars/{ALICE}/events",
        json=make_event(start="2030-01-07T10:00:00Z", end="2030-01-07T09:00:00Z"),
    )  # fmt: skip
    assert bad.status_code == 400
    missing = control(http, sandbox, "PATCH", f"/calendars/{ALICE}/events/nothing01", json={})
    assert missing.status_code == 400
    unknown = control(http, sandbox, "GET", "/calendars/nobody@northwind.test/events")
    assert unknown.status_code == 400


def test_expire_sync_tokens_of_every_calendar(sandbox, http, alice):
    token = _sync_token(alice)
    room_token = alice.get(f"/calendars/{ATLAS}/events").json()["nextSyncToken"]
    assert control(http, sandbox, "POST", "/sync-tokens/expire", json={}).status_code == 200
    assert alice.get(EVENTS, params={"syncToken": token}).status_code == 410
    assert (
        alice.get(f"/calendars/{ATLAS}/events", params={"syncToken": room_token}).status_code == 410
    )


def test_revoke_tokens_of_a_user(sandbox, http):
    tokens = exchange(http, sandbox, authorize(http, sandbox, access_type="offline")["code"]).json()
    answer = control(http, sandbox, "POST", "/tokens/revoke", json={"user": ALICE})
    assert answer.json() == {"revoked_grants": 1}
    creds = user_credentials.Credentials(
        None, refresh_token=tokens["refresh_token"], client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, token_uri=f"{sandbox.base_url}/google/oauth2/token",
    )  # fmt: skip
    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(google_requests.Request(http))


def test_expire_access_tokens_keeps_grants(sandbox, http):
    """``access-tokens/expire``: a service account's token (and a person's) answers 401 until
    the client gets a new one; the person's refresh token still works."""
    tokens = exchange(http, sandbox, authorize(http, sandbox, access_type="offline")["code"]).json()
    robot = sa_credentials(sandbox, http)
    api = f"{sandbox.base_url}/google/calendar/v3/calendars/{ALICE}/events"

    def status(token: str) -> int:
        return http.get(api, headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(robot.token) == 200 and status(tokens["access_token"]) == 200
    answer = control(http, sandbox, "POST", "/access-tokens/expire", json={})
    assert answer.status_code == 200 and answer.json()["expired"] == 2
    assert status(robot.token) == 401 and status(tokens["access_token"]) == 401
    assert status(sa_credentials(sandbox, http).token) == 200
    creds = user_credentials.Credentials(
        None, refresh_token=tokens["refresh_token"], client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, token_uri=f"{sandbox.base_url}/google/oauth2/token",
    )  # fmt: skip
    creds.refresh(google_requests.Request(http))
    assert status(creds.token) == 200


def test_limits_are_validated(sandbox, http):
    assert (
        control(http, sandbox, "PUT", "/limits", json={"rate_limit_status": 500}).status_code == 400
    )
    assert (
        control(http, sandbox, "PUT", "/limits", json={"requests_per_minute": 0}).status_code == 400
    )
    ok = control(http, sandbox, "PUT", "/limits", json={"requests_per_minute": 100})
    assert ok.json()["requests_per_minute"] == 100
    assert sandbox.sandbox.limits.rules["google"].max_requests == 100


def test_day_view_shows_google_calendars(sandbox, http, alice):
    made = control(
        http, sandbox, "POST", f"/calendars/{ATLAS}/events",
        json=make_event(summary="Board meeting", id="board0001"),
    )  # fmt: skip
    assert made.status_code == 201
    day = http.get(f"{sandbox.base_url}/_sandbox/api/day", params={"date": "2030-01-07"}).json()
    google = [c for c in day["calendars"] if c["provider"] == "Google"]
    atlas = next(c for c in google if c["calendar"] == ATLAS)
    assert atlas["title"].startswith("Atlas")
    assert [e["subject"] for e in atlas["events"]] == ["Board meeting"]
    assert google[0]["calendar"].endswith("@resource.calendar.google.com")  # rooms first


def test_channels_are_listed(sandbox, http, alice, receiver):
    alice.post(
        "/calendars/primary/events/watch",
        json={"id": "listed", "type": "web_hook", "address": receiver.url},
    )
    receiver.wait_for(1)
    sandbox.sandbox.wait_idle()
    channels = control(http, sandbox, "GET", "/channels").json()["value"]
    assert channels[0]["id"] == "listed"
    assert channels[0]["deliveries"] == [{"state": "sync", "number": 1, "status": 200}]
