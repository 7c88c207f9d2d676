"""Recurring series in the Microsoft sandbox, over real HTTPS: a master expands into
occurrences in calendarView, calendarView/delta and /instances; an occurrence's own id reads,
changes (an exception) and deletes that one occurrence; changes to the master reach the
instances; Graph's refusals of recurrences it cannot accept."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ms_sandbox import ALICE, ROOM, Graph, app_token, event_body, session_for

JANUARY = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-02-01T00:00:00Z"}
# 2030-01-07 is a Monday.
WEEKLY_MON_WED_4 = {
    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
    "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 4},
}
DAILY_3 = {
    "pattern": {"type": "daily", "interval": 1},
    "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3},
}


@pytest.fixture
def graph(sandbox):
    return Graph(sandbox, app_token(sandbox))


def create_series(graph, recurrence: dict[str, Any], mailbox: str = ROOM, **extra) -> dict:
    response = graph(
        "POST",
        f"/users/{mailbox}/events",
        json=event_body("Weekly", recurrence=recurrence, **extra),
    )
    assert response.status_code == 201, response.text
    return response.json()


def view(graph, mailbox: str = ROOM, window: dict | None = None) -> list[dict]:
    response = graph(
        "GET", f"/users/{mailbox}/calendarView", params={**(window or JANUARY), "$top": "100"}
    )
    assert response.status_code == 200, response.text
    return response.json()["value"]


def delta_round(graph, url: str, params: dict | None = None) -> tuple[list[dict], str]:
    response = graph("GET", url, params=params)
    items = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"]
        response = graph("GET", body["@odata.nextLink"])


def starts(items: list[dict]) -> list[str]:
    return [item["start"]["dateTime"][:16] for item in items]


def test_a_weekly_series_expands_into_occurrences_in_the_view(graph):
    master = create_series(graph, WEEKLY_MON_WED_4)
    assert master["type"] == "seriesMaster" and master["seriesMasterId"] is None
    assert master["recurrence"] == {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": ["monday", "wednesday"],
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": "numbered",
            "startDate": "2030-01-07",
            "endDate": "0001-01-01",
            "recurrenceTimeZone": "UTC",
            "numberOfOccurrences": 4,
        },
    }

    items = view(graph)
    assert starts(items) == [
        "2030-01-07T09:00",
        "2030-01-09T09:00",
        "2030-01-14T09:00",
        "2030-01-16T09:00",
    ]
    assert {i["type"] for i in items} == {"occurrence"}
    assert {i["seriesMasterId"] for i in items} == {master["id"]}
    assert [i["originalStart"] for i in items] == [
        "2030-01-07T09:00:00Z",
        "2030-01-09T09:00:00Z",
        "2030-01-14T09:00:00Z",
        "2030-01-16T09:00:00Z",
    ]
    assert all(i["recurrence"] is None for i in items)
    assert len({i["id"] for i in items} | {master["id"]}) == 5
    # iCalUId differs per occurrence (event resource: "different for each occurrence").
    assert len({i["iCalUId"] for i in items} | {master["iCalUId"]}) == 5
    # Ids are stable across reads, and an occurrence can be read by its own id.
    assert [i["id"] for i in view(graph)] == [i["id"] for i in items]
    one = graph("GET", f"/users/{ROOM}/events/{items[1]['id']}").json()
    assert (one["type"], one["subject"], one["start"]) == (
        "occurrence",
        "Weekly",
        items[1]["start"],
    )
    # The events list shows the master, not its occurrences.
    listed = graph("GET", f"/users/{ROOM}/events").json()["value"]
    assert [e["id"] for e in listed] == [master["id"]]


def test_daily_interval_with_an_end_date(graph):
    create_series(
        graph,
        {
            "pattern": {"type": "Daily", "interval": 2},
            "range": {"type": "endDate", "startDate": "2030-01-07", "endDate": "2030-01-14"},
        },
    )
    assert starts(view(graph)) == [
        "2030-01-07T09:00",
        "2030-01-09T09:00",
        "2030-01-11T09:00",
        "2030-01-13T09:00",
    ]


def test_every_other_week_from_a_start_outside_the_pattern(graph):
    """The range starts on the event's date; the first occurrence is the first day that
    fits the pattern (here the Wednesday after a Monday start)."""
    create_series(
        graph,
        {
            "pattern": {
                "type": "weekly",
                "interval": 2,
                "daysOfWeek": ["wednesday", "friday"],
                "firstDayOfWeek": "monday",
            },
            "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 4},
        },
    )
    assert starts(view(graph)) == [
        "2030-01-09T09:00",
        "2030-01-11T09:00",
        "2030-01-23T09:00",
        "2030-01-25T09:00",
    ]


def test_an_endless_series_is_expanded_two_years_ahead(graph):
    master = create_series(
        graph,
        {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "noEnd", "startDate": "2030-01-07"},
        },
    )
    window = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2034-01-01T00:00:00Z"}
    response = graph(
        "GET", f"/users/{ROOM}/events/{master['id']}/instances", params={**window, "$top": "1000"}
    )
    assert response.status_code == 200, response.text
    items = response.json()["value"]
    assert len(items) == 731  # 2030-01-07 and the 730 days after it
    assert items[-1]["start"]["dateTime"].startswith("2032-01-07T09:00")


def test_wall_clock_time_is_kept_across_daylight_saving(graph):
    body = event_body("Berlin", "2030-03-29T09:00:00", "2030-03-29T10:00:00")
    body["start"]["timeZone"] = body["end"]["timeZone"] = "W. Europe Standard Time"
    body["recurrence"] = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": "2030-03-29", "numberOfOccurrences": 3},
    }
    assert graph("POST", f"/users/{ROOM}/events", json=body).status_code == 201
    window = {"startDateTime": "2030-03-28T00:00:00Z", "endDateTime": "2030-04-02T00:00:00Z"}
    # 09:00 in Berlin: 08:00 UTC before the change on 31 March, 07:00 UTC after it.
    assert starts(view(graph, window=window)) == [
        "2030-03-29T08:00",
        "2030-03-30T08:00",
        "2030-03-31T07:00",
    ]


def test_instances_needs_a_window_and_leaves_out_deleted_occurrences(graph):
    master = create_series(graph, DAILY_3)
    url = f"/users/{ROOM}/events/{master['id']}/instances"
    missing = graph("GET", url)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "ErrorInvalidParameter"
    first, second, third = graph("GET", url, params=JANUARY).json()["value"]
    assert graph("DELETE", f"/users/{ROOM}/events/{second['id']}").status_code == 204
    left = graph("GET", url, params=JANUARY).json()["value"]
    assert [i["id"] for i in left] == [first["id"], third["id"]]
    narrow = {"startDateTime": "2030-01-09T00:00:00Z", "endDateTime": "2030-01-10T00:00:00Z"}
    assert [i["id"] for i in graph("GET", url, params=narrow).json()["value"]] == [third["id"]]
    assert graph("GET", f"/users/{ROOM}/events/{second['id']}").status_code == 404
    single = graph("POST", f"/users/{ROOM}/events", json=event_body()).json()
    lone = graph("GET", f"/users/{ROOM}/events/{single['id']}/instances", params=JANUARY)
    assert lone.status_code == 200 and lone.json()["value"] == []


def test_patching_an_occurrence_makes_it_an_exception_that_keeps_its_changes(graph):
    master = create_series(graph, DAILY_3)
    first, second, third = view(graph)
    moved = graph(
        "PATCH",
        f"/users/{ROOM}/events/{second['id']}",
        json={
            "start": {"dateTime": "2030-01-08T14:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-08T15:00:00", "timeZone": "UTC"},
        },
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["id"], body["type"], body["seriesMasterId"]) == (
        second["id"],
        "exception",
        master["id"],
    )
    assert body["originalStart"] == "2030-01-08T09:00:00Z"
    assert body["changeKey"] != second["changeKey"]

    renamed = graph("PATCH", f"/users/{ROOM}/events/{master['id']}", json={"subject": "Renamed"})
    assert renamed.status_code == 200
    items = {i["id"]: i for i in view(graph)}
    assert [items[i]["subject"] for i in (first["id"], second["id"], third["id"])] == [
        "Renamed"
    ] * 3
    assert items[second["id"]]["start"]["dateTime"].startswith("2030-01-08T14:00")
    assert items[second["id"]]["type"] == "exception"
    assert items[first["id"]]["type"] == "occurrence"

    # A subject changed on the exception is its own from then on.
    graph("PATCH", f"/users/{ROOM}/events/{second['id']}", json={"subject": "Special"})
    graph("PATCH", f"/users/{ROOM}/events/{master['id']}", json={"subject": "Again"})
    assert [i["subject"] for i in view(graph)] == ["Again", "Special", "Again"]


def test_moving_the_master_keeps_occurrence_ids_and_exceptions(graph):
    master = create_series(graph, DAILY_3)
    ids = [i["id"] for i in view(graph)]
    graph(
        "PATCH",
        f"/users/{ROOM}/events/{ids[2]}",
        json={
            "start": {"dateTime": "2030-01-09T16:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-09T17:00:00", "timeZone": "UTC"},
        },
    )
    response = graph(
        "PATCH",
        f"/users/{ROOM}/events/{master['id']}",
        json={
            "start": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T11:30:00", "timeZone": "UTC"},
        },
    )
    assert response.status_code == 200, response.text
    items = view(graph)
    assert [i["id"] for i in items] == ids
    assert starts(items) == ["2030-01-07T11:00", "2030-01-08T11:00", "2030-01-09T16:00"]
    # Moving it to another day without the range alongside breaks "startDate = start's date".
    refused = graph(
        "PATCH",
        f"/users/{ROOM}/events/{master['id']}",
        json={
            "start": {"dateTime": "2030-01-10T11:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-10T11:30:00", "timeZone": "UTC"},
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ErrorPropertyValidationFailure"


def test_a_new_rule_drops_exceptions_and_deleted_occurrences(graph):
    master = create_series(graph, DAILY_3)
    first, second, third = view(graph)
    graph("DELETE", f"/users/{ROOM}/events/{first['id']}")
    graph("PATCH", f"/users/{ROOM}/events/{second['id']}", json={"subject": "Own"})
    rule = {**DAILY_3, "range": {**DAILY_3["range"], "numberOfOccurrences": 2}}
    response = graph("PATCH", f"/users/{ROOM}/events/{master['id']}", json={"recurrence": rule})
    assert response.status_code == 200, response.text
    items = view(graph)
    assert [(i["id"], i["type"], i["subject"]) for i in items] == [
        (first["id"], "occurrence", "Weekly"),
        (second["id"], "occurrence", "Weekly"),
    ]
    assert graph("GET", f"/users/{ROOM}/events/{third['id']}").status_code == 404


def test_delta_reports_occurrences_exceptions_and_removals(graph):
    url = f"/users/{ROOM}/calendarView/delta"
    _, link = delta_round(graph, url, JANUARY)
    master = create_series(graph, DAILY_3)
    added, link = delta_round(graph, link)
    assert [i["type"] for i in added] == ["occurrence"] * 3  # never the master
    first, second, third = added

    graph(
        "PATCH",
        f"/users/{ROOM}/events/{second['id']}",
        json={
            "start": {"dateTime": "2030-01-08T13:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-08T14:00:00", "timeZone": "UTC"},
        },
    )
    changed, link = delta_round(graph, link)
    assert [(i["id"], i["type"]) for i in changed] == [(second["id"], "exception")]

    graph("DELETE", f"/users/{ROOM}/events/{third['id']}")
    removed, link = delta_round(graph, link)
    assert removed == [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": third["id"],
            "@removed": {"reason": "deleted"},
        }
    ]

    graph("DELETE", f"/users/{ROOM}/events/{master['id']}")
    gone, link = delta_round(graph, link)
    assert sorted(i["id"] for i in gone) == sorted([first["id"], second["id"]])
    assert all(i["@removed"] == {"reason": "deleted"} for i in gone)
    assert view(graph) == []
    quiet, _ = delta_round(graph, link)
    assert quiet == []


def test_the_control_api_creates_edits_and_deletes_occurrences(graph, sandbox):
    http = session_for(sandbox)
    api = f"{sandbox.base_url}/_sandbox/api/microsoft/mailboxes/{ROOM}/events"
    made = http.post(api, json=event_body("From Outlook", recurrence=DAILY_3))
    assert made.status_code == 201, made.text
    master = made.json()
    assert master["type"] == "seriesMaster"
    listed = http.get(api).json()["value"]
    occurrences = [e for e in listed if e["seriesMasterId"] == master["id"]]
    assert [e["type"] for e in occurrences] == ["occurrence"] * 3

    first, second, third = occurrences
    moved = http.patch(
        f"{api}/{first['id']}",
        json={
            "start": {"dateTime": "2030-01-07T07:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T08:00:00", "timeZone": "UTC"},
        },
    )
    assert moved.status_code == 200 and moved.json()["type"] == "exception"
    assert http.delete(f"{api}/{third['id']}").status_code == 204
    assert http.get(f"{api}/{second['id']}").json()["type"] == "occurrence"
    assert http.get(f"{api}/{third['id']}").status_code == 400

    seen = view(graph)
    assert [(i["id"], i["type"]) for i in seen] == [
        (first["id"], "exception"),
        (second["id"], "occurrence"),
    ]
    assert starts(seen) == ["2030-01-07T07:00", "2030-01-08T09:00"]


def test_a_series_inviting_a_room_is_answered_occurrence_by_occurrence(graph, sandbox):
    resource = {"emailAddress": {"address": ROOM}, "type": "resource"}
    create_series(graph, DAILY_3, mailbox=ALICE, attendees=[resource])
    sandbox.sandbox.wait_idle()
    copies = view(graph)
    assert starts(copies) == ["2030-01-07T09:00", "2030-01-08T09:00", "2030-01-09T09:00"]
    own = view(graph, mailbox=ALICE)
    assert [i["attendees"][0]["status"]["response"] for i in own] == ["accepted"] * 3
    # The room's copies share each occurrence's iCalUId.
    assert sorted(c["iCalUId"] for c in copies) == sorted(o["iCalUId"] for o in own)


BAD_RECURRENCES = [
    (
        {"pattern": {"type": "weekly", "interval": 1}, "range": WEEKLY_MON_WED_4["range"]},
        400,
        "ErrorPropertyValidationFailure",
    ),
    (
        {"pattern": {"type": "daily", "interval": 0}, "range": DAILY_3["range"]},
        400,
        "ErrorPropertyValidationFailure",
    ),
    (
        {**DAILY_3, "range": {**DAILY_3["range"], "numberOfOccurrences": 0}},
        400,
        "ErrorPropertyValidationFailure",
    ),
    (
        {**DAILY_3, "range": {"type": "endDate", "startDate": "2030-01-07"}},
        400,
        "ErrorPropertyValidationFailure",
    ),
    (
        {**DAILY_3, "range": {"type": "noEnd", "startDate": "2030-01-08"}},
        400,
        "ErrorPropertyValidationFailure",
    ),
    ({"pattern": DAILY_3["pattern"]}, 400, "ErrorPropertyValidationFailure"),
    (
        {**DAILY_3, "pattern": {"type": "fortnightly", "interval": 1}},
        400,
        "RequestBodyRead",
    ),
    (
        {
            **WEEKLY_MON_WED_4,
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["funday"]},
        },
        400,
        "RequestBodyRead",
    ),
    (
        {**DAILY_3, "pattern": {"type": "daily", "interval": 1, "every": 2}},
        400,
        "RequestBodyRead",
    ),
    (
        {**DAILY_3, "range": {**DAILY_3["range"], "startDate": "07/01/2030"}},
        400,
        "RequestBodyRead",
    ),
    (
        {**DAILY_3, "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 7}},
        501,
        "NotImplemented",
    ),
    (
        {
            **DAILY_3,
            "pattern": {
                "type": "relativeYearly",
                "interval": 1,
                "daysOfWeek": ["monday"],
                "month": 1,
            },
        },
        501,
        "NotImplemented",
    ),
    (
        {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["sunday"]},
            "range": {"type": "endDate", "startDate": "2030-01-07", "endDate": "2030-01-12"},
        },
        400,
        "ErrorRecurrenceHasNoOccurrence",
    ),
]


@pytest.mark.parametrize(("recurrence", "status", "code"), BAD_RECURRENCES)
def test_recurrences_graph_cannot_accept_are_refused(graph, sandbox, recurrence, status, code):
    response = graph("POST", f"/users/{ROOM}/events", json=event_body(recurrence=recurrence))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert view(graph) == []
    # The control API validates the same way (its own error shape).
    control = session_for(sandbox).post(
        f"{sandbox.base_url}/_sandbox/api/microsoft/mailboxes/{ROOM}/events",
        json=event_body(recurrence=recurrence),
    )
    assert control.status_code == 400 and code in control.text


def test_an_occurrence_cannot_get_a_recurrence_of_its_own(graph):
    create_series(graph, DAILY_3)
    first = view(graph)[0]
    response = graph("PATCH", f"/users/{ROOM}/events/{first['id']}", json={"recurrence": DAILY_3})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorInvalidRequest"
    assert view(graph)[0]["type"] == "occurrence"


def test_an_occurrence_cannot_cross_or_overlap_its_neighbours(graph):
    create_series(graph, DAILY_3)
    second = view(graph)[1]

    def move(event_id: str, start: str, end: str):
        return graph(
            "PATCH",
            f"/users/{ROOM}/events/{event_id}",
            json={
                "start": {"dateTime": start, "timeZone": "UTC"},
                "end": {"dateTime": end, "timeZone": "UTC"},
            },
        )

    crossing = move(second["id"], "2030-01-10T09:00:00", "2030-01-10T10:00:00")
    assert crossing.status_code == 400
    assert crossing.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"
    before_first = move(second["id"], "2030-01-07T08:00:00", "2030-01-07T08:30:00")
    assert before_first.status_code == 400
    assert before_first.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"
    overlap = move(second["id"], "2030-01-09T08:00:00", "2030-01-09T09:30:00")
    assert overlap.status_code == 400
    assert overlap.json()["error"]["code"] == "ErrorOccurrenceTimeSpanTooBig"
    assert starts(view(graph)) == ["2030-01-07T09:00", "2030-01-08T09:00", "2030-01-09T09:00"]
    assert move(second["id"], "2030-01-09T07:00:00", "2030-01-09T08:00:00").status_code == 200
