"""Edge cases with ``responses`` and payloads shaped like Microsoft's documented examples
(``fixtures/microsoft/*.json``): what the sandbox does not emulate (application access
policies, unlicensed mailboxes, Windows zones in answers, series occurrences) and exact
request details (headers, batch bodies)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from integrations.base import (
    AuthenticationFailed,
    BatchOp,
    CalendarGone,
    CalendarRef,
    ConsentMissing,
    EventData,
    ProviderConfig,
    SyncTokenExpired,
    Throttled,
)
from integrations.http import HttpClient, RetryPolicy
from integrations.microsoft import timezones
from integrations.microsoft.client import MicrosoftClient
from integrations.microsoft.mapping import parse_event

FIXTURES = Path(__file__).parent / "fixtures" / "microsoft"
LOGIN = "https://login.microsoftonline.com"
TENANT = "contoso.onmicrosoft.com"
GRAPH = "https://graph.microsoft.com/v1.0"
ROOM = "atlas@contoso.com"
EVENTS = f"{GRAPH}/users/{ROOM}/calendar/events"
SECRET = "pa55-w0rd~never-shown"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> MicrosoftClient:
    config = ProviderConfig(
        kind="microsoft",
        authority_url=LOGIN,
        authorization_url=LOGIN,
        api_base_url=GRAPH,
        tenant_id=TENANT,
        client_id="11111111-2222-3333-4444-555555555555",
        client_secret=SECRET,
    )
    http = HttpClient(policy=RetryPolicy(max_attempts=2), sleep=waits.append)
    return MicrosoftClient(config, http, token_cache_store={})


@pytest.fixture
def identity() -> responses.RequestsMock:
    """The identity platform's discovery document and a token endpoint handing out tokens."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration",
            json={
                "authorization_endpoint": f"{LOGIN}/{TENANT}/oauth2/v2.0/authorize",
                "token_endpoint": f"{LOGIN}/{TENANT}/oauth2/v2.0/token",
                "issuer": f"{LOGIN}/{TENANT}/v2.0",
            },
        )
        mock.post(
            f"{LOGIN}/{TENANT}/oauth2/v2.0/token",
            json={"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0.app.token"},
        )
        yield mock


def booking() -> EventData:
    return EventData(
        reservation_id=77,
        subject="Quarterly review",
        start=datetime(2030, 1, 7, 9, tzinfo=UTC),
        end=datetime(2030, 1, 7, 10, tzinfo=UTC),
    )


def token_calls(mock: responses.RequestsMock) -> int:
    return sum(1 for call in mock.calls if call.request.url.endswith("/token"))


# -- reading Graph's event shape ------------------------------------------------------------


def test_documented_event_with_windows_zone_and_resource_answer():
    event = parse_event(fixture("event_pacific"))
    # 11:00 Pacific Daylight Time on 15 April 2017 is 18:00 UTC.
    assert event.start == datetime(2017, 4, 15, 18, 0, tzinfo=UTC)
    assert event.end == datetime(2017, 4, 15, 19, 0, tzinfo=UTC)
    assert event.version == "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="
    assert event.ical_uid.startswith("040000008200E00074C5B7101A82E008")
    assert event.organizer_email == "danas@contoso.com" and event.organizer_name == "Dana Swope"
    assert event.reservation_id == 77 and event.resource_response == "tentative"
    assert event.status == "confirmed" and not event.is_all_day and event.series_id == ""


def test_update_sends_if_match_prefer_and_a_bearer_token(client, identity):
    identity.patch(f"{EVENTS}/AAMkAGIAAAoZDOFAAA%3D", json=fixture("event_pacific"))
    event = client.update_event(
        CalendarRef(ROOM), "AAMkAGIAAAoZDOFAAA=", booking(), version="abc=="
    )
    assert event.id == "AAMkAGIAAAoZDOFAAA="
    sent = identity.calls[-1].request
    assert sent.headers["If-Match"] == 'W/"abc=="'
    assert 'IdType="ImmutableId"' in sent.headers["Prefer"]
    assert 'outlook.timezone="UTC"' in sent.headers["Prefer"]
    assert sent.headers["Authorization"] == "Bearer eyJ0.app.token"
    body = json.loads(sent.body)
    assert body["start"] == {"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"}
    assert "transactionId" not in body  # fixed at creation; Graph refuses a change


# -- error mapping on documented refusals ---------------------------------------------------


@pytest.mark.parametrize("name", ["access_policy_denied", "access_policy_raop_denied"])
def test_application_access_policy_is_named(client, identity, name):
    identity.get(f"{GRAPH}/users/{ROOM}/calendars", status=403, json=fixture(name))
    with pytest.raises(ConsentMissing, match="application access policy") as err:
        client.test_connection(CalendarRef(ROOM))
    assert ROOM in err.value.message and err.value.code == "ErrorAccessDenied"


def test_missing_permission_asks_for_admin_consent(client, identity):
    identity.get(f"{GRAPH}/users/{ROOM}/calendars", status=403, json=fixture("permission_missing"))
    with pytest.raises(ConsentMissing, match="admin consent"):
        client.test_connection(CalendarRef(ROOM))


def test_unlicensed_mailbox_is_calendar_gone(client, identity):
    identity.get(f"{GRAPH}/users/{ROOM}/calendars", status=404, json=fixture("mailbox_not_enabled"))
    with pytest.raises(CalendarGone, match="no Exchange Online mailbox"):
        client.test_connection(CalendarRef(ROOM))


def test_401_twice_is_authentication_failed_after_one_fresh_token(client, identity):
    for _ in range(2):
        identity.get(
            f"{GRAPH}/users/{ROOM}/calendars",
            status=401,
            json=fixture("invalid_authentication_token"),
        )
    with pytest.raises(AuthenticationFailed):
        client.test_connection(CalendarRef(ROOM))
    assert token_calls(identity) == 2


def test_wrong_secret_from_the_token_endpoint(client, identity):
    identity.replace(
        responses.POST,
        f"{LOGIN}/{TENANT}/oauth2/v2.0/token",
        status=401,
        json=fixture("token_wrong_secret"),
    )
    with pytest.raises(AuthenticationFailed, match="client secret is wrong or expired") as err:
        client.test_connection(CalendarRef(ROOM))
    assert SECRET not in str(err.value) and "Trace ID" not in str(err.value)


def test_consent_missing_from_the_token_endpoint(client, identity):
    identity.replace(
        responses.POST,
        f"{LOGIN}/{TENANT}/oauth2/v2.0/token",
        status=400,
        json=fixture("token_consent_missing"),
    )
    with pytest.raises(ConsentMissing, match="admin consent"):
        client.test_connection(CalendarRef(ROOM))


def test_throttled_after_the_retries_carries_retry_after(client, identity, waits):
    for _ in range(2):
        identity.get(
            f"{GRAPH}/users/{ROOM}/calendars",
            status=429,
            headers={"Retry-After": "3"},
            json=fixture("too_many_requests"),
        )
    with pytest.raises(Throttled) as err:
        client.test_connection(CalendarRef(ROOM))
    assert err.value.retry_after == 3.0 and waits == [3.0]


# -- delta ----------------------------------------------------------------------------------


def test_delta_pages_removed_entries_occurrences_and_all_day(client, identity):
    identity.get(
        f"{GRAPH}/users/{ROOM}/calendar/calendarView/delta", json=fixture("delta_first_page")
    )
    window = (datetime(2017, 6, 1, tzinfo=UTC), datetime(2017, 8, 1, tzinfo=UTC))
    page = client.changes(CalendarRef(ROOM), None, *window)
    sent = identity.calls[-1].request
    assert "startDateTime=2017-06-01T00:00:00Z" in sent.url
    assert "odata.maxpagesize=50" in sent.headers["Prefer"]
    occurrence, removed = page.events
    assert occurrence.series_id == "AAMkADNVxRAAA="
    assert occurrence.start == datetime(2017, 6, 21, 15, 30, 0, 123456, tzinfo=UTC)
    assert removed.removed and removed.id == "AAMkADNVyRAAA="
    assert page.next_page and page.sync_token is None

    identity.get(page.next_page, json=fixture("delta_last_page"))
    last = client.changes(CalendarRef(ROOM), page.next_page, *window)
    (holiday,) = last.events
    assert holiday.is_all_day and holiday.status == "cancelled"
    assert holiday.start == datetime(2017, 7, 4, 4, 0, tzinfo=UTC)  # midnight EDT
    assert last.sync_token.endswith("$deltatoken=R0usmci39OQxqJrxK4")


def test_sync_state_not_found_is_sync_token_expired(client, identity):
    link = f"{GRAPH}/users/{ROOM}/calendarView/delta?$deltatoken=old"
    identity.get(link, status=410, json=fixture("sync_state_not_found"))
    with pytest.raises(SyncTokenExpired):
        client.changes(CalendarRef(ROOM), link, datetime.now(UTC), datetime.now(UTC))


# -- batch and getSchedule ------------------------------------------------------------------


def test_an_item_throttled_inside_a_batch_is_sent_again_alone(client, identity, waits):
    identity.post(f"{GRAPH}/$batch", json=fixture("batch_one_throttled"))
    identity.post(f"{GRAPH}/$batch", json=fixture("batch_retried_item"))
    ops = [
        BatchOp(key="77", action="create", data=booking()),
        BatchOp(key="78", action="create", data=booking()),
    ]
    first, second = client.batch(CalendarRef(ROOM), ops)
    assert first.ok and first.event.id == "AAMkAGB0AAA=" and first.event.reservation_id == 77
    assert second.ok and second.event.id == "AAMkAGB1AAA="
    assert waits == [10.0]
    batches = [
        json.loads(c.request.body) for c in identity.calls if c.request.url.endswith("$batch")
    ]
    assert [len(b["requests"]) for b in batches] == [2, 1]
    item = batches[0]["requests"][0]
    assert item["url"] == f"/users/{ROOM}/calendar/events" and item["method"] == "POST"
    assert item["headers"]["Content-Type"] == "application/json"
    assert item["body"]["transactionId"]
    assert batches[1]["requests"][0]["id"] == "1"


def test_get_schedule_reads_windows_zones_and_skips_free_and_unknown(client, identity):
    identity.post(
        f"{GRAPH}/users/adelev@contoso.com/calendar/getSchedule", json=fixture("get_schedule")
    )
    start, end = datetime(2019, 3, 15, 7, tzinfo=UTC), datetime(2019, 3, 16, 7, tzinfo=UTC)
    asked = [CalendarRef("adelev@contoso.com"), CalendarRef("gone@contoso.com")]
    busy = client.free_busy(asked, start, end)
    # 12:00-14:00 Pacific Daylight Time is 19:00-21:00 UTC.
    assert busy == {
        CalendarRef("adelev@contoso.com"): [
            (datetime(2019, 3, 15, 19, tzinfo=UTC), datetime(2019, 3, 15, 21, tzinfo=UTC))
        ]
    }


# -- time zones -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("Pacific Standard Time", "2030-01-07T09:00:00.0000000", "2030-01-07T17:00:00"),
        ("W. Europe Standard Time", "2030-07-07T09:00:00.5000000", "2030-07-07T07:00:00.5"),
        ("India Standard Time", "2030-01-07T09:00:00", "2030-01-07T03:30:00"),
        ("Europe/London", "2030-07-07T09:00:00", "2030-07-07T08:00:00"),
        ("tzone://Microsoft/Utc", "2030-01-07T09:00:00", "2030-01-07T09:00:00"),
        ("UTC", "2030-01-07T09:00:00Z", "2030-01-07T09:00:00"),
    ],
)
def test_time_zone_names_graph_uses(zone, local, utc):
    expected = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert timezones.parse_graph_time({"dateTime": local, "timeZone": zone}) == expected


def test_unknown_custom_zone_reads_as_utc_and_naive_times_are_refused():
    parsed = timezones.parse_datetime("2030-01-07T09:00:00", "tzone://Microsoft/Custom")
    assert parsed == datetime(2030, 1, 7, 9, tzinfo=UTC)
    with pytest.raises(ValueError):
        timezones.graph_time(datetime(2030, 1, 7, 9))
    with pytest.raises(ValueError):
        timezones.parse_datetime("next Tuesday")


def test_the_registry_names_this_client():
    from integrations.registry import client_class

    assert client_class("microsoft") is MicrosoftClient
