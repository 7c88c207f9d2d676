"""GoogleClient edge cases against Google's documented payloads (``fixtures/google/``).

The fixtures copy the shapes of Google's Calendar errors guide, the Event and Events
resources, freebusy.query, the batch guide's multipart answer and the OAuth token endpoint's
errors. HTTP is answered by ``responses``; google-auth signs a real JWT with a throwaway key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.base import (
    AuthenticationFailed,
    BatchOp,
    CalendarGone,
    CalendarRef,
    ConsentMissing,
    EventData,
    EventGone,
    ProviderConfig,
    ProviderError,
    SyncTokenExpired,
    Throttled,
    TokenRevoked,
    UserCredentials,
    VersionConflict,
)
from integrations.google import auth, oauth
from integrations.google.client import GoogleClient
from integrations.http import HttpClient, RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures" / "google"
API = "https://www.googleapis.com/calendar/v3"
TOKEN_URL = "https://oauth2.googleapis.com/token"
ROOM = "c_188a1f0e7d2b4c31@resource.calendar.google.com"
ROOM_CAL = CalendarRef(ROOM, ROOM)
EVENTS = f"{API}/calendars/c_188a1f0e7d2b4c31%40resource.calendar.google.com/events"
DELEGATE = "reserva-blocker@example.com"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def multipart(name: str) -> bytes:
    return (FIXTURES / name).read_text().replace("\n", "\r\n").encode()


@pytest.fixture(scope="module")
def service_key() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "reserva-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "reserva-sync@reserva-test.iam.gserviceaccount.com",
        "client_id": "104857600000000000009",
        "token_uri": TOKEN_URL,
    }


@pytest.fixture
def config(service_key: dict[str, str]) -> ProviderConfig:
    return ProviderConfig(
        kind="google",
        authority_url=TOKEN_URL,
        authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
        api_base_url=API,
        client_id="284719300001-test.apps.googleusercontent.com",
        client_secret="GOCSPX-payload-test-secret",
        service_account_key=service_key,
        delegated_user=DELEGATE,
    )


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(config: ProviderConfig, waits: list[float]) -> GoogleClient:
    http = HttpClient(policy=RetryPolicy(max_attempts=3), sleep=waits.append)
    return GoogleClient(config, http)


@pytest.fixture
def google() -> Iterator[responses.RequestsMock]:
    auth.clear_service_account_tokens()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("POST", TOKEN_URL, json=fixture("token_service_account.json"))
        yield mock
    auth.clear_service_account_tokens()


def booking(reservation_id: int = 42, **changes: Any) -> EventData:
    values: dict[str, Any] = {
        "reservation_id": reservation_id,
        "subject": "Quarterly review",
        "start": START,
        "end": START + timedelta(hours=1),
        "time_zone": "America/New_York",
        "resources": (ROOM,),
    } | changes
    return EventData(**values)


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# -- parsing ---------------------------------------------------------------------------------


def test_event_with_an_offset_and_a_declining_room(client, google):
    google.add("POST", EVENTS, json=fixture("event_room_declined.json"))

    event = client.create_event(ROOM_CAL, booking())

    assert event.start == datetime(2030, 1, 7, 14, 0, tzinfo=UTC)
    assert event.end - event.start == timedelta(hours=1)
    assert event.resource_response == "declined"
    assert event.organizer_email == DELEGATE and event.organizer_name == "Reserva Blocker"
    assert event.reservation_id == 42 and event.version == '"3181161784712000"'
    assert event.ical_uid == "reserva0000000042@google.com"
    sent = json.loads(google.calls[-1].request.body)
    assert sent["id"] == "reserva0000000042"
    assert sent["start"] == {
        "dateTime": "2030-01-07T04:00:00-05:00",
        "timeZone": "America/New_York",
    }
    assert {"email": ROOM, "resource": True} in sent["attendees"]
    assert sent["extendedProperties"] == {"private": {"reservation_id": "42"}}


def test_all_day_event_without_a_time_zone_uses_the_fallback(client, google):
    google.add("GET", f"{EVENTS}/7cbh8rpc10lrc0ckih9tafss99", json=fixture("event_all_day.json"))

    event = client.get_event(ROOM_CAL, "7cbh8rpc10lrc0ckih9tafss99")

    assert event.is_all_day and event.reservation_id is None
    assert event.start == datetime(2030, 1, 8, tzinfo=UTC)
    assert event.end == datetime(2030, 1, 9, tzinfo=UTC)


def test_incremental_page_removed_events_occurrences_and_all_day_in_the_calendar_zone(
    client, google
):
    google.add("GET", EVENTS, json=fixture("events_list_incremental.json"))

    page = client.changes(
        ROOM_CAL, "CPDAlvWDx70CEPDAlvWDx70CGAU=", START, START + timedelta(days=7)
    )

    removed, occurrence, team_day = page.events
    assert removed.removed and removed.id == "reserva0000000041"
    assert occurrence.series_id == "1o8n6m3jv5aqk0vpd6m8bdjjd4"
    assert occurrence.resource_response == "accepted"
    assert team_day.is_all_day and team_day.start == datetime(2030, 6, 30, 23, 0, tzinfo=UTC)
    assert page.sync_token == "CPDAlvWDx70CEPDAlvWDx70CGAU=" and page.next_page is None
    sent = query_of(google.calls[-1])
    assert sent["syncToken"] == ["CPDAlvWDx70CEPDAlvWDx70CGAU="]
    assert "timeMin" not in sent and "timeMax" not in sent  # Google refuses them with a token
    assert sent["singleEvents"] == ["true"]


def test_full_sync_sends_the_window_and_pages_repeat_the_query(client, google):
    google.add("GET", EVENTS, json=fixture("events_list_first_page.json"))
    google.add("GET", EVENTS, json=fixture("events_list_incremental.json"))

    first = client.changes(ROOM_CAL, None, START, START + timedelta(days=7))
    client.changes(ROOM_CAL, first.next_page, START, START + timedelta(days=7))

    assert first.sync_token is None and first.next_page
    assert [e.reservation_id for e in first.events] == [41]
    full, second = query_of(google.calls[-2]), query_of(google.calls[-1])
    assert full["timeMin"] == ["2030-01-07T09:00:00Z"]
    assert full["timeMax"] == ["2030-01-14T09:00:00Z"]
    assert second["pageToken"] == [fixture("events_list_first_page.json")["nextPageToken"]]
    assert second["timeMin"] == full["timeMin"] and second["singleEvents"] == ["true"]


def test_free_busy_in_utc_and_unknown_calendars_left_out(client, google):
    google.add("POST", f"{API}/freeBusy", json=fixture("freebusy.json"))
    unknown = "c_0000000000000000@resource.calendar.google.com"

    asked = [ROOM_CAL, CalendarRef(unknown, unknown)]
    busy = client.free_busy(asked, START, START + timedelta(days=1))

    assert busy == {
        ROOM_CAL: [
            (START, START + timedelta(hours=1)),
            (datetime(2030, 1, 7, 13, 0, tzinfo=UTC), datetime(2030, 1, 7, 14, 30, tzinfo=UTC)),
        ]
    }


# -- errors ----------------------------------------------------------------------------------


def test_403_user_rate_limit_is_backed_off_and_retried(client, google, waits):
    google.add("GET", EVENTS, status=403, json=fixture("error_user_rate_limit.json"))
    google.add("GET", EVENTS, json=fixture("events_list_first_page.json"))

    page = client.changes(ROOM_CAL, None, START, START + timedelta(days=1))

    assert [e.reservation_id for e in page.events] == [41]
    assert len(waits) == 1


def test_403_rate_limit_that_persists_is_throttled(client, google, waits):
    google.add("GET", EVENTS, status=403, json=fixture("error_user_rate_limit.json"))

    with pytest.raises(Throttled) as caught:
        client.find_by_reservation(ROOM_CAL, 42)

    assert caught.value.code == "userRateLimitExceeded" and not caught.value.permanent
    assert len(waits) == 2  # three attempts in all


def test_429_is_throttled_after_the_http_client_retries(client, google, waits):
    google.add("GET", EVENTS, status=429, json=fixture("error_rate_limit_429.json"))

    with pytest.raises(Throttled):
        client.find_by_reservation(ROOM_CAL, 42)
    assert len(waits) == 2


def test_calendar_usage_limits_are_a_long_cool_down_not_a_fast_retry(client, google, waits):
    google.add("POST", EVENTS, status=403, json=fixture("error_quota_exceeded.json"))

    with pytest.raises(Throttled) as caught:
        client.create_event(ROOM_CAL, booking())

    assert caught.value.retry_after >= 3600 and waits == []
    assert "usage limits" in caught.value.message


def test_410_full_sync_required_is_sync_token_expired(client, google):
    google.add("GET", EVENTS, status=410, json=fixture("error_full_sync_required.json"))

    with pytest.raises(SyncTokenExpired):
        client.changes(ROOM_CAL, "CPDAlvWDx70CEPDAlvWDx70CGAU=", START, START + timedelta(days=1))


def test_not_found_is_calendar_gone_on_create_and_event_gone_on_update(client, google):
    google.add("POST", EVENTS, status=404, json=fixture("error_not_found.json"))
    google.add(
        "PUT", f"{EVENTS}/reserva0000000042", status=404, json=fixture("error_not_found.json")
    )

    with pytest.raises(CalendarGone) as calendar:
        client.create_event(ROOM_CAL, booking())
    with pytest.raises(EventGone):
        client.update_event(ROOM_CAL, "reserva0000000042", booking())

    assert ROOM in calendar.value.message and DELEGATE in calendar.value.message


def test_409_duplicate_fetches_the_existing_event(client, google):
    google.add("POST", EVENTS, status=409, json=fixture("error_duplicate.json"))
    google.add("GET", f"{EVENTS}/reserva0000000042", json=fixture("event_room_declined.json"))

    event = client.create_event(ROOM_CAL, booking())

    assert event.id == "reserva0000000042" and event.reservation_id == 42
    assert [c.request.method for c in google.calls if "/calendar/v3/" in c.request.url] == [
        "POST",
        "GET",
    ]


def test_412_is_a_version_conflict_and_if_match_is_sent(client, google):
    google.add(
        "PUT",
        f"{EVENTS}/reserva0000000042",
        status=412,
        json=fixture("error_condition_not_met.json"),
    )

    with pytest.raises(VersionConflict) as caught:
        client.update_event(ROOM_CAL, "reserva0000000042", booking(), version='"3181161784712000"')

    assert caught.value.status == 412 and not caught.value.permanent
    assert google.calls[-1].request.headers["If-Match"] == '"3181161784712000"'


def test_service_account_inviting_without_delegation_is_consent_missing(client, google):
    google.add(
        "POST", EVENTS, status=403, json=fixture("error_forbidden_for_service_accounts.json")
    )

    with pytest.raises(ConsentMissing) as caught:
        client.create_event(ROOM_CAL, booking())

    assert "domain-wide delegation" in caught.value.message


def test_401_twice_is_authentication_failed(client, google):
    google.add("GET", EVENTS, status=401, json=fixture("error_auth_error.json"))

    with pytest.raises(AuthenticationFailed):
        client.find_by_reservation(ROOM_CAL, 42)

    token_calls = [c for c in google.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 2  # the first token, then one forced refresh


@pytest.mark.parametrize(
    ("payload", "status", "error", "words"),
    [
        ("token_unauthorized_client.json", 401, ConsentMissing, "has no domain-wide delegation"),
        ("token_invalid_subject.json", 400, AuthenticationFailed, "not an active user"),
    ],
)
def test_token_endpoint_refusals(config, waits, payload, status, error, words):
    auth.clear_service_account_tokens()
    with responses.RequestsMock() as google:
        google.add("POST", TOKEN_URL, status=status, json=fixture(payload))
        client = GoogleClient(config, HttpClient(sleep=waits.append))
        with pytest.raises(error) as caught:
            client.test_connection(ROOM_CAL)
    assert words in caught.value.message
    assert "PRIVATE KEY" not in caught.value.message


def test_user_refresh_refused_is_token_revoked_without_the_refresh_token(config, waits):
    person = UserCredentials(
        "alice@example.com",
        {
            "refresh_token": "1//0gRefreshTokenForAlice",
            "token_uri": TOKEN_URL,
            "client_id": config.client_id,
            "scopes": ["https://www.googleapis.com/auth/calendar"],
        },
    )
    with responses.RequestsMock() as google:
        google.add("POST", TOKEN_URL, status=400, json=fixture("token_expired_or_revoked.json"))
        client = GoogleClient(config, HttpClient(sleep=waits.append))
        with pytest.raises(TokenRevoked) as caught:
            client.list_calendars(CalendarRef(person.account_email), as_user=person)
        body = google.calls[0].request.body
        sent = parse_qs(body.decode() if isinstance(body, bytes) else body)
    assert "1//0gRefreshTokenForAlice" not in str(caught.value)
    assert sent["client_secret"] == [config.client_secret]  # from the alias, not the token
    assert not person.changed


# -- batch -----------------------------------------------------------------------------------


def test_batch_retries_a_rate_limited_part_after_its_retry_after(client, google, waits):
    boundary = "batch_6HTXYTuFc8A_AAxcz_Ehhm4"
    google.add(
        "POST",
        "https://www.googleapis.com/batch/calendar/v3",
        body=multipart("batch_one_throttled.http"),
        content_type=f"multipart/mixed; boundary={boundary}",
    )
    google.add(
        "POST",
        "https://www.googleapis.com/batch/calendar/v3",
        body=multipart("batch_retried_part.http"),
        content_type="multipart/mixed; boundary=batch_pK7JBAk73-E_AA5eFwv4m2Q=",
    )

    results = client.batch(
        ROOM_CAL,
        [
            BatchOp("1", "create", booking(1)),
            BatchOp("2", "delete", event_id="reserva0000000002"),
        ],
    )

    assert [r.ok for r in results] == [True, True]
    assert results[0].event.reservation_id == 1
    assert waits == [7.0]
    batches = [c for c in google.calls if "/batch/" in c.request.url]
    first, second = (c.request.body.decode() for c in batches)
    assert first.count("Content-Type: application/http") == 2
    assert (
        "POST /calendar/v3/calendars/c_188a1f0e7d2b4c31%40resource.calendar.google.com/events"
        in first
    )
    assert second.count("Content-Type: application/http") == 1
    assert "DELETE /calendar/v3/calendars/" in second and "reserva0000000002" in second
    assert batches[0].request.headers["Authorization"].startswith("Bearer ")


# -- the OAuth code exchange -------------------------------------------------------------------


def _id_token(claims: dict[str, Any]) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'x'})}.{part(claims)}.c2lnbmF0dXJl"


def test_code_exchange_without_an_id_token_asks_userinfo(config):
    with responses.RequestsMock() as google:
        google.add("POST", TOKEN_URL, json=fixture("token_authorization_code.json"))
        google.add(
            "GET", "https://openidconnect.googleapis.com/v1/userinfo", json=fixture("userinfo.json")
        )
        grant = oauth.complete_authorization(
            config, "https://reserva.test/cb/", "4/0code", "v" * 64
        )
        body = google.calls[0].request.body
        sent = parse_qs(body.decode() if isinstance(body, bytes) else body)

    assert grant.account_email == "alice@example.com"
    assert grant.token["refresh_token"] == "1//0gExampleRefreshToken"
    assert "client_secret" not in grant.token
    assert "https://www.googleapis.com/auth/calendar" in grant.scopes
    assert sent["code_verifier"] == ["v" * 64] and sent["grant_type"] == ["authorization_code"]


def test_code_exchange_refuses_an_id_token_for_another_client(config):
    answer = fixture("token_authorization_code.json") | {
        "id_token": _id_token(
            {"iss": "https://accounts.google.com", "aud": "someone-else", "email": "x@example.com"}
        )
    }
    with responses.RequestsMock() as google:
        google.add("POST", TOKEN_URL, json=answer)
        with pytest.raises(AuthenticationFailed) as caught:
            oauth.complete_authorization(config, "https://reserva.test/cb/", "4/0code", "v" * 64)
    assert caught.value.code == "id_token"


def test_code_exchange_without_a_refresh_token_is_refused(config):
    answer = {k: v for k, v in fixture("token_authorization_code.json").items()}
    del answer["refresh_token"]
    with responses.RequestsMock() as google:
        google.add("POST", TOKEN_URL, json=answer)
        with pytest.raises(ProviderError) as caught:
            oauth.complete_authorization(config, "https://reserva.test/cb/", "4/0code", "v" * 64)
    assert caught.value.code == "no_refresh_token"
    assert "ya29" not in str(caught.value)
