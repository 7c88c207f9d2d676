"""Room mailboxes answering meeting requests, as Exchange's resource booking assistant does.

A meeting request reaches a room when the organizer's write (``CreateItem`` with
``SendMeetingInvitations``, ``UpdateItem`` with ``SendMeetingInvitationsOrCancellations``)
sends to attendees (``SendOnlyToAll``, ``SendToAllAndSaveCopy``, ``SendOnlyToChanged``,
``SendToChangedAndSaveCopy``) and the room is a required, optional or resource attendee. The
assistant runs a moment later (``sandbox.defer``), as on a real server, and by the room's
``automate_processing`` (Set-CalendarProcessing):

- ``AutoAccept``: the room accepts, unless the slot conflicts with a busy item of its calendar
  (and ``allow_conflicts`` is off), the meeting is longer than ``max_duration_minutes`` or
  starts after ``booking_window_days``; then it declines. An accepted meeting is in the
  room's calendar (subject replaced by the organizer's name with Exchange's defaults
  ``DeleteSubject`` / ``AddOrganizerToSubject``); a declined one is not (any earlier copy is
  removed).
- ``AutoUpdate``: the meeting lands in the room's calendar as tentative, unanswered
  (``NoResponseReceived``); a delegate would answer by hand.
- ``None``: nothing happens.

The room's answer comes back to the organizer's item: the room's ``ResponseType`` in its
attendee list (``Accept`` / ``Decline``), a write of its own with a new change key, which
``ConflictResolution="AutoResolve"`` never conflicts with (clients set no field it touches).
A cancellation (``DeleteItem`` with ``SendMeetingCancellations`` other than ``SendToNone``)
or a room dropped from the attendees removes the room's copy.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from . import recurrence
from .state import ITEM_PREFIX, Attendee, CalendarItem, EwsState, Mailbox, new_id

if TYPE_CHECKING:
    from ..server import Sandbox

SENDS = ("SendOnlyToAll", "SendToAllAndSaveCopy", "SendOnlyToChanged", "SendToChangedAndSaveCopy")
# The pseudo-field a room's answer changes on the organizer's item (no client sets it).
RESPONSES_FIELD = "calendar:AttendeeResponses"


def _attendees(item: CalendarItem) -> list[Attendee]:
    return [*item.required, *item.optional, *item.resources]


def _room_copies(state: EwsState, uid: str, organizer_item: str) -> dict[str, CalendarItem]:
    """The rooms' copies of the meeting ``uid``, by room address."""
    return {
        item.mailbox: item
        for item in state.items.values()
        if item.uid == uid
        and item.id != organizer_item
        and state.mailboxes[item.mailbox].kind == "room"
    }


def refusal(state: EwsState, room: Mailbox, item: CalendarItem) -> str | None:
    """Why the assistant declines ``item`` for ``room`` (None: it accepts)."""
    assert item.start is not None and item.end is not None
    if item.end - item.start > dt.timedelta(minutes=room.max_duration_minutes):
        return "longer than the room's maximum duration"
    if item.start > state.now() + dt.timedelta(days=room.booking_window_days):
        return "beyond the room's booking window"
    if room.allow_conflicts:
        return None
    calendar = room.folders["calendar"]
    for other in recurrence.expand(state.items_in(calendar), item.start, item.end):
        if other.uid == item.uid or other.is_cancelled or other.free_busy == "Free":
            continue
        if other.start and other.end and other.start < item.end and other.end > item.start:
            return "the room is busy"
    return None


def on_write(state: EwsState, sandbox: Sandbox, item: CalendarItem, sends: str | None) -> None:
    """After an organizer's write that sends the request: let the rooms answer, later."""
    if sends not in SENDS or item.organizer is None or item.organizer.email != item.mailbox:
        return
    sandbox.defer(lambda: deliver(state, item.id))


def on_delete(state: EwsState, sandbox: Sandbox, item: CalendarItem, sends: str | None) -> None:
    """After the organizer deletes a meeting with cancellations: the rooms drop their copy."""
    if sends in (None, "SendToNone") or item.organizer is None:
        return
    if item.organizer.email != item.mailbox:
        return
    uid, item_id = item.uid, item.id

    def cancel() -> None:
        with state.lock:
            for room_address, copy in _room_copies(state, uid, item_id).items():
                if state.mailboxes[room_address].automate_processing != "None":
                    state.delete(copy)

    sandbox.defer(cancel)


def deliver(state: EwsState, item_id: str) -> None:
    """Each invited room processes the organizer's item as it is now."""
    with state.lock:
        item = state.items.get(item_id)
        if item is None or item.organizer is None:
            return
        invited = {a.email for a in _attendees(item)}
        copies = _room_copies(state, item.uid, item.id)
        answered = False
        for address, copy in copies.items():
            room = state.mailboxes[address]
            if address not in invited and room.automate_processing != "None":
                state.delete(copy)  # dropped from the meeting: a cancellation
        for attendee in _attendees(item):
            room = state.mailboxes.get(attendee.email)
            if room is None or room.kind != "room" or room.automate_processing == "None":
                continue
            copy = copies.get(room.email)
            if room.automate_processing == "AutoUpdate":
                _put_copy(state, room, item, copy, "NoResponseReceived", "Tentative")
                continue
            reason = refusal(state, room, item)
            response = "Decline" if reason else "Accept"
            if reason:
                if copy is not None:
                    state.delete(copy)
            else:
                _put_copy(state, room, item, copy, "Accept", "Busy")
            if attendee.response != response:
                attendee.response = response
                answered = True
        if answered:
            state.touched(item, {RESPONSES_FIELD})


def _put_copy(
    state: EwsState,
    room: Mailbox,
    item: CalendarItem,
    copy: CalendarItem | None,
    response: str,
    free_busy: str,
) -> None:
    """Create or bring up to date the room's copy of ``item``."""
    assert item.organizer is not None
    subject = "" if room.delete_subject else item.subject
    if room.add_organizer_to_subject:
        organizer = item.organizer.name or item.organizer.email
        subject = f"{organizer} {subject}".strip()
    values = {
        "subject": subject,
        "body": "" if room.delete_subject else item.body,
        "start": item.start,
        "end": item.end,
        "is_all_day": item.is_all_day,
        "location": item.location,
        "free_busy": free_busy,
        "my_response": response,
        "start_tz": item.start_tz,
        "end_tz": item.end_tz,
        "organizer": Attendee(item.organizer.email, item.organizer.name, "Organizer"),
        "required": [Attendee(a.email, a.name, a.response) for a in item.required],
        "optional": [Attendee(a.email, a.name, a.response) for a in item.optional],
        "resources": [Attendee(a.email, a.name, a.response) for a in item.resources],
    }
    if copy is None:
        calendar = room.folders["calendar"]
        copy = CalendarItem(new_id(ITEM_PREFIX, room.email), room.email, calendar.id, uid=item.uid)
        vars(copy).update(values)
        state.create(copy)
        return
    changed = {name for name, value in values.items() if getattr(copy, name) != value}
    if changed:
        vars(copy).update(values)
        state.touched(copy, {f"calendar:{name}" for name in changed})


def record_response(state: EwsState, copy: CalendarItem, box: Mailbox, answer: str) -> None:
    """``box`` answers the meeting ``copy`` (in its calendar) by hand: a declined meeting
    leaves its calendar; the organizer's item records the answer."""
    assert copy.organizer is not None
    with state.lock:
        if answer == "Decline":
            state.delete(copy)
        else:
            copy.my_response = answer
            copy.free_busy = "Busy" if answer == "Accept" else "Tentative"
            state.touched(copy, {"calendar:MyResponseType"})
        organizer = state.mailboxes.get(copy.organizer.email)
        if organizer is None:
            return
        for item in state.items_in(organizer.folders["calendar"]):
            if item.uid != copy.uid:
                continue
            for attendee in _attendees(item):
                if attendee.email == box.email and attendee.response != answer:
                    attendee.response = answer
                    state.touched(item, {RESPONSES_FIELD})
