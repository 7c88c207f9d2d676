"""events.list in the sandbox: paging, maxResults, sync tokens (only on the last page,
cancelled events included, incompatible parameters refused, 410 when expired), filters,
singleEvents."""

from __future__ import annotations

import pytest

from tests.support.google_sandbox import (
    ALICE,
    alice_fixture,  # noqa: F401 - the "alice" fixture
    control,
    error_of,
    make_event,
)

EVENTS = "/calendars/primary/events"


def _bulk(sandbox, count: int) -> None:
    """Many events at once, straight into the store (paging tests need thousands)."""
    google = sandbox.sandbox.services["google"]
    with google.lock:
        calendar = google.calendars[ALICE]
        for n in range(count):
            google.create(calendar, f"bulk{n:06d}", make_event(summary=f"#{n}"), ALICE)


def _pages(api, **params):
    pages, token = [], None
    while True:
        query = dict(params, **({"pageToken": token} if token else {}))
        page = api.get(EVENTS, params=query)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        token = page.json().get("nextPageToken")
        if not token:
            return pages


def test_default_page_is_250_and_sync_token_only_on_the_last_page(sandbox, alice):
    _bulk(sandbox, 260)
    pages = _pages(alice)
    assert [len(p["items"]) for p in pages] == [250, 10]
    assert "nextSyncToken" not in pages[0] and "nextPageToken" in pages[0]
    assert "nextSyncToken" in pages[1] and "nextPageToken" not in pages[1]


def test_max_results_is_capped_at_2500(sandbox, alice):
    _bulk(sandbox, 2600)
    page = alice.get(EVENTS, params={"maxResults": 5000}).json()
    assert len(page["items"]) == 2500 and page["nextPageToken"]


def test_paging_with_max_results(sandbox, alice):
    _bulk(sandbox, 7)
    pages = _pages(alice, maxResults=3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    ids = [e["id"] for p in pages for e in p["items"]]
    assert len(set(ids)) == 7


def test_incremental_sync_returns_changes_and_cancelled_events(alice):
    alice.insert(id="keep00001")
    alice.insert(id="drop00001")
    token = _pages(alice)[-1]["nextSyncToken"]

    alice.patch(f"{EVENTS}/keep00001", json={"summary": "moved"})
    alice.delete(f"{EVENTS}/drop00001")
    alice.insert(id="fresh0001")

    changes = alice.get(EVENTS, params={"syncToken": token}).json()
    by_id = {e["id"]: e for e in changes["items"]}
    assert set(by_id) == {"keep00001", "drop00001", "fresh0001"}
    assert by_id["drop00001"]["status"] == "cancelled"
    assert by_id["keep00001"]["summary"] == "moved"

    # Nothing new: an empty page with a fresh token.
    quiet = alice.get(EVENTS, params={"syncToken": changes["nextSyncToken"]}).json()
    assert quiet["items"] == [] and quiet["nextSyncToken"]


def test_incremental_sync_pages_too(sandbox, alice):
    token = _pages(alice)[-1]["nextSyncToken"]
    _bulk(sandbox, 5)
    pages = _pages(alice, syncToken=token, maxResults=2)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert "nextSyncToken" in pages[-1] and all("nextSyncToken" not in p for p in pages[:-1])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeMin", "2030-01-01T00:00:00Z"),
        ("timeMax", "2030-01-01T00:00:00Z"),
        ("privateExtendedProperty", "reservation=1"),
        ("sharedExtendedProperty", "a=b"),
        ("q", "meeting"),
        ("orderBy", "updated"),
        ("iCalUID", "x@google.com"),
        ("updatedMin", "2030-01-01T00:00:00Z"),
        ("showDeleted", "false"),
    ],
)
def test_parameters_incompatible_with_sync_token_are_refused(alice, name, value):
    token = _pages(alice)[-1]["nextSyncToken"]
    answer = alice.get(EVENTS, params={"syncToken": token, name: value})
    assert error_of(answer) == (400, "invalid")


def test_expired_sync_token_answers_410_then_full_sync_works(sandbox, http, alice):
    alice.insert(id="plain0001")
    token = _pages(alice)[-1]["nextSyncToken"]
    expired = control(http, sandbox, "POST", "/sync-tokens/expire", json={"calendar": ALICE})
    assert expired.status_code == 200

    answer = alice.get(EVENTS, params={"syncToken": token})
    assert error_of(answer) == (410, "fullSyncRequired")
    assert answer.json()["error"]["message"] == (
        "Sync token is no longer valid, a full sync is required."
    )
    fresh = _pages(alice)[-1]
    assert [e["id"] for e in fresh["items"]] == ["plain0001"]
    assert alice.get(EVENTS, params={"syncToken": fresh["nextSyncToken"]}).status_code == 200


def test_unknown_sync_and_page_tokens_are_refused(alice):
    assert error_of(alice.get(EVENTS, params={"syncToken": "bogus"})) == (400, "invalid")
    assert error_of(alice.get(EVENTS, params={"pageToken": "bogus"})) == (400, "invalid")


def test_time_window_filters(alice):
    alice.insert(id="morning01", start="2030-01-07T08:00:00Z", end="2030-01-07T09:00:00Z")
    alice.insert(id="late00001", start="2030-01-07T12:00:00Z", end="2030-01-07T13:00:00Z")
    # timeMin bounds the end, timeMax the start, both exclusive.
    window = {"timeMin": "2030-01-07T09:00:00Z", "timeMax": "2030-01-07T12:00:00Z"}
    assert alice.get(EVENTS, params=window).json()["items"] == []
    wider = {"timeMin": "2030-01-07T08:59:00Z", "timeMax": "2030-01-07T12:01:00Z"}
    assert len(alice.get(EVENTS, params=wider).json()["items"]) == 2
    empty = {"timeMin": "2030-01-07T12:00:00Z", "timeMax": "2030-01-07T09:00:00Z"}
    assert error_of(alice.get(EVENTS, params=empty)) == (400, "timeRangeEmpty")


def test_private_extended_property_filter(alice):
    alice.insert(id="tagged001", extendedProperties={"private": {"reservation": "17", "app": "r"}})
    alice.insert(id="other0001", extendedProperties={"private": {"reservation": "18"}})
    one = alice.get(EVENTS, params={"privateExtendedProperty": ["reservation=17", "app=r"]})
    assert [e["id"] for e in one.json()["items"]] == ["tagged001"]
    none = alice.get(EVENTS, params={"privateExtendedProperty": ["reservation=17", "app=x"]})
    assert none.json()["items"] == []
    bad = alice.get(EVENTS, params={"privateExtendedProperty": "no-equals-sign"})
    assert error_of(bad) == (400, "invalid")


def test_show_deleted_lists_cancelled_events(alice):
    alice.insert(id="del000001")
    alice.delete(f"{EVENTS}/del000001")
    assert alice.get(EVENTS).json()["items"] == []
    shown = alice.get(EVENTS, params={"showDeleted": "true"}).json()["items"]
    assert shown == [{"kind": "calendar#event", "etag": shown[0]["etag"], "id": "del000001",
                      "status": "cancelled"}]  # fmt: skip


def test_single_events_expands_a_weekly_series(alice):
    series = make_event(
        start={"dateTime": "2030-01-07T09:00:00", "timeZone": "Europe/Paris"},
        end={"dateTime": "2030-01-07T10:00:00", "timeZone": "Europe/Paris"},
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"],
        id="series001",
    )
    assert alice.post(EVENTS, json=series).status_code == 200
    masters = alice.get(EVENTS).json()["items"]
    assert [e["id"] for e in masters] == ["series001"]
    instances = alice.get(EVENTS, params={"singleEvents": "true", "orderBy": "startTime"})
    items = instances.json()["items"]
    assert [e["id"] for e in items] == [
        "series001_20300107T080000Z",
        "series001_20300114T080000Z",
        "series001_20300121T080000Z",
    ]
    assert all(e["recurringEventId"] == "series001" for e in items)


def test_recurring_event_needs_a_time_zone(alice):
    answer = alice.insert(recurrence=["RRULE:FREQ=DAILY;COUNT=2"])
    assert error_of(answer) == (400, "required")


def test_order_by_start_time_needs_single_events(alice):
    answer = alice.get(EVENTS, params={"orderBy": "startTime"})
    assert error_of(answer) == (400, "badRequest")
