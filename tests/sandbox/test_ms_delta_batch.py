"""calendarView/delta rounds and JSON batching."""

from __future__ import annotations

import pytest

from tests.support.ms_sandbox import ROOM, ROOM2, Graph, app_token, event_body, session_for

WINDOW = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-02-01T00:00:00Z"}


@pytest.fixture
def graph(sandbox):
    return Graph(sandbox, app_token(sandbox))


def _round(graph, first_url, params=None, page=2):
    """Follow next links to the delta link; returns (items, delta link, pages)."""
    prefer = {"Prefer": f"odata.maxpagesize={page}"}
    response = graph("GET", first_url, params=params, headers=prefer)
    items, pages = [], 0
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["Preference-Applied"] == f"odata.maxpagesize={page}"
        body = response.json()
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        response = graph("GET", body["@odata.nextLink"], headers=prefer)


def test_delta_pages_then_reports_changes_and_removals(graph, sandbox):
    ids = [
        graph(
            "POST",
            f"/users/{ROOM}/events",
            json=event_body(f"E{i}", f"2030-01-1{i}T09:00:00", f"2030-01-1{i}T10:00:00"),
        ).json()["id"]
        for i in range(5)
    ]
    items, delta_link, pages = _round(graph, f"/users/{ROOM}/calendarView/delta", WINDOW)
    assert [e["id"] for e in items] == ids and pages == 3

    graph("PATCH", f"/users/{ROOM}/events/{ids[0]}", json={"subject": "Moved"})
    graph("DELETE", f"/users/{ROOM}/events/{ids[1]}")
    control = session_for(sandbox)
    made = control.post(
        f"{sandbox.base_url}/_sandbox/api/microsoft/mailboxes/{ROOM}/events",
        json=event_body("From Outlook", "2030-01-20T09:00:00", "2030-01-20T10:00:00"),
    )
    assert made.status_code == 201
    changes, next_delta, _ = _round(graph, delta_link)
    by_id = {e["id"]: e for e in changes}
    assert by_id[ids[0]]["subject"] == "Moved"
    assert by_id[ids[1]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": ids[1],
        "@removed": {"reason": "deleted"},
    }
    assert by_id[made.json()["id"]]["subject"] == "From Outlook"
    assert len(changes) == 3

    quiet, _, _ = _round(graph, next_delta)
    assert quiet == []


def test_event_moved_out_of_the_window_is_removed(graph):
    event = graph("POST", f"/users/{ROOM}/events", json=event_body()).json()
    _, delta_link, _ = _round(graph, f"/users/{ROOM}/calendarView/delta", WINDOW)
    graph(
        "PATCH",
        f"/users/{ROOM}/events/{event['id']}",
        json=event_body(start="2031-01-07T09:00:00", end="2031-01-07T10:00:00"),
    )
    changes, _, _ = _round(graph, delta_link)
    assert changes == [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": event["id"],
            "@removed": {"reason": "deleted"},
        }
    ]


@pytest.mark.parametrize("option", ["$select", "$expand", "$filter", "$orderby", "$search"])
def test_delta_refuses_query_options(graph, option):
    response = graph(
        "GET", f"/users/{ROOM}/calendarView/delta", params=WINDOW | {option: "subject"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorInvalidUrlQuery"


def test_delta_needs_a_window(graph):
    response = graph("GET", f"/users/{ROOM}/calendarView/delta")
    assert response.status_code == 400


def test_expired_delta_token_is_410_sync_state_not_found(graph, sandbox):
    graph("POST", f"/users/{ROOM}/events", json=event_body())
    _, delta_link, _ = _round(graph, f"/users/{ROOM}/calendarView/delta", WINDOW)
    expired = session_for(sandbox).post(
        f"{sandbox.base_url}/_sandbox/api/microsoft/delta/expire", json={"mailbox": ROOM}
    )
    assert expired.json()["expired"] >= 1
    response = graph("GET", delta_link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "SyncStateNotFound"


def _get(i, mailbox=ROOM):
    return {"id": str(i), "method": "GET", "url": f"/users/{mailbox}/events"}


def test_batch_of_21_is_refused(graph):
    response = graph("POST", "/$batch", json={"requests": [_get(i) for i in range(21)]})
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


def test_batch_items_have_their_own_status_and_ids_must_be_unique(graph):
    body = {
        "requests": [
            {
                "id": "a",
                "method": "POST",
                "url": f"/users/{ROOM}/events",
                "body": event_body(),
                "headers": {"Content-Type": "application/json"},
            },
            {"id": "b", "method": "GET", "url": "/users/nobody@contoso.test/events"},
            _get("c"),
        ]
    }
    response = graph("POST", "/$batch", json=body)
    assert response.status_code == 200
    items = {r["id"]: r for r in response.json()["responses"]}
    assert items["a"]["status"] == 201 and items["a"]["body"]["subject"] == "Stand-up"
    assert items["b"]["status"] == 404 and items["c"]["status"] == 200
    dup = graph("POST", "/$batch", json={"requests": [_get("x"), _get("x")]})
    assert dup.status_code == 400
    no_type = graph(
        "POST",
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "POST", "url": f"/users/{ROOM}/events", "body": event_body()}
            ]
        },
    )
    assert no_type.status_code == 400


def test_batch_depends_on_fails_dependents_with_424(graph):
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": "/users/nobody@contoso.test/events"},
            {"id": "2", "method": "GET", "url": f"/users/{ROOM}/events", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": f"/users/{ROOM2}/events"},
        ]
    }
    items = {r["id"]: r for r in graph("POST", "/$batch", json=body).json()["responses"]}
    assert items["1"]["status"] == 404 and items["2"]["status"] == 424
    assert items["3"]["status"] == 200


def test_each_batch_item_counts_against_the_mailbox_limit(graph, sandbox):
    http = session_for(sandbox)
    http.put(
        f"{sandbox.base_url}/_sandbox/api/limits",
        json={"graph": {"max_requests": 5, "window_seconds": 600}},
    )
    response = graph("POST", "/$batch", json={"requests": [_get(i) for i in range(8)]})
    assert response.status_code == 200
    statuses = sorted(r["status"] for r in response.json()["responses"])
    assert statuses == [200] * 5 + [429] * 3
    throttled = next(r for r in response.json()["responses"] if r["status"] == 429)
    assert int(throttled["headers"]["retry-after"]) > 0
    # Another mailbox has its own bucket.
    assert graph("GET", f"/users/{ROOM2}/events").status_code == 200
    counters = http.get(f"{sandbox.base_url}/_sandbox/api/counters").json()
    assert counters["mailbox"][ROOM] == 8 and counters["status"]["429"] == 3


def test_an_unordered_batch_runs_four_items_at_a_time(graph, sandbox):
    """Graph sends at most 4 items of an unordered batch to Outlook at once: with a mailbox
    cap of 3 in flight and items that take a while, the 4th concurrent item is throttled."""
    http = session_for(sandbox)
    http.put(f"{sandbox.base_url}/_sandbox/api/limits", json={"graph": {"max_in_flight": 3}})
    http.put(f"{sandbox.base_url}/_sandbox/api/latency", json={"per_item": 0.3})
    response = graph("POST", "/$batch", json={"requests": [_get(i) for i in range(4)]})
    statuses = sorted(r["status"] for r in response.json()["responses"])
    assert statuses == [200, 200, 200, 429]
    # With dependsOn, items run one at a time: nothing is throttled.
    chained = [_get(0)] + [{**_get(i), "dependsOn": [str(i - 1)]} for i in range(1, 4)]
    response = graph("POST", "/$batch", json={"requests": chained})
    assert sorted(r["status"] for r in response.json()["responses"]) == [200] * 4
