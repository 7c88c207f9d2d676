"""Room mailboxes process invitations the way Exchange's resource booking attendant does.

When an event in a user's calendar (the organizer's copy) invites a room mailbox, the room
answers a moment later (on the sandbox's background thread, as the Calendar Attendant works
asynchronously): if the room is free for the whole slot it accepts and a copy with the same
``iCalUId`` lands in the room's calendar; if anything busy overlaps it declines and no copy
is kept. The organizer's copy then shows the room's response on its attendee entry (a change
that bumps its changeKey, so it shows up in delta and notifications). Moving the event
re-evaluates; removing the room or deleting the event removes the room's copy.

A series that invites a room is answered occurrence by occurrence: each occurrence the room
is free for gets its own (single-instance) copy in the room's calendar; Exchange would keep
one series there and decline single occurrences. Reserva writes one event per reservation, so
this matters only to people inviting a room from a recurring meeting "in Outlook".

Exchange's default room processing also replaces the subject in the room's copy with the
organizer's name (AddOrganizerToSubject / DeleteSubject); a room can turn that off with
``"add_organizer_to_subject": false`` in the configuration.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .event_model import new_event
from .state import Mailbox, MicrosoftState

if TYPE_CHECKING:
    from ..server import Sandbox


def _invited_rooms(state: MicrosoftState, event: dict[str, Any]) -> list[Mailbox]:
    rooms = []
    for attendee in event.get("attendees", []):
        box = state.mailbox(attendee["emailAddress"]["address"])
        if box is not None and box.kind == "room":
            rooms.append(box)
    return rooms


def _signature(state: MicrosoftState, event: dict[str, Any]) -> tuple[Any, ...]:
    rooms = tuple(sorted(b.address for b in _invited_rooms(state, event)))
    return (event["_deleted"], event["_start"], event["_end"], rooms, event["subject"])


def attach(state: MicrosoftState, sandbox: Sandbox) -> None:
    """Listen to event changes and process room invitations after them."""

    def on_change(box: Mailbox, event: dict[str, Any], change: str) -> None:
        if box.kind != "user" or not event.get("isOrganizer"):
            return
        if event.get("_type") == "seriesMaster":
            return  # a series is answered occurrence by occurrence
        signature = _signature(state, event)
        if event.get("_room_sig") == signature:
            return  # only attendee responses changed: nothing for the rooms to do
        had_rooms = bool(event.get("_room_sig") and event["_room_sig"][3])
        event["_room_sig"] = signature
        if signature[3] or had_rooms:
            sandbox.defer(lambda: process(state, box, event["id"]))

    state.listeners.append(on_change)


def _room_copy(room: Mailbox, source_id: str) -> dict[str, Any] | None:
    for event in room.events.values():
        if event.get("_source") == source_id and not event["_deleted"]:
            return event
    return None


def _room_is_free(room: Mailbox, event: dict[str, Any], own: dict[str, Any] | None) -> bool:
    for other in room.timed_events():
        if other is own or other["showAs"] == "free" or other["isCancelled"]:
            continue
        if other["_start"] < event["_end"] and other["_end"] > event["_start"]:
            return False
    return True


def process(state: MicrosoftState, organizer_box: Mailbox, event_id: str) -> None:
    """Answer for every room the event invites (or used to invite)."""
    with state.lock:
        event = organizer_box.events.get(event_id)
        if event is None:
            return
        invited = [] if event["_deleted"] else _invited_rooms(state, event)
        invited_ids = {room.id for room in invited}
        for room in {id(b): b for b in state.all_mailboxes() if b.kind == "room"}.values():
            existing = _room_copy(room, event_id)
            if existing is not None and room.id not in invited_ids:
                state.delete_event(room, existing)
        responses: dict[str, str] = {}
        for room in invited:
            existing = _room_copy(room, event_id)
            if _room_is_free(room, event, existing):
                _write_copy(state, room, organizer_box, event, existing)
                responses[room.address.lower()] = "accepted"
            else:
                if existing is not None:
                    state.delete_event(room, existing)
                responses[room.address.lower()] = "declined"
        if event["_deleted"] or not responses:
            return
        now = state.now().strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        changed = False
        for attendee in event["attendees"]:
            answer = responses.get(attendee["emailAddress"]["address"].lower())
            if answer and attendee["status"]["response"] != answer:
                attendee["status"] = {"response": answer, "time": now}
                changed = True
        if changed:
            state.save_event(organizer_box, event, "updated")


def _write_copy(
    state: MicrosoftState,
    room: Mailbox,
    organizer_box: Mailbox,
    event: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    copy_ = existing or new_event(room, room.default_calendar.id, organizer_box)
    subject = event["subject"]
    if room.room.get("add_organizer_to_subject", True):
        subject = organizer_box.display_name
    copy_.update(
        {
            "iCalUId": event["iCalUId"],
            "subject": subject,
            "_start": event["_start"],
            "_end": event["_end"],
            "originalStartTimeZone": event["originalStartTimeZone"],
            "originalEndTimeZone": event["originalEndTimeZone"],
            "attendees": copy.deepcopy(event["attendees"]),
            "location": copy.deepcopy(event["location"]),
            "locations": copy.deepcopy(event["locations"]),
            "isOrganizer": False,
            "responseStatus": {
                "response": "accepted",
                "time": state.now().strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
            },
            "_source": event["id"],
        }
    )
    state.save_event(room, copy_, "updated" if existing else "created")
