"""Invitations: resource calendars accept or decline, invited users get the event.

"You can book resources and rooms by adding them to events as attendees, using their email
address. When they receive the invitation, they automatically accept or decline the event
based on the availability" (Calendar API "Domain resources" guide, reference §6). So when an
event in a calendar lists a resource calendar's email among its attendees, the room, shortly
after and on the background thread:

* accepts when it has no other busy event at that time: a copy with the same event id lands in
  the room's calendar and the organizer's copy shows ``responseStatus: accepted``;
* declines when it is busy: the organizer's copy shows ``declined`` and the room stays as is.

An invited user of the domain gets a copy in their calendar too (``needsAction`` until they
answer), which is how the blocker calendar's invitation reaches the requested-for user.
Copies follow the organizer's changes and are cancelled when the event is deleted or the
attendee removed. Private extended properties stay on the organizer's copy (they are
"private to the copy of the event that appears on this calendar"); shared ones travel.
"""

from __future__ import annotations

import copy
from typing import Any

from .service import ChangeListener, GoogleService
from .store import Calendar, StoredEvent, event_span


def listener(google: GoogleService) -> ChangeListener:
    """The change listener that sends invitations out (runs with the lock held)."""

    def on_change(calendar: Calendar, event: StoredEvent) -> None:
        if calendar.kind == "resource" or event.organizer != calendar.id:
            return  # Attendees' copies do not invite anyone themselves.
        if _invitees(google, calendar, event) or _copies(google, calendar, event):
            google.sandbox.defer(lambda: reconcile(google, calendar.id, event.id))

    return on_change


def _invitees(google: GoogleService, calendar: Calendar, event: StoredEvent) -> set[str]:
    """Attendees with a calendar in the sandbox (rooms and domain users), organizer aside."""
    if event.cancelled:
        return set()
    emails = {str(a.get("email", "")).lower() for a in event.data.get("attendees") or []}
    known = google.directory.resources.keys() | google.directory.users.keys()
    return {e for e in emails if e in known and e != calendar.id}


def _copies(google: GoogleService, calendar: Calendar, event: StoredEvent) -> list[Calendar]:
    found = []
    for other in google.calendars.values():
        held = other.events.get(event.id) if other is not calendar else None
        if held is not None and held.organizer == calendar.id and not held.cancelled:
            found.append(other)
    return found


def _busy(room: Calendar, event: StoredEvent, span: tuple[Any, Any]) -> bool:
    start, end = span
    own = {event.id, event.recurring_event_id}  # an exception does not clash with its series
    for other in room.events.values():
        if other.id in own or other.cancelled:
            continue
        if other.data.get("transparency") == "transparent":
            continue
        other_start, other_end = event_span(other, room.time_zone)
        if other_start < end and other_end > start:
            return True
    return False


def _shared_copy(event: StoredEvent) -> dict[str, Any]:
    data = copy.deepcopy(event.data)
    props = data.get("extendedProperties") or {}
    props.pop("private", None)
    if not props:
        data.pop("extendedProperties", None)
    return data


def _place_copy(
    google: GoogleService, target: Calendar, event: StoredEvent, organizer: str
) -> None:
    data = _shared_copy(event)
    held = target.events.get(event.id)
    if held is None:
        held = google.create(target, event.id, data, event.creator, organizer=organizer)
    elif held.cancelled or held.data != data:
        google.replace(target, held, dict(data, status="confirmed"))
    # A copy of an exception is an exception of the copy of its series.
    held.recurring_event_id = event.recurring_event_id
    held.original_start = copy.deepcopy(event.original_start)


def reconcile(google: GoogleService, calendar_id: str, event_id: str) -> None:
    """Bring attendees' copies and the rooms' answers in line with the organizer's event."""
    with google.lock:
        calendar = google.calendars.get(calendar_id)
        event = calendar.events.get(event_id) if calendar else None
        if calendar is None or event is None or event.organizer != calendar.id:
            return
        wanted = _invitees(google, calendar, event)
        for other in _copies(google, calendar, event):
            if other.id not in wanted:
                google.cancel(other, other.events[event.id])
        changed = False
        span = event_span(event, calendar.time_zone) if wanted else None
        for email in sorted(wanted):
            target = google.calendars[email]
            if target.kind != "resource":
                _place_copy(google, target, event, calendar.id)
                continue
            answer = "declined" if _busy(target, event, span) else "accepted"
            if answer == "accepted":
                _place_copy(google, target, event, calendar.id)
            elif target.events.get(event.id) and not target.events[event.id].cancelled:
                google.cancel(target, target.events[event.id])
            for attendee in event.data.get("attendees") or []:
                is_room = str(attendee.get("email", "")).lower() == email
                if is_room and attendee.get("responseStatus") != answer:
                    attendee["responseStatus"] = answer
                    attendee["resource"] = True
                    changed = True
        if changed:
            google.save(calendar, event)
