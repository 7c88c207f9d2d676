"""Resource calendars answer invitations the way Google's rooms do.

"You can book resources and rooms by adding them to events as attendees, using their email
address. When they receive the invitation, they automatically accept or decline the event
based on the availability" (Calendar API "Domain resources" guide, reference §6). So when an
event in a user's (or a service account's) calendar lists a resource calendar's email among
its attendees, the room, shortly after and on the background thread:

* accepts when it has no other busy event at that time: a copy with the same event id lands in
  the room's calendar and the organizer's copy shows ``responseStatus: accepted``;
* declines when it is busy: the organizer's copy shows ``declined`` and the room stays as is;
* cancels its copy when the event is deleted, or the room is removed from the attendees.

Private extended properties stay on the organizer's copy (they are "private to the copy of
the event that appears on this calendar"); shared ones travel.
"""

from __future__ import annotations

import copy

from .service import ChangeListener, GoogleService
from .store import Calendar, StoredEvent, event_span


def listener(google: GoogleService) -> ChangeListener:
    """The change listener that sends invitations to the rooms (runs with the lock held)."""

    def on_change(calendar: Calendar, event: StoredEvent) -> None:
        if calendar.kind == "resource":
            return
        invited = _rooms(google, event)
        if invited or _copies(google, calendar, event):
            google.sandbox.defer(lambda: reconcile(google, calendar.id, event.id))

    return on_change


def _rooms(google: GoogleService, event: StoredEvent) -> set[str]:
    if event.cancelled:
        return set()
    emails = {str(a.get("email", "")).lower() for a in event.data.get("attendees") or []}
    return {e for e in emails if e in google.directory.resources}


def _copies(google: GoogleService, calendar: Calendar, event: StoredEvent) -> list[Calendar]:
    found = []
    for room in google.calendars.values():
        copy_ = room.events.get(event.id) if room.kind == "resource" else None
        if copy_ is not None and copy_.organizer == calendar.id and not copy_.cancelled:
            found.append(room)
    return found


def _busy(room: Calendar, event_id: str, span: tuple) -> bool:
    start, end = span
    for other in room.events.values():
        if other.id == event_id or other.cancelled:
            continue
        if other.data.get("transparency") == "transparent":
            continue
        other_start, other_end = event_span(other, room.time_zone)
        if other_start < end and other_end > start:
            return True
    return False


def reconcile(google: GoogleService, calendar_id: str, event_id: str) -> None:
    """Bring the rooms' copies and answers in line with the organizer's event."""
    with google.lock:
        calendar = google.calendars.get(calendar_id)
        event = calendar.events.get(event_id) if calendar else None
        if calendar is None or event is None:
            return
        wanted = _rooms(google, event)
        for room in _copies(google, calendar, event):
            if room.id not in wanted:
                google.cancel(room, room.events[event.id])
        changed = False
        span = event_span(event, calendar.time_zone) if wanted else None
        for email in sorted(wanted):
            room = google.calendars[email]
            answer = "declined" if _busy(room, event.id, span) else "accepted"
            held = room.events.get(event.id)
            if answer == "accepted":
                data = copy.deepcopy(event.data)
                props = data.get("extendedProperties") or {}
                props.pop("private", None)
                if not props:
                    data.pop("extendedProperties", None)
                if held is None:
                    held = google.create(room, event.id, data, event.creator)
                    held.organizer = calendar.id
                elif held.cancelled or held.data != data:
                    google.replace(room, held, dict(data, status="confirmed"))
            elif held is not None and not held.cancelled:
                google.cancel(room, held)
            for attendee in event.data.get("attendees") or []:
                is_room = str(attendee.get("email", "")).lower() == email
                if is_room and attendee.get("responseStatus") != answer:
                    attendee["responseStatus"] = answer
                    attendee["resource"] = True
                    changed = True
        if changed:
            google.save(calendar, event)
