"""Room mailboxes answering meeting requests (the resource booking assistant), via exchangelib."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE

from integrations.sandbox.config import default_config
from tests.support.ews_sandbox import account

ALICE, BOB = "alice@contoso.test", "bob@contoso.test"
ATLAS, COSMOS = "atlas@contoso.test", "cosmos@contoso.test"


def at(hour: int, day: int = 7) -> EWSDateTime:
    return EWSDateTime(2030, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    config = default_config()
    # The default booking window (180 days) would refuse 2030; these tests are about the rest.
    for room in config["ews"]["rooms"]:
        room["booking_window_days"] = 36500
    return config


def room_view(ews, room: str, start: EWSDateTime, end: EWSDateTime) -> list[tuple]:
    acc = account(ews, room, "svc-reserva@contoso.test", impersonate=True)
    return [
        (i.subject, i.start, i.end, i.my_response_type, i.legacy_free_busy_status)
        for i in acc.calendar.view(start=start, end=end)
    ]


def responses(item: CalendarItem) -> dict[str, str]:
    item.refresh()
    people = [*(item.required_attendees or []), *(item.resources or [])]
    return {a.mailbox.email_address: a.response_type for a in people}


def invite(acc, subject: str, start, end, room: str = ATLAS, send=SEND_TO_ALL_AND_SAVE_COPY):
    item = CalendarItem(
        account=acc, folder=acc.calendar, subject=subject, start=start, end=end, resources=[room]
    )
    item.save(send_meeting_invitations=send)
    return item


def test_room_accepts_a_free_slot_and_declines_a_busy_one(ews):
    alice, bob = account(ews, ALICE), account(ews, BOB)
    first = invite(alice, "Board", at(9), at(10))
    ews.sandbox.wait_idle()
    assert responses(first) == {ATLAS: "Accept"}
    # The room's copy: Exchange's defaults replace the subject with the organizer's name.
    assert room_view(ews, ATLAS, at(0), at(23)) == [
        ("Alice Adams", at(9), at(10), "Accept", "Busy")
    ]
    clash = invite(bob, "Clash", at(9), at(11))
    ews.sandbox.wait_idle()
    assert responses(clash) == {ATLAS: "Decline"}
    assert [row[0] for row in room_view(ews, ATLAS, at(0), at(23))] == ["Alice Adams"]
    # Back to back is no conflict.
    after = invite(bob, "After", at(10), at(11))
    ews.sandbox.wait_idle()
    assert responses(after) == {ATLAS: "Accept"}


def test_the_answer_changes_the_organizers_change_key_without_conflicting(ews):
    alice = account(ews, ALICE)
    item = invite(alice, "Board", at(9), at(10))
    key = item.changekey
    ews.sandbox.wait_idle()
    fetched = alice.calendar.get(id=item.id)
    assert fetched.changekey != key  # the room's answer is a write of its own
    item.subject = "Board (renamed)"
    item.save(update_fields=["subject"])  # stale key, AutoResolve: no field of ours changed
    assert alice.calendar.get(id=item.id).subject == "Board (renamed)"


def test_moving_a_meeting_reprocesses_and_cancelling_removes_the_rooms_copy(ews):
    alice, bob = account(ews, ALICE), account(ews, BOB)
    invite(bob, "Taken", at(14), at(15))
    item = invite(alice, "Board", at(9), at(10))
    ews.sandbox.wait_idle()
    item.start, item.end = at(14), at(15)
    item.save(update_fields=["start", "end"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    ews.sandbox.wait_idle()
    assert responses(item) == {ATLAS: "Decline"}
    assert [r[0] for r in room_view(ews, ATLAS, at(0), at(23))] == ["Bob Brown"]
    item.start, item.end = at(16), at(17)
    item.save(update_fields=["start", "end"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    ews.sandbox.wait_idle()
    assert responses(item) == {ATLAS: "Accept"}
    item.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    ews.sandbox.wait_idle()
    assert [r[0] for r in room_view(ews, ATLAS, at(0), at(23))] == ["Bob Brown"]


def test_without_sending_the_room_never_hears_of_it(ews):
    alice = account(ews, ALICE)
    item = invite(alice, "Quiet", at(9), at(10), send=SEND_TO_NONE)
    ews.sandbox.wait_idle()
    assert responses(item) == {ATLAS: "Unknown"}
    assert room_view(ews, ATLAS, at(0), at(23)) == []


def test_a_manual_room_holds_the_request_tentatively_until_its_delegate_answers(ews, http):
    alice = account(ews, ALICE)
    item = invite(alice, "Offsite", at(9), at(10), room=COSMOS)
    ews.sandbox.wait_idle()
    assert responses(item) == {COSMOS: "Unknown"}
    assert room_view(ews, COSMOS, at(0), at(23)) == [
        ("Alice Adams", at(9), at(10), "NoResponseReceived", "Tentative")
    ]
    copy = http.get(f"{ews.base_url}/_sandbox/api/ews/mailboxes/{COSMOS}/items").json()["value"][0]
    answer = http.post(
        f"{ews.base_url}/_sandbox/api/ews/mailboxes/{COSMOS}/items/{quote(copy['id'], safe='')}"
        "/respond",
        json={"response": "Accept"},
    )
    assert answer.status_code == 200
    assert responses(item) == {COSMOS: "Accept"}


@pytest.mark.parametrize(
    ("policy", "start", "end", "expected"),
    [
        ({"allow_conflicts": True}, 9, 10, "Accept"),
        ({"max_duration_minutes": 30}, 11, 12, "Decline"),
        ({"booking_window_days": 1}, 11, 12, "Decline"),
    ],
)
def test_booking_policy_settings(ews, http, policy, start, end, expected):
    base = f"{ews.base_url}/_sandbox/api/ews"
    assert http.patch(f"{base}/rooms/{ATLAS}", json=policy).status_code == 200
    bob, alice = account(ews, BOB), account(ews, ALICE)
    invite(bob, "Existing", at(9), at(10))
    ews.sandbox.wait_idle()
    item = invite(alice, "New", at(start), at(end))
    ews.sandbox.wait_idle()
    assert responses(item) == {ATLAS: expected}


def test_room_processing_none_leaves_requests_alone(ews, http):
    base = f"{ews.base_url}/_sandbox/api/ews"
    http.patch(f"{base}/rooms/{ATLAS}", json={"automate_processing": "None"})
    item = invite(account(ews, ALICE), "Board", at(9), at(10))
    ews.sandbox.wait_idle()
    assert responses(item) == {ATLAS: "Unknown"}
    assert room_view(ews, ATLAS, at(0), at(23)) == []


def test_a_room_invited_as_a_required_attendee_answers_too(ews):
    alice = account(ews, ALICE)
    item = CalendarItem(
        account=alice,
        folder=alice.calendar,
        subject="Standup",
        start=at(9),
        end=at(10),
        required_attendees=[BOB, ATLAS],
    )
    item.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    ews.sandbox.wait_idle()
    # The room answers; a person's answer is theirs to give (the sandbox does not answer it).
    assert responses(item) == {BOB: "Unknown", ATLAS: "Accept"}
