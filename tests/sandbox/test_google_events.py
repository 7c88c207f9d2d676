"""Calendar v3 events in the sandbox: client-chosen ids, etags and If-Match, patch semantics,
deletes, access rules, service accounts and attendees, room invitations, freeBusy."""

from __future__ import annotations

import pytest

from tests.support.google_sandbox import (
    ALICE,
    ATLAS,
    BOB,
    BOREALIS,
    COSMOS,
    READONLY,
    SYNC_SA,
    Api,
    alice_fixture,  # noqa: F401 - the "alice" fixture
    error_of,
    make_event,
    sa_credentials,
)

EVENTS = "/calendars/primary/events"


def test_insert_with_chosen_id_twice_gives_409(alice):
    first = alice.insert(id="reserva0000042", extendedProperties={"private": {"reservation": "42"}})
    assert first.status_code == 200
    event = first.json()
    assert event["id"] == "reserva0000042"
    assert event["etag"].startswith('"') and event["iCalUID"] == "reserva0000042@google.com"
    assert event["extendedProperties"]["private"] == {"reservation": "42"}
    assert event["organizer"] == {"email": ALICE, "self": True}

    again = alice.insert(id="reserva0000042")
    assert error_of(again) == (409, "duplicate")


def test_ids_of_deleted_events_stay_taken(alice):
    alice.insert(id="gone00001")
    assert alice.delete(f"{EVENTS}/gone00001").status_code == 204
    assert error_of(alice.insert(id="gone00001")) == (409, "duplicate")


@pytest.mark.parametrize("bad_id", ["abcd", "UPPER12345", "wxyz12345", "has-dash-123", "x" * 1025])
def test_event_ids_must_be_base32hex_5_to_1024(alice, bad_id):
    answer = alice.insert(id=bad_id)
    assert error_of(answer) == (400, "invalid")
    assert answer.json()["error"]["message"] == "Invalid resource id value."


def test_longest_and_shortest_valid_ids(alice):
    assert alice.insert(id="a" * 1024).status_code == 200
    assert alice.insert(id="0v0v0").status_code == 200


def test_get_update_and_if_match(alice):
    created = alice.insert(id="etag00001").json()
    fetched = alice.get(f"{EVENTS}/etag00001")
    assert fetched.json()["etag"] == created["etag"] == fetched.headers["ETag"]

    body = make_event(summary="Renamed")
    updated = alice.put(f"{EVENTS}/etag00001", json=body, headers={"If-Match": created["etag"]})
    assert updated.status_code == 200 and updated.json()["summary"] == "Renamed"
    assert updated.json()["etag"] != created["etag"]

    unchanged = alice.get(f"{EVENTS}/etag00001", headers={"If-None-Match": updated.json()["etag"]})
    assert unchanged.status_code == 304

    stale = {"If-Match": created["etag"]}
    assert error_of(alice.put(f"{EVENTS}/etag00001", json=body, headers=stale)) == (
        412,
        "conditionNotMet",
    )
    assert error_of(alice.patch(f"{EVENTS}/etag00001", json={}, headers=stale))[0] == 412
    assert error_of(alice.delete(f"{EVENTS}/etag00001", headers=stale))[0] == 412


def test_update_needs_start_and_end(alice):
    alice.insert(id="full00001")
    answer = alice.put(f"{EVENTS}/full00001", json={"summary": "no times"})
    assert error_of(answer) == (400, "required")
    assert answer.json()["error"]["message"] == "Missing start time."


def test_patch_replaces_arrays_and_merges_objects(alice):
    alice.insert(
        id="patch0001",
        attendees=[{"email": BOB}, {"email": "carol@northwind.test"}],
        extendedProperties={"private": {"a": "1", "b": "2"}},
        start={"dateTime": "2030-01-07T09:00:00+01:00", "timeZone": "Europe/Paris"},
    )
    patched = alice.patch(
        f"{EVENTS}/patch0001",
        json={"attendees": [{"email": BOB}], "extendedProperties": {"private": {"b": "3"}},
              "start": {"dateTime": "2030-01-07T08:30:00+01:00"}},
    ).json()  # fmt: skip
    assert [a["email"] for a in patched["attendees"]] == [BOB]
    assert patched["extendedProperties"]["private"] == {"a": "1", "b": "3"}
    assert patched["start"] == {"dateTime": "2030-01-07T08:30:00+01:00", "timeZone": "Europe/Paris"}
    assert patched["summary"] == "Meeting"


def test_delete_twice_gives_410_and_update_after_delete_403(alice):
    alice.insert(id="again0001")
    assert alice.delete(f"{EVENTS}/again0001").status_code == 204
    assert error_of(alice.delete(f"{EVENTS}/again0001")) == (410, "deleted")
    assert error_of(alice.put(f"{EVENTS}/again0001", json=make_event()))[0] == 403
    # A deleted event can still be read, as cancelled.
    assert alice.get(f"{EVENTS}/again0001").json()["status"] == "cancelled"


def test_unknown_event_is_404(alice):
    assert error_of(alice.get(f"{EVENTS}/nosuchevent")) == (404, "notFound")


def test_times_are_checked(alice):
    backwards = alice.insert(start="2030-01-07T10:00:00Z", end="2030-01-07T09:00:00Z")
    assert error_of(backwards) == (400, "timeRangeEmpty")
    no_end = alice.post(
        EVENTS, json={"summary": "x", "start": {"dateTime": "2030-01-07T10:00:00Z"}}
    )
    assert error_of(no_end) == (400, "required")
    assert no_end.json()["error"]["message"] == "Missing end time."
    no_zone = alice.insert(start="2030-01-07T10:00:00", end="2030-01-07T11:00:00")
    assert error_of(no_zone) == (400, "required")
    bad_zone = alice.post(
        EVENTS,
        json={"start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "Mars/Olympus"},
              "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "Mars/Olympus"}},
    )  # fmt: skip
    assert error_of(bad_zone) == (400, "invalid")
    all_day = alice.post(
        EVENTS, json={"start": {"date": "2030-01-07"}, "end": {"date": "2030-01-08"}}
    )
    assert all_day.status_code == 200


def test_other_users_calendar_is_invisible(alice):
    assert error_of(alice.get(f"/calendars/{BOB}/events")) == (404, "notFound")


def test_reader_of_a_resource_cannot_write(alice):
    assert alice.get(f"/calendars/{ATLAS}/events").status_code == 200  # Alice is a reader
    assert error_of(alice.insert(ATLAS)) == (403, "requiredAccessLevel")
    assert error_of(alice.get(f"/calendars/{COSMOS}/events")) == (404, "notFound")


def test_readonly_scope_cannot_insert(sandbox, http):
    token = sa_credentials(sandbox, http, scopes=[READONLY]).token
    api = Api(sandbox, http, token)
    assert api.get(EVENTS).status_code == 200
    assert error_of(api.insert()) == (403, "insufficientPermissions")


def test_service_account_as_itself_cannot_invite(sandbox, http):
    api = Api(sandbox, http, sa_credentials(sandbox, http, subject=None).token)
    answer = api.insert(ATLAS, attendees=[{"email": BOB}])
    assert error_of(answer) == (403, "forbiddenForServiceAccounts")
    # Writing straight into a room it is a writer of is fine (normal mode).
    plain = api.insert(ATLAS, id="normal0001")
    assert plain.status_code == 200 and plain.json()["creator"]["email"] == SYNC_SA


def _room_answer(sandbox, alice, event_id: str, room: str) -> str:
    sandbox.sandbox.wait_idle()
    event = alice.get(f"{EVENTS}/{event_id}").json()
    return next(a["responseStatus"] for a in event["attendees"] if a["email"] == room)


def test_room_accepts_when_free_and_declines_when_busy(sandbox, alice):
    invite = [{"email": BOREALIS, "resource": True}]
    alice.insert(id="room00001", attendees=invite)
    assert _room_answer(sandbox, alice, "room00001", BOREALIS) == "accepted"
    copy = alice.get(f"/calendars/{BOREALIS}/events/room00001")
    assert copy.status_code == 200 and copy.json()["organizer"]["email"] == ALICE

    alice.insert(id="room00002", attendees=invite, start="2030-01-07T09:30:00Z",
                 end="2030-01-07T10:30:00Z")  # fmt: skip
    assert _room_answer(sandbox, alice, "room00002", BOREALIS) == "declined"
    assert alice.get(f"/calendars/{BOREALIS}/events/room00002").status_code == 404

    # Cancelling the first frees the room; moving the second then gets it accepted.
    alice.delete(f"{EVENTS}/room00001")
    sandbox.sandbox.wait_idle()
    assert alice.get(f"/calendars/{BOREALIS}/events/room00001").json()["status"] == "cancelled"
    alice.patch(f"{EVENTS}/room00002", json={"summary": "retry"})
    assert _room_answer(sandbox, alice, "room00002", BOREALIS) == "accepted"


def test_private_properties_stay_on_the_organizer_copy(sandbox, alice):
    alice.insert(
        id="priv00001",
        attendees=[{"email": BOREALIS}],
        extendedProperties={"private": {"reservation": "9"}, "shared": {"app": "reserva"}},
    )
    sandbox.sandbox.wait_idle()
    copy = alice.get(f"/calendars/{BOREALIS}/events/priv00001").json()
    assert copy["extendedProperties"] == {"shared": {"app": "reserva"}}


def test_freebusy_reports_busy_and_unknown(sandbox, alice):
    alice.insert(id="blocked01")
    answer = alice.post(
        "/freeBusy",
        json={"timeMin": "2030-01-07T00:00:00Z", "timeMax": "2030-01-08T00:00:00Z",
              "items": [{"id": ALICE}, {"id": ATLAS}, {"id": "nobody@northwind.test"}]},
    ).json()  # fmt: skip
    assert answer["calendars"][ALICE]["busy"] == [
        {"start": "2030-01-07T09:00:00.000Z", "end": "2030-01-07T10:00:00.000Z"}
    ]
    assert answer["calendars"][ATLAS]["busy"] == []
    assert answer["calendars"]["nobody@northwind.test"]["errors"][0]["reason"] == "notFound"


def test_freebusy_at_most_50_calendars(alice):
    items = [{"id": f"user{i}@northwind.test"} for i in range(51)]
    answer = alice.post(
        "/freeBusy",
        json={"timeMin": "2030-01-07T00:00:00Z", "timeMax": "2030-01-08T00:00:00Z", "items": items},
    )
    assert error_of(answer) == (400, "tooManyCalendarsRequested")


def test_calendar_list_and_get(alice):
    listing = alice.get("/users/me/calendarList").json()
    roles = {c["id"]: c["accessRole"] for c in listing["items"]}
    assert roles[ALICE] == "owner" and roles[ATLAS] == "reader"
    entry = alice.get(f"/calendars/{ATLAS}").json()
    assert entry["kind"] == "calendar#calendar" and entry["summary"].startswith("Atlas")


def test_read_modify_write_round_trip_is_accepted(sandbox, alice):
    """A client that PUTs back what it read (read-only fields included) is not refused."""
    alice.insert(id="trip00001", attendees=[{"email": BOREALIS}, {"email": BOB}])
    sandbox.sandbox.wait_idle()
    event = alice.get(f"{EVENTS}/trip00001").json()
    event["summary"] = "Round trip"
    answer = alice.put(f"{EVENTS}/trip00001", json=event, headers={"If-Match": event["etag"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"] == "Round trip"


def test_invited_user_gets_the_event_and_its_cancellation(sandbox, http, alice):
    alice.insert(
        id="invite0001",
        attendees=[{"email": ALICE}, {"email": BOB}, {"email": BOREALIS}],
        extendedProperties={"private": {"reservation": "5"}},
    )
    sandbox.sandbox.wait_idle()
    bob = Api(sandbox, http, sa_credentials(sandbox, http, subject=BOB).token)
    copy = bob.get(f"{EVENTS}/invite0001").json()
    assert copy["organizer"] == {"email": ALICE}
    assert "extendedProperties" not in copy
    assert (
        next(a for a in copy["attendees"] if a["email"] == BOB)["responseStatus"] == "needsAction"
    )
    # The organizer's own copy keeps its private properties; the room answered.
    own = alice.get(f"{EVENTS}/invite0001").json()
    assert own["extendedProperties"] == {"private": {"reservation": "5"}}
    assert [a.get("responseStatus") for a in own["attendees"]] == [
        "needsAction",
        "needsAction",
        "accepted",
    ]

    alice.delete(f"{EVENTS}/invite0001")
    sandbox.sandbox.wait_idle()
    assert bob.get(f"{EVENTS}/invite0001").json()["status"] == "cancelled"
