"""Reserva's neutral dataclasses <-> Calendar v3 Event JSON.

- **Event ids** are chosen by Reserva so a create can be repeated without making a second
  event: Google accepts "characters allowed in base32hex encoding, i.e. lowercase letters a-v
  and digits 0-9", 5 to 1024 long, and answers 409 ``duplicate`` to an id already used in the
  calendar, *even by a deleted event* (reference §2). :func:`event_id` is ``reserva`` + the
  reservation id in ten decimal digits (every character is in the alphabet: r, s and v are
  base32hex letters), and ``g<n>`` for generation ``n`` when an earlier id is held by a deleted
  event or by someone else's event; readable in logs, and the same on every retry.
- **Our tag** is ``extendedProperties.private.reservation_id``: private properties stay on the
  copy in the calendar we write to and are filterable with ``privateExtendedProperty``.
- **Times** are sent as local wall time in the location's IANA zone with ``timeZone`` (what a
  person sees in Google Calendar, and required for recurring events); responses are read back
  as aware UTC. All-day events (``date``) run from midnight to midnight in the event's (or the
  calendar's) zone, the end date being exclusive.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..base import CalendarInfo, EventData, RemoteEvent

RESERVATION_PROPERTY = "reservation_id"
ID_PREFIX = "reserva"
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
MAX_GENERATIONS = 20  # a reservation re-created remotely more often than this is pathological


def event_id(reservation_id: int, generation: int = 0) -> str:
    """The client-chosen Calendar id for a reservation (base32hex alphabet, see module doc)."""
    value = f"{ID_PREFIX}{int(reservation_id):010d}"
    return value if generation == 0 else f"{value}g{generation}"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _event_time(moment: datetime, time_zone: str) -> dict[str, str]:
    if moment.tzinfo is None:
        raise ValueError("EventData times must be aware datetimes")
    tz = zone(time_zone)
    return {"dateTime": moment.astimezone(tz).isoformat(timespec="seconds"), "timeZone": tz.key}


def event_body(data: EventData, *, event_id_value: str | None = None) -> dict[str, Any]:
    """The Event resource for ``events.insert`` (with an id) or ``events.update``."""
    body: dict[str, Any] = {}
    if event_id_value:
        body["id"] = event_id_value
    body["summary"] = data.subject
    body["description"] = data.body
    body["location"] = data.location
    # Always sent: ``update`` replaces the whole event, so an approved booking's event must say
    # "confirmed" again, not keep the "tentative" it had while awaiting approval.
    body["status"] = "tentative" if data.tentative else "confirmed"
    body["start"] = _event_time(data.start, data.time_zone)
    body["end"] = _event_time(data.end, data.time_zone)
    attendees: list[dict[str, Any]] = [{"email": email} for email in data.attendees]
    # "resource: true" marks a room; Google has it settable only when the attendee is first
    # added, and ignores it after, so sending it on every update is harmless.
    attendees += [{"email": email, "resource": True} for email in data.resources]
    if attendees:
        body["attendees"] = attendees
    body["extendedProperties"] = {"private": {RESERVATION_PROPERTY: str(int(data.reservation_id))}}
    return body


def parse_time(
    value: dict[str, Any] | None, fallback_zone: str = "UTC"
) -> tuple[datetime | None, bool]:
    """An EventDateTime as (aware UTC datetime, is_all_day)."""
    if not value:
        return None, False
    tz = zone(value.get("timeZone") or fallback_zone)
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:  # Google sends offsets; be lenient with copies that don't
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC), False
    if value.get("date"):
        day = date.fromisoformat(str(value["date"]))
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC), True
    return None, False


def _reservation_tag(item: dict[str, Any]) -> int | None:
    private = (item.get("extendedProperties") or {}).get("private") or {}
    raw = str(private.get(RESERVATION_PROPERTY) or "")
    return int(raw) if raw.isdigit() else None


def _resource_response(item: dict[str, Any], calendar_id: str) -> str:
    rooms = [a for a in item.get("attendees") or [] if a.get("resource")]
    if not rooms:
        return ""
    mine = [a for a in rooms if str(a.get("email", "")).lower() == calendar_id.lower()]
    answer = str((mine or rooms)[0].get("responseStatus") or "needsAction")
    return "none" if answer == "needsAction" else answer


def parse_event(
    item: dict[str, Any], *, calendar_id: str = "", calendar_zone: str = "UTC"
) -> RemoteEvent:
    """A Calendar v3 Event as a :class:`RemoteEvent` (cancelled ones only need an id)."""
    status = str(item.get("status") or "confirmed")
    start, all_day = parse_time(item.get("start"), calendar_zone)
    end, _ = parse_time(item.get("end"), calendar_zone)
    organizer = item.get("organizer") or {}
    return RemoteEvent(
        id=str(item.get("id") or ""),
        ical_uid=str(item.get("iCalUID") or ""),
        version=str(item.get("etag") or ""),
        subject=str(item.get("summary") or ""),
        start=start,
        end=end,
        is_all_day=all_day,
        organizer_email=str(organizer.get("email") or ""),
        organizer_name=str(organizer.get("displayName") or ""),
        reservation_id=_reservation_tag(item),
        status=status,
        removed=status == "cancelled",
        resource_response=_resource_response(item, calendar_id),
        series_id=str(item.get("recurringEventId") or ""),
    )


def parse_calendar(item: dict[str, Any]) -> CalendarInfo:
    """A calendarList entry; ``can_edit`` for writer and owner access."""
    calendar_id = str(item.get("id") or "")
    return CalendarInfo(
        id=calendar_id,
        name=str(item.get("summaryOverride") or item.get("summary") or calendar_id),
        owner_email=calendar_id if "@" in calendar_id else "",
        can_edit=item.get("accessRole") in ("owner", "writer"),
        is_default=bool(item.get("primary")),
    )


def rfc3339(moment: datetime) -> str:
    """A query-parameter time: UTC with a ``Z`` (Google refuses times without an offset)."""
    if moment.tzinfo is None:
        raise ValueError("times must be aware datetimes")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
