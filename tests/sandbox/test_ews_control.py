"""EWS control routes: someone edits in Outlook, faults, expired sync states, the day view."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
import requests
from exchangelib import UTC, CalendarItem, EWSDateTime, ExtendedProperty
from exchangelib.errors import (
    ErrorInvalidSyncStateData,
    ErrorIrresolvableConflict,
    ErrorServerBusy,
    TransportError,
)

from tests.support.ews_sandbox import account, endpoint

ALICE, ATLAS = "alice@contoso.test", "atlas@contoso.test"


def at(hour: int, day: int = 7) -> EWSDateTime:
    return EWSDateTime(2030, 1, day, hour, tzinfo=UTC)


def api(ews) -> str:
    return f"{ews.base_url}/_sandbox/api/ews"


def item_url(ews, mailbox: str, item_id: str) -> str:
    return f"{api(ews)}/mailboxes/{mailbox}/items/{quote(item_id, safe='')}"


def changes(folder) -> list[tuple[str, str | None]]:
    return [(kind, getattr(item, "subject", None)) for kind, item in folder.sync_items()]


def test_mailboxes_are_listed_with_their_room_settings(ews, http):
    boxes = {b["email"]: b for b in http.get(f"{api(ews)}/mailboxes").json()["value"]}
    assert boxes[ATLAS]["kind"] == "room"
    assert boxes[ATLAS]["automate_processing"] == "AutoAccept"
    assert boxes["cosmos@contoso.test"]["automate_processing"] == "AutoUpdate"
    assert boxes["svc-reserva@contoso.test"]["impersonation"] is True


def test_an_edit_in_outlook_comes_back_through_sync_with_a_new_change_key(ews, http):
    room = account(ews, ATLAS, "svc-reserva@contoso.test", impersonate=True)
    item = CalendarItem(
        account=room, folder=room.calendar, subject="Booked", start=at(9), end=at(10)
    )
    item.save()
    assert changes(room.calendar) == [("create", "Booked")]
    listed = http.get(f"{api(ews)}/mailboxes/{ATLAS}/items").json()["value"]
    assert [(i["subject"], i["change_key"]) for i in listed] == [("Booked", item.changekey)]
    edited = http.patch(
        item_url(ews, ATLAS, item.id),
        json={
            "subject": "Moved by Facilities",
            "start": "2030-01-07T11:00:00Z",
            "end": "2030-01-07T12:00:00Z",
        },
    )
    assert edited.status_code == 200
    assert edited.json()["change_key"] != item.changekey
    assert changes(room.calendar) == [("update", "Moved by Facilities")]
    fetched = room.calendar.get(id=item.id)
    assert (fetched.start, fetched.changekey) == (at(11), edited.json()["change_key"])
    # Our stale change key now loses against the edit of the same field.
    item.start, item.end = at(13), at(14)
    with pytest.raises(ErrorIrresolvableConflict):
        item.save(update_fields=["start", "end"])
    assert http.delete(item_url(ews, ATLAS, item.id)).status_code == 204
    assert changes(room.calendar) == [("delete", None)]


def test_an_item_typed_in_outlook_shows_in_the_calendar_view(ews, http):
    created = http.post(
        f"{api(ews)}/mailboxes/{ATLAS}/items",
        json={"subject": "Walk-in", "start": "2030-01-07T15:00:00Z", "end": "2030-01-07T16:00:00Z"},
    )
    assert created.status_code == 201
    room = account(ews, ATLAS, "svc-reserva@contoso.test", impersonate=True)
    assert [(i.subject, i.start) for i in room.calendar.view(start=at(0), end=at(23))] == [
        ("Walk-in", at(15))
    ]
    bad = http.post(f"{api(ews)}/mailboxes/{ATLAS}/items", json={"subject": "no times"})
    assert bad.status_code == 400
    assert http.get(f"{api(ews)}/mailboxes/nobody@contoso.test/items").status_code == 400


class Tagged(ExtendedProperty):
    property_set_id = "b6d1e1a4-3c2f-4f6e-9a57-52e5e7a0c0de"
    property_name = "SandboxTestTag"
    property_type = "String"


def test_the_item_view_shows_extended_properties_as_written(ews, http):
    """A client's own tag (ExtendedFieldURI attributes as it sent them, and the value) shows
    in the control API's item view, so a test can tell that client's items from others'."""
    if "sandbox_test_tag" not in {f.name for f in CalendarItem.FIELDS}:
        CalendarItem.register("sandbox_test_tag", Tagged)
    try:
        room = account(ews, ATLAS, "svc-reserva@contoso.test", impersonate=True)
        tagged = CalendarItem(
            account=room, folder=room.calendar, subject="Ours", start=at(9), end=at(10),
            sandbox_test_tag="42",
        )  # fmt: skip
        tagged.save()
        CalendarItem(
            account=room, folder=room.calendar, subject="Theirs", start=at(11), end=at(12)
        ).save()
    finally:
        CalendarItem.deregister("sandbox_test_tag")
    listed = http.get(f"{api(ews)}/mailboxes/{ATLAS}/items").json()["value"]
    assert {i["subject"]: i["extended_properties"] for i in listed} == {
        "Ours": [
            {
                "PropertyName": "SandboxTestTag",
                "PropertySetId": "b6d1e1a4-3c2f-4f6e-9a57-52e5e7a0c0de",
                "PropertyType": "String",
                "value": "42",
            }
        ],
        "Theirs": [],
    }


def test_expired_sync_states_answer_invalid_sync_state_data(ews, http):
    acc = account(ews, ALICE)
    CalendarItem(account=acc, folder=acc.calendar, subject="x", start=at(9), end=at(10)).save()
    list(acc.calendar.sync_items())
    answer = http.post(f"{api(ews)}/sync-states/expire", json={"mailbox": ALICE})
    assert answer.json() == {"expired": 1}
    with pytest.raises(ErrorInvalidSyncStateData):
        list(acc.calendar.sync_items())


def test_injected_server_busy_carries_back_off_milliseconds(ews, http):
    acc = account(ews, ALICE)
    _ = acc.protocol.version
    queued = http.post(f"{api(ews)}/server-busy", json={"count": 1, "back_off_ms": 4500})
    assert queued.status_code == 201
    with pytest.raises(ErrorServerBusy) as raised:
        _ = acc.calendar
    assert raised.value.back_off == 4.5
    assert acc.calendar.name == "Calendar"  # only the next request


@pytest.mark.parametrize("kind", ["503", "drop"])
def test_generic_faults_reach_ews(ews, http, kind):
    fault = {"kind": kind, "service": "ews", "count": 1}
    assert http.post(f"{ews.base_url}/_sandbox/api/faults", json=fault).status_code == 201
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ews.ca_file)
    if kind == "drop":
        with pytest.raises(requests.ConnectionError):
            session.post(endpoint(ews), data=b"<x/>", headers={"Content-Type": "text/xml"})
    else:
        answer = session.post(endpoint(ews), data=b"<x/>", headers={"Content-Type": "text/xml"})
        assert (answer.status_code, answer.text) == (503, "Service Unavailable")
    session.close()


def test_a_dropped_connection_is_a_transport_error_for_exchangelib(ews, http):
    acc = account(ews, ALICE)
    _ = acc.protocol.version
    http.post(
        f"{ews.base_url}/_sandbox/api/faults", json={"kind": "drop", "service": "ews", "count": 3}
    )
    with pytest.raises((TransportError, ErrorServerBusy)):
        _ = acc.calendar


def test_the_day_view_shows_ews_calendars_rooms_first(ews, http):
    # Tomorrow: within the rooms' default booking window (180 days), unlike 2030.
    tomorrow = ews.sandbox.clock.now().date() + dt.timedelta(days=1)
    start = EWSDateTime(tomorrow.year, tomorrow.month, tomorrow.day, 9, tzinfo=UTC)
    acc = account(ews, ALICE)
    meeting = CalendarItem(
        account=acc,
        folder=acc.calendar,
        subject="Board",
        start=start,
        end=start + dt.timedelta(hours=1),
        resources=[ATLAS],
    )
    meeting.save(send_meeting_invitations="SendToAllAndSaveCopy")
    ews.sandbox.wait_idle()
    day = http.get(f"{ews.base_url}/_sandbox/api/day", params={"date": tomorrow.isoformat()})
    calendars = [c for c in day.json()["calendars"] if c["provider"] == "ews"]
    assert calendars[0]["mailbox"] == ATLAS
    by_box = {c["mailbox"]: c["events"] for c in calendars}
    assert [(e["subject"], e["status"]) for e in by_box[ALICE]] == [("Board", "organizer")]
    assert [(e["subject"], e["status"]) for e in by_box[ATLAS]] == [("Alice Adams", "accepted")]
    assert by_box["spree@contoso.test"] == []
