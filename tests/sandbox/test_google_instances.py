"""Single instances of a recurring series in the Google sandbox, over real HTTP: instance ids,
get/patch/update/delete on them (exceptions, cancelled exceptions), ``If-Match``,
``events.instances``, listing and incremental sync with and without ``singleEvents``,
deleting a series, and the control API's "this event only" edits."""

from __future__ import annotations

import pytest

from tests.support.google_sandbox import (
    ALICE,
    ATLAS,
    alice_fixture,  # noqa: F401 - the "alice" fixture
    control,
    error_of,
    make_event,
)

EVENTS = "/calendars/primary/events"
SERIES = "series001"
# A daily series at 09:00 Paris time (08:00 UTC in January), three instances.
DAY1, DAY2, DAY3 = (f"{SERIES}_2030010{d}T080000Z" for d in (7, 8, 9))


def _series(api, count: int = 3, series_id: str = SERIES, **extra) -> dict:
    body = make_event(
        summary="Stand-up",
        start={"dateTime": "2030-01-07T09:00:00", "timeZone": "Europe/Paris"},
        end={"dateTime": "2030-01-07T09:30:00", "timeZone": "Europe/Paris"},
        recurrence=[f"RRULE:FREQ=DAILY;COUNT={count}"],
        id=series_id,
        **extra,
    )
    answer = api.post(EVENTS, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _list(api, **params) -> dict:
    answer = api.get(EVENTS, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _single(api, **params) -> list[dict]:
    return _list(api, singleEvents="true", orderBy="startTime", **params)["items"]


MOVED = {
    "start": {"dateTime": "2030-01-08T11:00:00+01:00", "timeZone": "Europe/Paris"},
    "end": {"dateTime": "2030-01-08T11:30:00+01:00", "timeZone": "Europe/Paris"},
}


def test_an_instance_is_read_by_its_id(alice):
    master = _series(alice)
    answer = alice.get(f"{EVENTS}/{DAY2}")
    assert answer.status_code == 200, answer.text
    instance = answer.json()
    assert instance["id"] == DAY2
    assert instance["recurringEventId"] == SERIES
    assert instance["originalStartTime"] == {
        "dateTime": "2030-01-08T09:00:00+01:00",
        "timeZone": "Europe/Paris",
    }
    assert instance["start"] == instance["originalStartTime"]
    assert "recurrence" not in instance
    assert instance["iCalUID"] == master["iCalUID"]  # all occurrences share it
    assert instance["summary"] == "Stand-up"
    assert answer.headers["ETag"] == instance["etag"]


@pytest.mark.parametrize(
    "event_id",
    [
        "nosuch001_20300107T080000Z",  # no such series
        f"{SERIES}_20300107T090000Z",  # not an original start of the series
        f"{SERIES}_20300110T080000Z",  # after COUNT=3
        f"{SERIES}_20300107",  # a date stamp on a timed series
        "single001_20300107T090000Z",  # an event that does not recur
    ],
)
def test_an_instance_id_outside_the_series_is_404(alice, event_id):
    _series(alice)
    alice.insert(id="single001")
    assert error_of(alice.get(f"{EVENTS}/{event_id}")) == (404, "notFound")
    assert error_of(alice.patch(f"{EVENTS}/{event_id}", json={"summary": "x"})) == (
        404,
        "notFound",
    )
    assert error_of(alice.delete(f"{EVENTS}/{event_id}")) == (404, "notFound")


def test_patching_an_instance_makes_an_exception(alice):
    _series(alice)
    before = alice.get(f"{EVENTS}/{DAY2}").json()
    answer = alice.patch(f"{EVENTS}/{DAY2}", json={**MOVED, "summary": "Late stand-up"})
    assert answer.status_code == 200, answer.text
    exception = answer.json()
    assert exception["id"] == DAY2 and exception["recurringEventId"] == SERIES
    assert exception["originalStartTime"] == before["originalStartTime"]
    assert exception["start"]["dateTime"] == "2030-01-08T11:00:00+01:00"
    assert exception["etag"] != before["etag"]
    assert exception["sequence"] == before["sequence"] + 1  # the times moved

    # singleEvents=true: the exception in place of its instance, nothing twice.
    items = _single(alice)
    assert [e["id"] for e in items] == [DAY1, DAY2, DAY3]
    assert [e["summary"] for e in items] == ["Stand-up", "Late stand-up", "Stand-up"]
    assert items[1]["start"]["dateTime"] == "2030-01-08T11:00:00+01:00"
    # singleEvents=false: the series, and the exception as an event of its own.
    assert [e["id"] for e in _list(alice)["items"]] == [SERIES, DAY2]
    # The series itself is untouched.
    master = alice.get(f"{EVENTS}/{SERIES}").json()
    assert master["summary"] == "Stand-up" and master["recurrence"]
    # And the exception reads back as itself.
    assert alice.get(f"{EVENTS}/{DAY2}").json()["summary"] == "Late stand-up"


def test_update_on_an_instance_replaces_it_and_keeps_it_in_the_series(alice):
    _series(alice)
    body = make_event(summary="Replaced", **MOVED)
    answer = alice.put(f"{EVENTS}/{DAY2}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["recurringEventId"] == SERIES
    assert [e["summary"] for e in _single(alice)] == ["Stand-up", "Replaced", "Stand-up"]
    # update needs start and end, on an instance as on any event
    assert error_of(alice.put(f"{EVENTS}/{DAY3}", json={"summary": "x"})) == (400, "required")


def test_original_start_time_and_recurring_event_id_are_immutable(alice):
    """Discovery: both "Immutable". Google does not document an error for a changed value;
    the sandbox ignores them in a body, as it ignores the other read-only fields."""
    _series(alice)
    original = alice.get(f"{EVENTS}/{DAY2}").json()["originalStartTime"]
    changed = {
        "originalStartTime": {"dateTime": "2030-02-01T09:00:00+01:00", "timeZone": "Europe/Paris"},
        "recurringEventId": "other0001",
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=9"],
        "summary": "Renamed",
    }
    patched = alice.patch(f"{EVENTS}/{DAY2}", json=changed).json()
    assert patched["originalStartTime"] == original
    assert patched["recurringEventId"] == SERIES
    assert "recurrence" not in patched
    put = alice.put(f"{EVENTS}/{DAY3}", json=make_event(**MOVED) | changed).json()
    assert put["id"] == DAY3 and put["recurringEventId"] == SERIES
    assert put["originalStartTime"]["dateTime"] == "2030-01-09T09:00:00+01:00"
    assert len(_single(alice)) == 3


def test_deleting_an_instance_makes_a_cancelled_exception(alice):
    _series(alice)
    assert alice.delete(f"{EVENTS}/{DAY2}").status_code == 204

    assert [e["id"] for e in _single(alice)] == [DAY1, DAY3]
    shown = _list(alice, singleEvents="true", showDeleted="true")["items"]
    gone = next(e for e in shown if e["id"] == DAY2)
    assert gone["status"] == "cancelled"
    assert gone["recurringEventId"] == SERIES
    assert gone["originalStartTime"]["dateTime"] == "2030-01-08T09:00:00+01:00"
    # singleEvents=false lists cancelled instances of a live series even without showDeleted.
    listed = _list(alice)["items"]
    assert [(e["id"], e["status"]) for e in listed] == [
        (SERIES, "confirmed"),
        (DAY2, "cancelled"),
    ]
    # get always returns it; deleting again is 410, updating 403, as for any deleted event.
    assert alice.get(f"{EVENTS}/{DAY2}").json()["status"] == "cancelled"
    assert error_of(alice.delete(f"{EVENTS}/{DAY2}")) == (410, "deleted")
    assert error_of(alice.patch(f"{EVENTS}/{DAY2}", json={"summary": "x"})) == (403, "forbidden")


def test_if_match_on_an_instance(alice):
    _series(alice)
    etag = alice.get(f"{EVENTS}/{DAY2}").json()["etag"]
    stale = {"If-Match": '"1"'}
    answer = alice.patch(f"{EVENTS}/{DAY2}", json={"summary": "x"}, headers=stale)
    assert error_of(answer) == (412, "conditionNotMet")
    first = alice.patch(f"{EVENTS}/{DAY2}", json={"summary": "y"}, headers={"If-Match": etag})
    assert first.status_code == 200
    again = alice.patch(f"{EVENTS}/{DAY2}", json={"summary": "z"}, headers={"If-Match": etag})
    assert error_of(again) == (412, "conditionNotMet")  # the exception has its own etag now
    current = {"If-Match": first.json()["etag"]}
    assert error_of(alice.delete(f"{EVENTS}/{DAY3}", headers=stale)) == (412, "conditionNotMet")
    assert alice.delete(f"{EVENTS}/{DAY2}", headers=current).status_code == 204
    # A conditional GET of an exception answers 304 while its etag holds.
    latest = alice.get(f"{EVENTS}/{DAY2}")
    assert (
        alice.get(f"{EVENTS}/{DAY2}", headers={"If-None-Match": latest.headers["ETag"]}).status_code
        == 304
    )


def test_incremental_sync_reports_only_the_changed_instances(alice):
    _series(alice)
    single_token = _list(alice, singleEvents="true")["nextSyncToken"]
    series_token = _list(alice)["nextSyncToken"]

    alice.patch(f"{EVENTS}/{DAY2}", json=MOVED)
    alice.delete(f"{EVENTS}/{DAY3}")

    changes = _list(alice, singleEvents="true", syncToken=single_token)
    by_id = {e["id"]: e for e in changes["items"]}
    assert sorted(by_id) == [DAY2, DAY3]
    assert by_id[DAY2]["status"] == "confirmed"
    assert by_id[DAY2]["start"]["dateTime"] == "2030-01-08T11:00:00+01:00"
    assert by_id[DAY3] == {
        "kind": "calendar#event",
        "etag": by_id[DAY3]["etag"],
        "id": DAY3,
        "status": "cancelled",
        "recurringEventId": SERIES,
        "originalStartTime": {"dateTime": "2030-01-09T09:00:00+01:00", "timeZone": "Europe/Paris"},
    }
    quiet = _list(alice, singleEvents="true", syncToken=changes["nextSyncToken"])
    assert quiet["items"] == []

    # Without singleEvents the same two exceptions are the changes; the series did not change.
    plain = _list(alice, syncToken=series_token)["items"]
    assert sorted(e["id"] for e in plain) == [DAY2, DAY3]


def test_an_edited_series_is_reported_as_its_instances_with_exceptions_left_alone(alice):
    _series(alice)
    alice.patch(f"{EVENTS}/{DAY2}", json=MOVED)
    token = _list(alice, singleEvents="true")["nextSyncToken"]
    alice.patch(f"{EVENTS}/{SERIES}", json={"description": "agenda"})
    items = _list(alice, singleEvents="true", syncToken=token)["items"]
    assert sorted(e["id"] for e in items) == [DAY1, DAY3]  # the exception keeps its own data


def test_deleting_the_series_cancels_every_instance(alice):
    """googleapis/google-api-ruby-client#860: after a series is deleted, an incremental sync
    with singleEvents=true reports its instances as cancelled."""
    _series(alice)
    alice.patch(f"{EVENTS}/{DAY2}", json=MOVED)
    single_token = _list(alice, singleEvents="true")["nextSyncToken"]
    series_token = _list(alice)["nextSyncToken"]

    assert alice.delete(f"{EVENTS}/{SERIES}").status_code == 204

    items = _list(alice, singleEvents="true", syncToken=single_token)["items"]
    assert sorted(e["id"] for e in items) == [DAY1, DAY2, DAY3]  # each once, no master
    assert {e["status"] for e in items} == {"cancelled"}
    assert {e["recurringEventId"] for e in items} == {SERIES}
    plain = _list(alice, syncToken=series_token)["items"]
    assert sorted((e["id"], e["status"]) for e in plain) == [
        (SERIES, "cancelled"),
        (DAY2, "cancelled"),
    ]
    assert _single(alice) == [] and _list(alice)["items"] == []
    assert alice.get(f"{EVENTS}/{DAY1}").json()["status"] == "cancelled"
    assert error_of(alice.patch(f"{EVENTS}/{DAY1}", json={"summary": "x"})) == (403, "forbidden")


def test_events_instances_lists_the_series_with_its_exceptions(alice):
    _series(alice, count=5)
    alice.patch(f"{EVENTS}/{DAY2}", json={"summary": "Moved"})
    day4 = f"{SERIES}_20300110T080000Z"
    alice.delete(f"{EVENTS}/{day4}")
    path = f"{EVENTS}/{SERIES}/instances"

    listed = alice.get(path).json()
    assert listed["kind"] == "calendar#events"
    assert [e["id"] for e in listed["items"]] == [
        DAY1, DAY2, DAY3, f"{SERIES}_20300111T080000Z",
    ]  # fmt: skip
    assert listed["items"][1]["summary"] == "Moved"
    assert {e["recurringEventId"] for e in listed["items"]} == {SERIES}

    deleted = alice.get(path, params={"showDeleted": "true"}).json()["items"]
    assert [e["status"] for e in deleted] == ["confirmed"] * 3 + ["cancelled", "confirmed"]

    window = {"timeMin": "2030-01-08T00:00:00Z", "timeMax": "2030-01-09T12:00:00Z"}
    assert [e["id"] for e in alice.get(path, params=window).json()["items"]] == [DAY2, DAY3]

    one = alice.get(path, params={"originalStart": "2030-01-09T08:00:00Z"}).json()["items"]
    assert [e["id"] for e in one] == [DAY3]

    first = alice.get(path, params={"maxResults": 3}).json()
    assert len(first["items"]) == 3 and "nextSyncToken" not in first
    rest = alice.get(path, params={"maxResults": 3, "pageToken": first["nextPageToken"]}).json()
    assert [e["id"] for e in rest["items"]] == [f"{SERIES}_20300111T080000Z"]
    assert "nextPageToken" not in rest

    bad_token = alice.get(path, params={"pageToken": "nope"})
    assert error_of(bad_token) == (400, "invalid")
    assert error_of(alice.get(f"{EVENTS}/nosuch001/instances")) == (404, "notFound")
    assert error_of(alice.get(f"{EVENTS}/{DAY2}/instances")) == (404, "notFound")
    empty = alice.get(
        path, params={"timeMin": "2030-01-09T00:00:00Z", "timeMax": "2030-01-08T00:00:00Z"}
    )
    assert error_of(empty) == (400, "timeRangeEmpty")


def test_events_instances_of_a_one_off_event_is_that_event(alice):
    alice.insert(id="single001")
    items = alice.get(f"{EVENTS}/single001/instances").json()["items"]
    assert [e["id"] for e in items] == ["single001"]


def test_an_all_day_series_has_date_instance_ids(alice):
    body = make_event(
        summary="Offsite",
        start={"date": "2030-01-07", "timeZone": "Europe/Paris"},
        end={"date": "2030-01-08", "timeZone": "Europe/Paris"},
        recurrence=["RRULE:FREQ=DAILY;COUNT=2"],
        id="offsite01",
    )
    assert alice.post(EVENTS, json=body).status_code == 200
    ids = [e["id"] for e in _single(alice)]
    assert ids == ["offsite01_20300107", "offsite01_20300108"]
    instance = alice.get(f"{EVENTS}/offsite01_20300108").json()
    assert instance["originalStartTime"] == {"date": "2030-01-08"}
    assert alice.delete(f"{EVENTS}/offsite01_20300108").status_code == 204
    assert [e["id"] for e in _single(alice)] == ["offsite01_20300107"]


def test_the_control_api_edits_one_instance_as_a_person_would(sandbox, http, alice):
    _series(alice)
    token = _list(alice, singleEvents="true")["nextSyncToken"]
    path = f"/calendars/{ALICE}/events"

    moved = control(http, sandbox, "PATCH", f"{path}/{DAY2}", json=MOVED)
    assert moved.status_code == 200, moved.text
    assert moved.json()["recurringEventId"] == SERIES
    assert control(http, sandbox, "DELETE", f"{path}/{DAY3}").status_code == 204
    unknown = control(http, sandbox, "PATCH", f"{path}/{SERIES}_20300107T090000Z", json={})
    assert unknown.status_code == 400

    changes = _list(alice, singleEvents="true", syncToken=token)["items"]
    assert sorted((e["id"], e["status"]) for e in changes) == [
        (DAY2, "confirmed"),
        (DAY3, "cancelled"),
    ]
    stored = control(http, sandbox, "GET", f"{path}").json()["value"]
    assert sorted(e["id"] for e in stored) == [SERIES, DAY2, DAY3]  # deleted included

    # The day view shows a series by instance ids, the exception at its new time.
    day = http.get(f"{sandbox.base_url}/_sandbox/api/day", params={"date": "2030-01-08"}).json()
    mine = next(c for c in day["calendars"] if c.get("calendar") == ALICE)
    assert [(e["id"], e["start"]) for e in mine["events"]] == [(DAY2, "2030-01-08T10:00:00+00:00")]
    nothing = http.get(f"{sandbox.base_url}/_sandbox/api/day", params={"date": "2030-01-09"})
    assert (
        next(c for c in nothing.json()["calendars"] if c.get("calendar") == ALICE)["events"] == []
    )


def test_a_room_invited_to_a_series_gets_the_edited_instance_as_an_exception(sandbox, alice):
    _series(alice, attendees=[{"email": ATLAS}])
    sandbox.sandbox.wait_idle()
    alice.patch(f"{EVENTS}/{DAY2}", json={"summary": "Moved"})
    sandbox.sandbox.wait_idle()
    room = alice.get(f"/calendars/{ATLAS}/events", params={"singleEvents": "true"}).json()
    assert sorted(e["id"] for e in room["items"]) == [DAY1, DAY2, DAY3]  # nothing twice
    copy = next(e for e in room["items"] if e["id"] == DAY2)
    assert (copy["summary"], copy["recurringEventId"]) == ("Moved", SERIES)
    mine = alice.get(f"{EVENTS}/{DAY2}").json()
    assert [a["responseStatus"] for a in mine["attendees"]] == ["accepted"]
