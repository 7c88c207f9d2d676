"""Strictness from Google's own schema and front end: request bodies and query parameters
checked against the Calendar v3 discovery document, credentials and scopes, the per-user
quota, and part 1's faults and latency applied to Google's services."""

from __future__ import annotations

import time

import pytest

from tests.support.google_sandbox import (
    ALICE,
    BOB,
    Api,
    alice_fixture,  # noqa: F401 - the "alice" fixture
    control,
    error_of,
    make_event,
    sa_credentials,
)

EVENTS = "/calendars/primary/events"


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"summary": 5}, "Invalid value at 'resource.summary' (TYPE_STRING), 5"),
        ({"start": "2030-01-07T09:00:00Z"}, "Invalid value at 'resource.start' (TYPE_MESSAGE)"),
        ({"attendees": {"email": BOB}}, "Invalid value at 'resource.attendees' (TYPE_LIST)"),
        ({"guestsCanModify": "yes"}, "Invalid value at 'resource.guestsCanModify' (TYPE_BOOL)"),
        ({"sequence": "one"}, "Invalid value at 'resource.sequence' (TYPE_INT32)"),
        ({"extendedProperties": {"private": {"n": 1}}}, "resource.extendedProperties.private"),
        ({"transparency": "see-through"}, "Invalid value for: transparency"),
        ({"colour": "1"}, "Unknown name \"colour\" at 'resource': Cannot find field."),
        ({"start": {"dateTime": "2030-01-07T09:00:00Z", "tz": "UTC"}}, 'Unknown name "tz"'),
        ({"start": {"dateTime": "next monday"}}, "not an RFC 3339 date-time"),
    ],
)
def test_bodies_are_checked_against_the_discovery_document(alice, patch, fragment):
    answer = alice.post(EVENTS, json=make_event() | patch)
    assert error_of(answer) == (400, "invalid")
    assert fragment in answer.json()["error"]["message"]
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_malformed_json_is_a_parse_error(alice):
    answer = alice.post(EVENTS, data=b"{not json", headers={"Content-Type": "application/json"})
    assert error_of(answer) == (400, "parseError")


def test_missing_body_is_required(alice):
    assert error_of(alice.post(EVENTS))[0] == 400


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"maxResults": "ten"}, "Invalid integer value: 'ten'."),
        ({"maxResults": "0"}, "Invalid value '0'. Values must be within the range: [1, ]"),
        ({"singleEvents": "yes"}, "Invalid boolean value: 'yes'."),
        (
            {"orderBy": "title"},
            "Invalid string value: 'title'. Allowed values: [startTime, updated]",
        ),
        ({"colour": "1"}, 'Unknown name "colour": Cannot bind query parameter.'),
        ({"maxResults": ["1", "2"]}, "Parameter 'maxResults' may only be given once."),
        ({"quotaUser": "q" * 41}, "must not exceed 40 characters"),
    ],
)
def test_query_parameters_are_checked_against_the_discovery_document(alice, params, message):
    answer = alice.get(EVENTS, params=params)
    assert error_of(answer) == (400, "invalidParameter")
    assert message in answer.json()["error"]["message"]
    assert answer.json()["error"]["errors"][0]["locationType"] == "parameter"


def test_bad_rfc3339_time_parameter(alice):
    answer = alice.get(EVENTS, params={"timeMin": "2030-01-07"})  # no time, no offset
    assert error_of(answer) == (400, "badRequest")


def test_repeated_parameter_allowed_where_discovery_says_so(alice):
    answer = alice.get(EVENTS, params={"eventTypes": ["default", "focusTime"]})
    assert answer.status_code == 200


def test_missing_credentials(sandbox, http):
    answer = Api(sandbox, http, "")
    response = http.get(f"{answer.root}{EVENTS}")
    assert error_of(response) == (401, "required")
    assert response.json()["error"]["errors"][0]["message"] == "Login Required."
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_invalid_and_expired_credentials(sandbox, http, alice):
    assert error_of(Api(sandbox, http, "ya29.forged").get(EVENTS)) == (401, "authError")
    sandbox.sandbox.advance_clock(3600)  # the token's hour is over
    answer = alice.get(EVENTS)
    assert error_of(answer) == (401, "authError")
    assert answer.json()["error"]["errors"][0]["message"] == "Invalid Credentials"


def test_scopes_are_checked_per_method(sandbox, http):
    events_only = "https://www.googleapis.com/auth/calendar.events"
    api = Api(sandbox, http, sa_credentials(sandbox, http, scopes=[events_only]).token)
    assert api.insert().status_code == 200
    # calendarList needs a calendar or calendarlist scope, not calendar.events.
    answer = api.get("/users/me/calendarList")
    assert error_of(answer) == (403, "insufficientPermissions")
    assert answer.json()["error"]["message"] == "Request had insufficient authentication scopes."


def _limit(http, sandbox, per_minute: int, status: int = 403) -> None:
    answer = control(
        http, sandbox, "PUT", "/limits",
        json={"requests_per_minute": per_minute, "rate_limit_status": status},
    )  # fmt: skip
    assert answer.status_code == 200


def test_default_quota_is_600_per_user_per_minute(sandbox, http):
    assert sandbox.sandbox.services["google"].settings["requests_per_minute"] == 600
    assert sandbox.sandbox.limits.rules["google"].max_requests == 600
    assert sandbox.sandbox.limits.rules["google"].window_seconds == 60


def test_rate_limit_answers_403_rate_limit_exceeded(sandbox, http, alice):
    _limit(http, sandbox, 3)
    statuses = [alice.get(EVENTS).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    answer = alice.get(EVENTS)
    assert error_of(answer) == (403, "rateLimitExceeded")
    assert answer.json()["error"]["errors"][0]["domain"] == "usageLimits"
    # Counted per user: Bob still has his quota.
    bob = Api(sandbox, http, sa_credentials(sandbox, http, subject=BOB).token)
    assert bob.get(EVENTS).status_code == 200
    # The window slides: a minute later Alice may call again.
    sandbox.sandbox.advance_clock(61)
    assert alice.get(EVENTS).status_code == 200


def test_rate_limit_can_answer_429(sandbox, http, alice):
    _limit(http, sandbox, 1, status=429)
    alice.get(EVENTS)
    assert error_of(alice.get(EVENTS)) == (429, "rateLimitExceeded")


def test_injected_fault_has_googles_error_shape(sandbox, http, alice):
    fault = http.post(
        f"{sandbox.base_url}/_sandbox/api/faults",
        json={"kind": "503", "service": "google-calendar", "count": 1},
    )
    assert fault.status_code == 201
    answer = alice.get(EVENTS)
    assert error_of(answer) == (503, "backendError")
    assert alice.get(EVENTS).status_code == 200


def test_token_endpoint_fault_is_retried_by_google_auth(sandbox, http):
    http.post(
        f"{sandbox.base_url}/_sandbox/api/faults",
        json={"kind": "503", "service": "google-oauth", "count": 1},
    )
    creds = sa_credentials(sandbox, http)  # google-auth retries 503 on the token endpoint
    assert creds.valid


def test_latency_applies_to_google(sandbox, http, alice):
    http.put(
        f"{sandbox.base_url}/_sandbox/api/latency",
        json={"services": {"google-calendar": 0.3}},
    )
    started = time.monotonic()
    assert alice.get(EVENTS).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_unknown_path_is_a_google_404(alice):
    answer = alice.get("/calendars/primary/nothing-here")
    assert error_of(answer) == (404, "notFound")


def test_request_log_keeps_no_tokens(sandbox, http, alice):
    answer = http.get(f"{alice.root}{EVENTS}", params={"oauth_token": alice.token})
    assert answer.status_code == 200  # the token may come as a query parameter too
    log = http.get(f"{sandbox.base_url}/_sandbox/api/log").json()["value"]
    entry = [e for e in log if e["service"] == "google-calendar"][-1]
    assert entry["query"]["oauth_token"] == "***"
    assert alice.token not in str(log)
    assert entry["bucket"] == ["google", ALICE]


def test_dropped_connection_after_the_write_then_retry_gives_409(sandbox, http, alice):
    """A lost response to an insert: the retry with the same id finds the event (409)."""
    import requests

    http.post(
        f"{sandbox.base_url}/_sandbox/api/faults",
        json={"kind": "drop", "service": "google-calendar", "method": "POST", "count": 1,
              "after_write": True},
    )  # fmt: skip
    with pytest.raises(requests.ConnectionError):
        alice.insert(id="lost00001")
    assert error_of(alice.insert(id="lost00001")) == (409, "duplicate")
    assert alice.get(f"{EVENTS}/lost00001").status_code == 200


def test_service_account_tokens_still_come_after_the_clock_moves(sandbox, http):
    """Assertions carry the client's real time; moving the sandbox clock must not break them."""
    sandbox.sandbox.advance_clock(3 * 3600)
    assert sa_credentials(sandbox, http).valid
