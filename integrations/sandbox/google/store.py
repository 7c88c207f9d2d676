"""Calendars and events as Google Calendar keeps them, with change sequence numbers for sync.

Every write bumps a sandbox-wide change counter and stamps the event with it; sync tokens are
"changes after sequence N", which is all ``events.list?syncToken=`` needs. Deleted events
stay in the store as ``status: cancelled``: their ids stay taken (a second insert with the
same id is a 409, googleapis/google-api-ruby-client#1811) and incremental syncs report them.

An edited or deleted instance of a recurring series is an *exception*: an event of its own,
stored under the instance id with ``recurring_event_id`` and ``original_start`` (discovery
``recurringEventId`` and ``originalStartTime``, both "Immutable"); see ``instances.py``.

Times: ``start``/``end`` are kept as the client sent them (``date`` or ``dateTime`` +
optional ``timeZone``) and resolved to UTC instants for filtering, free/busy and room
booking.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ApiError

# Discovery Event.id: base32hex characters (a-v, 0-9), 5 to 1024 long.
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
# Fields the server owns; a client may send them back (a read-modify-write) but they are
# ignored, as Google ignores them.
READ_ONLY = {
    "kind", "etag", "id", "created", "updated", "htmlLink", "creator", "organizer",
    "iCalUID", "recurringEventId", "originalStartTime", "hangoutLink", "privateCopy", "locked",
}  # fmt: skip

_etag_counter = itertools.count(1)


def new_etag(now: dt.datetime) -> str:
    """A quoted decimal etag like Google's ("3412345678901234")."""
    micros = int(now.timestamp() * 1_000_000)
    return f'"{micros * 10 + next(_etag_counter) % 10:d}"'


def rfc3339(value: dt.datetime) -> str:
    """UTC with milliseconds and Z, as Google writes ``created``/``updated``."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class StoredEvent:
    id: str
    calendar_id: str
    data: dict[str, Any]
    created: dt.datetime
    updated: dt.datetime
    etag: str
    change_seq: int
    status: str = "confirmed"
    sequence: int = 0
    creator: str = ""
    organizer: str = ""
    ordinal: int = 0
    # An exception of a recurring series: the master's id and the instance's original start.
    recurring_event_id: str = ""
    original_start: dict[str, Any] | None = None

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def is_series(self) -> bool:
        """A recurring master (exceptions never carry a rule)."""
        return bool(self.data.get("recurrence")) and not self.recurring_event_id

    @property
    def ical_uid(self) -> str:
        # Discovery Event.id: "all occurrences of one event have different ids while they
        # all share the same icalUIDs".
        return f"{self.recurring_event_id or self.id}@google.com"


@dataclass
class Calendar:
    id: str
    kind: str  # "user", "resource" or "service_account"
    summary: str
    time_zone: str = "UTC"
    events: dict[str, StoredEvent] = field(default_factory=dict)
    # Sync tokens carry the epoch they were issued in; expiring tokens bumps it.
    epoch: int = 0
    writers: set[str] = field(default_factory=set)
    readers: set[str] = field(default_factory=set)
    description: str = ""

    def role_of(self, principal: str) -> str | None:
        """The access role ``principal`` has here (None: not even visible)."""
        if principal == self.id:
            return "owner"
        if principal in self.writers:
            return "writer"
        if principal in self.readers:
            return "reader"
        return None


def _zone(name: str, which: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, "invalid", f"Invalid time zone definition for {which} time.") from None


def instant(value: dict[str, Any], which: str, calendar_zone: str = "UTC") -> dt.datetime:
    """The UTC instant of an EventDateTime (an all-day date starts at midnight locally)."""
    if not isinstance(value, dict) or not value:
        raise ApiError(400, "required", f"Missing {which} time.")
    has_date, has_time = value.get("date") is not None, value.get("dateTime") is not None
    if has_date == has_time:
        # Exactly one of date and dateTime; mixing them is a plain Bad Request at Google.
        raise ApiError(400, "badRequest", "Bad Request")
    zone_name = value.get("timeZone")
    if zone_name:
        zone = _zone(zone_name, which)
    if has_date:
        day = dt.date.fromisoformat(value["date"])
        local = zone if zone_name else _zone(calendar_zone, which)
        return dt.datetime.combine(day, dt.time(), local).astimezone(dt.UTC)
    text = value["dateTime"].upper().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "invalid", f"Invalid {which} time.") from None
    if moment.tzinfo is None:
        if not zone_name:
            # Discovery: "A time zone offset is required unless a time zone is explicitly
            # specified in timeZone."
            raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def event_span(
    event: StoredEvent | dict[str, Any], zone: str = "UTC"
) -> tuple[dt.datetime, dt.datetime]:
    data = event.data if isinstance(event, StoredEvent) else event
    return instant(data.get("start"), "start", zone), instant(data.get("end"), "end", zone)


# Values the discovery document lists only in prose ("Possible values are: ...").
PROSE_ENUMS = {
    "status": {"confirmed", "tentative", "cancelled"},
    "transparency": {"opaque", "transparent"},
    "visibility": {"default", "public", "private", "confidential"},
}
RESPONSE_STATUSES = {"needsAction", "declined", "tentative", "accepted"}


def check_times(data: dict[str, Any], zone: str) -> None:
    """Required start/end, consistent kinds, recurrence time zone, a non-empty range.

    Also the fields whose allowed values the discovery document gives only in prose.
    """
    for name, allowed in PROSE_ENUMS.items():
        if name in data and data[name] not in allowed:
            raise ApiError(400, "invalid", f"Invalid value for: {name}")
    for attendee in data.get("attendees") or []:
        if attendee.get("responseStatus", "needsAction") not in RESPONSE_STATUSES:
            raise ApiError(400, "invalid", "Invalid value for: attendees.responseStatus")
    if not data.get("start"):
        raise ApiError(400, "required", "Missing start time.")
    if not data.get("end"):
        raise ApiError(400, "required", "Missing end time.")
    start, end = event_span(data, zone)
    if ("date" in data["start"]) != ("date" in data["end"]):
        raise ApiError(400, "badRequest", "Bad Request")
    if data.get("recurrence") and "dateTime" in data["start"] and not data["start"].get("timeZone"):
        # Discovery EventDateTime.timeZone: "For recurring events this field is required".
        raise ApiError(400, "required", "Missing time zone definition for start time.")
    if end <= start:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")


def merge_patch(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: objects merge, arrays and scalars replace, null removes a field."""
    result = copy.deepcopy(current)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def writable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in body.items() if k not in READ_ONLY and v is not None}


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def render(event: StoredEvent, viewer: str, *, minimal_cancelled: bool = True) -> dict[str, Any]:
    """The Event resource as Calendar v3 returns it to ``viewer``."""
    series = _series_fields(event)
    if event.cancelled and minimal_cancelled:
        # Discovery Event.status: "Deleted events are only guaranteed to have the id field
        # populated", cancelled exceptions "only ... id, recurringEventId and
        # originalStartTime". Returning little else keeps clients honest.
        gone = {"kind": "calendar#event", "etag": event.etag, "id": event.id, "status": "cancelled"}
        return gone | series
    out: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": event.etag,
        "id": event.id,
        "status": event.status,
        "htmlLink": html_link(event.id, event.calendar_id),
        "created": rfc3339(event.created),
        "updated": rfc3339(event.updated),
    }
    data = copy.deepcopy(event.data)
    data.pop("status", None)
    for key in ("summary", "description", "location"):
        if key in data:
            out[key] = data.pop(key)
    out["creator"] = _person(event.creator, viewer)
    out["organizer"] = _person(event.organizer, viewer)
    out["start"] = data.pop("start", None)
    out["end"] = data.pop("end", None)
    out.update({k: v for k, v in data.items() if k not in ("reminders", "eventType")})
    for attendee in out.get("attendees", []):
        attendee.setdefault("responseStatus", "needsAction")
        if attendee.get("email", "").lower() == viewer:
            attendee["self"] = True
    out.update(series)
    out["iCalUID"] = event.ical_uid
    out["sequence"] = event.sequence
    out["reminders"] = data.get("reminders", {"useDefault": True})
    out["eventType"] = data.get("eventType", "default")
    return out


def _series_fields(event: StoredEvent) -> dict[str, Any]:
    if not event.recurring_event_id:
        return {}
    return {
        "recurringEventId": event.recurring_event_id,
        "originalStartTime": copy.deepcopy(event.original_start),
    }


def _person(email: str, viewer: str) -> dict[str, Any]:
    person: dict[str, Any] = {"email": email}
    if email == viewer:
        person["self"] = True
    return person
