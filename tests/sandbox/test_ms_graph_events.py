"""Graph calendars and events: CRUD, faithful shapes and the strictness cases."""

from __future__ import annotations

import re

import pytest

from integrations.sandbox.config import default_config
from tests.support.ms_sandbox import ALICE, BOB, EXT_ID, ROOM, Graph, app_token, event_body, sign_in

SEVEN_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")


@pytest.fixture
def graph(sandbox):
    return Graph(sandbox, app_token(sandbox))


def test_create_read_update_delete_in_a_room_mailbox(graph):
    created = graph("POST", f"/users/{ROOM}/events", json=event_body())
    assert created.status_code == 201
    event = created.json()
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["iCalUId"] and event["id"].endswith("=")
    assert SEVEN_DIGITS.match(event["start"]["dateTime"]) and event["start"]["timeZone"] == "UTC"
    assert "transactionId" not in event and "singleValueExtendedProperties" not in event

    fetched = graph("GET", f"/users/{ROOM}/events/{event['id']}").json()
    assert fetched["subject"] == "Stand-up"

    patched = graph(
        "PATCH", f"/users/{ROOM}/calendar/events/{event['id']}", json={"subject": "Retro"}
    ).json()
    assert patched["subject"] == "Retro" and patched["changeKey"] != event["changeKey"]

    assert graph("DELETE", f"/users/{ROOM}/events/{event['id']}").status_code == 204
    gone = graph("GET", f"/users/{ROOM}/events/{event['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert set(gone.json()["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_calendars_of_a_mailbox(graph):
    calendars = graph("GET", f"/users/{ROOM}/calendars").json()["value"]
    (default,) = [c for c in calendars if c["isDefaultCalendar"]]
    created = graph("POST", f"/users/{ROOM}/calendars/{default['id']}/events", json=event_body())
    assert created.status_code == 201
    listed = graph("GET", f"/users/{ROOM}/calendars/{default['id']}/events").json()["value"]
    assert [e["id"] for e in listed] == [created.json()["id"]]


def test_transaction_id_deduplicates_a_retried_create(graph):
    body = event_body(transactionId="resv-42-v1")
    first = graph("POST", f"/users/{ROOM}/events", json=body).json()
    second = graph("POST", f"/users/{ROOM}/events", json=body).json()
    assert first["id"] == second["id"] and first["transactionId"] == "resv-42-v1"
    assert len(graph("GET", f"/users/{ROOM}/events").json()["value"]) == 1
    changed = graph("PATCH", f"/users/{ROOM}/events/{first['id']}", json={"transactionId": "other"})
    assert changed.status_code == 400


def test_extended_properties_only_when_expanded_and_filterable_with_any(graph):
    prop = [{"id": EXT_ID, "value": "42"}]
    mine = graph(
        "POST", f"/users/{ROOM}/events", json=event_body(singleValueExtendedProperties=prop)
    ).json()
    graph(
        "POST",
        f"/users/{ROOM}/events",
        json=event_body("Other", singleValueExtendedProperties=[{"id": EXT_ID, "value": "7"}]),
    )
    assert "singleValueExtendedProperties" not in mine
    expand = f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"
    got = graph("GET", f"/users/{ROOM}/events/{mine['id']}", params={"$expand": expand}).json()
    assert got["singleValueExtendedProperties"] == prop
    flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXT_ID}' and ep/value eq '42')"
    found = graph("GET", f"/users/{ROOM}/events", params={"$filter": flt}).json()["value"]
    assert [e["id"] for e in found] == [mine["id"]]
    unfiltered = graph(
        "GET", f"/users/{ROOM}/events", params={"$expand": "singleValueExtendedProperties"}
    )
    assert unfiltered.status_code == 400


def test_a_batch_get_expands_the_property_per_item_as_a_single_get_does(graph):
    """Reserva's pull reads unattributed events by id with the property expanded, in $batch
    GETs (Graph's documented form: GET /users/{id}/events/{id}?$expand=
    singleValueExtendedProperties($filter=id eq '...')): a tagged event shows its value, an
    untagged one has no such member, a missing one answers 404 on its own."""
    prop = [{"id": EXT_ID, "value": "42"}]
    mine = graph(
        "POST", f"/users/{ROOM}/events", json=event_body(singleValueExtendedProperties=prop)
    ).json()
    theirs = graph("POST", f"/users/{ROOM}/events", json=event_body("Walk-in")).json()
    expand = f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')".replace(" ", "%20")
    single = graph("GET", f"/users/{ROOM}/events/{theirs['id']}?$expand={expand}").json()
    assert single["subject"] == "Walk-in" and "singleValueExtendedProperties" not in single
    requests_ = [
        {"id": name, "method": "GET", "url": f"/users/{ROOM}/events/{event_id}?$expand={expand}"}
        for name, event_id in (("mine", mine["id"]), ("theirs", theirs["id"]), ("gone", "AAMk0"))
    ]
    answers = graph("POST", "/$batch", json={"requests": requests_}).json()["responses"]
    items = {a["id"]: a for a in answers}
    assert items["mine"]["status"] == 200
    assert items["mine"]["body"]["singleValueExtendedProperties"] == prop
    assert items["theirs"]["status"] == 200
    assert "singleValueExtendedProperties" not in items["theirs"]["body"]
    assert items["gone"]["status"] == 404


def test_if_match_with_a_stale_change_key_is_412(graph):
    event = graph("POST", f"/users/{ROOM}/events", json=event_body()).json()
    ok = graph(
        "PATCH",
        f"/users/{ROOM}/events/{event['id']}",
        json={"subject": "A"},
        headers={"If-Match": event["@odata.etag"]},
    )
    assert ok.status_code == 200
    stale = graph(
        "PATCH",
        f"/users/{ROOM}/events/{event['id']}",
        json={"subject": "B"},
        headers={"If-Match": event["@odata.etag"]},
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    delete = graph(
        "DELETE", f"/users/{ROOM}/events/{event['id']}", headers={"If-Match": event["@odata.etag"]}
    )
    assert delete.status_code == 412


def test_unknown_property_is_refused(graph):
    response = graph("POST", f"/users/{ROOM}/events", json=event_body(colour="blue"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "RequestBodyRead"


def test_unknown_time_zone_is_refused(graph):
    body = event_body()
    body["start"]["timeZone"] = body["end"]["timeZone"] = "Greenwich Mean Time"
    response = graph("POST", f"/users/{ROOM}/events", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "TimeZoneNotSupportedException"


def test_windows_time_zone_kept_and_output_in_utc_unless_preferred(graph):
    body = event_body(start="2030-07-01T10:00:00", end="2030-07-01T11:00:00")
    body["start"]["timeZone"] = body["end"]["timeZone"] = "W. Europe Standard Time"
    event = graph("POST", f"/users/{ROOM}/events", json=body).json()
    assert event["originalStartTimeZone"] == "W. Europe Standard Time"
    assert event["start"] == {"dateTime": "2030-07-01T08:00:00.0000000", "timeZone": "UTC"}
    local = graph(
        "GET",
        f"/users/{ROOM}/events/{event['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert local.json()["start"] == {
        "dateTime": "2030-07-01T01:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert "outlook.timezone" in local.headers["Preference-Applied"]


def test_calendar_view_pages_with_next_links_and_needs_a_window(graph):
    for hour in range(12):
        graph(
            "POST",
            f"/users/{ROOM}/events",
            json=event_body(
                f"E{hour}", f"2030-01-08T{hour:02d}:00:00", f"2030-01-08T{hour:02d}:30:00"
            ),
        )
    graph(
        "POST",
        f"/users/{ROOM}/events",
        json=event_body("Outside", "2030-02-01T09:00:00", "2030-02-01T10:00:00"),
    )
    window = {"startDateTime": "2030-01-08T00:00:00Z", "endDateTime": "2030-01-09T00:00:00Z"}
    page = graph("GET", f"/users/{ROOM}/calendar/calendarView", params=window).json()
    seen = [e["subject"] for e in page["value"]]
    page = graph("GET", page["@odata.nextLink"]).json()
    seen += [e["subject"] for e in page["value"]]
    assert seen == [f"E{h}" for h in range(12)] and "@odata.nextLink" not in page
    missing = graph("GET", f"/users/{ROOM}/calendarView")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "ErrorInvalidParameter"


def test_missing_and_bad_tokens_are_401(sandbox):
    assert Graph(sandbox, "")("GET", f"/users/{ROOM}/events").json()["error"]["code"] == (
        "InvalidAuthenticationToken"
    )
    garbage = Graph(sandbox, "not-a-jwt")("GET", f"/users/{ROOM}/events")
    assert garbage.status_code == 401


def test_expired_app_token_is_401(sandbox):
    graph = Graph(sandbox, app_token(sandbox))
    sandbox.sandbox.advance_clock(2 * 3600)
    response = graph("GET", f"/users/{ROOM}/events")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_control_expires_every_access_token_issued_so_far(sandbox):
    """``access-tokens/expire``: tokens issued before it answer 401 as expired ones do; a
    token issued afterwards works (the convergence run makes its workers get new ones)."""
    old = Graph(sandbox, app_token(sandbox))
    assert old("GET", f"/users/{ROOM}/events").status_code == 200
    answer = old.http.post(f"{sandbox.base_url}/_sandbox/api/microsoft/access-tokens/expire")
    assert answer.status_code == 200 and answer.json()["expired"] >= 1
    refused = old("GET", f"/users/{ROOM}/events")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "expired" in refused.json()["error"]["message"]
    assert Graph(sandbox, app_token(sandbox))("GET", f"/users/{ROOM}/events").status_code == 200


def test_unknown_mailbox_and_me_with_an_app_token(graph):
    unknown = graph("GET", "/users/nobody@contoso.test/events")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ErrorInvalidUser"
    assert graph("GET", "/me/events").status_code == 400


def test_delegated_token_reaches_only_the_signed_in_users_mailbox(sandbox):
    _app, result = sign_in(sandbox, ALICE)
    graph = Graph(sandbox, result["access_token"])
    assert graph("POST", "/me/events", json=event_body()).status_code == 201
    assert graph("GET", f"/users/{ALICE}/events").status_code == 200
    other = graph("GET", f"/users/{BOB}/events")
    assert other.status_code == 403 and other.json()["error"]["code"] == "ErrorAccessDenied"
    assert graph("GET", f"/users/{ROOM}/events").status_code == 403


@pytest.fixture
def sandbox_config():
    config = default_config()
    apps = config["microsoft"]["tenants"][0]["apps"]
    apps.append(
        dict(
            apps[0],
            client_id="11111111-2222-3333-4444-555555555555",
            application_permissions=["Place.Read.All"],
        )
    )
    return config


def test_app_without_calendar_permission_is_403(sandbox):
    from tests.support.ms_sandbox import GRAPH_DEFAULT, confidential_app

    app = confidential_app(sandbox, client_id="11111111-2222-3333-4444-555555555555")
    token = app.acquire_token_for_client(GRAPH_DEFAULT)["access_token"]
    response = Graph(sandbox, token)("GET", f"/users/{ROOM}/events")
    assert response.status_code == 403 and response.json()["error"]["code"] == "ErrorAccessDenied"


def test_get_schedule_reports_busy_slots(graph):
    graph(
        "POST",
        f"/users/{ROOM}/events",
        json=event_body(start="2030-01-07T09:00:00", end="2030-01-07T10:00:00"),
    )
    body = {
        "schedules": [ROOM, "nobody@contoso.test"],
        "startTime": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 60,
    }
    value = graph("POST", f"/users/{ROOM}/calendar/getSchedule", json=body).json()["value"]
    assert value[0]["availabilityView"] == "020"
    assert value[1]["error"]["responseCode"] == "ErrorMailRecipientNotFound"
