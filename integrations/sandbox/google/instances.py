"""Single instances of a recurring series: instance ids, exceptions and ``events.instances``.

What Google documents, and the sandbox does:

* an instance's id is ``<recurringEventId>_<original start>``, the original start in UTC basic
  format (``20301207T090000Z``) or, for all-day series, the date (``20301207``); instances
  share the master's ``iCalUID`` (discovery ``Event.id``);
* ``events.get``, ``update``, ``patch`` and ``delete`` take an instance id ("Editing one
  occurrence = update the instance id", recurring-events guide, reference §2). Editing one
  makes an *exception*: an event of its own under the same id, with ``recurringEventId`` and
  ``originalStartTime`` ("Immutable", discovery). Deleting one leaves a cancelled exception
  that keeps ``id``, ``recurringEventId`` and ``originalStartTime`` (discovery
  ``Event.status``). ``If-Match`` works as on any event: an instance never edited carries the
  master's etag, an exception its own;
* an id whose master is unknown or not recurring, or whose original start is not one of the
  series' instances, is 404 ``notFound``;
* ``events.instances`` lists the instances of one series in order, exceptions in their place
  (``timeMin``/``timeMax``/``maxResults``/``pageToken``/``showDeleted``/``originalStart``).

Sandbox choices where Google documents nothing: ``recurringEventId``/``originalStartTime``
sent in a body (a read-modify-write does) are ignored, changed or not, as the other read-only
fields are; ``recurrence`` sent for an instance is ignored too (an exception cannot recur);
``events.instances`` of a one-off event lists that event alone.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from ..core import Response
from .api import Call, endpoint
from .errors import ApiError
from .recurrence import occurrences
from .schema import DATE_RE, parse_datetime
from .service import SyncState
from .store import Calendar, StoredEvent, event_span, instant, new_etag, render, rfc3339

STAMP_RE = re.compile(r"^\d{8}(T\d{6}Z)?$")
DEFAULT_PAGE = 250
MAX_PAGE = 2500


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    """(master id, original-start stamp) of an instance id, or None for any other id."""
    master_id, sep, stamp = event_id.rpartition("_")
    if not sep or not master_id or not STAMP_RE.match(stamp):
        return None
    return master_id, stamp


def find_event(calendar: Calendar, event_id: str) -> StoredEvent | None:
    """The stored event (exceptions included) or the unsaved instance ``event_id`` names."""
    stored = calendar.events.get(event_id)
    if stored is not None:
        return stored
    parts = split_instance_id(event_id)
    master = calendar.events.get(parts[0]) if parts else None
    if master is None or not master.is_series:
        return None
    for instance in occurrences(master, calendar.time_zone):
        if instance.id == event_id:
            return instance
    return None


def instance_data(event: StoredEvent, data: dict[str, Any]) -> dict[str, Any]:
    """What an instance keeps of a write: no ``recurrence`` (see the module docstring)."""
    if event.recurring_event_id:
        data.pop("recurrence", None)
    return data


def series_instances(calendar: Calendar, master: StoredEvent) -> list[StoredEvent]:
    """The series' instances in order, each exception in place of the instance it replaces."""
    exceptions = {e.id: e for e in calendar.events.values() if e.recurring_event_id == master.id}
    return [exceptions.get(i.id, i) for i in occurrences(master, calendar.time_zone)]


def _same_start(event: StoredEvent, wanted: str, zone: str) -> bool:
    original = event.original_start or {}
    if DATE_RE.match(wanted):
        return original.get("date") == wanted
    moment = parse_datetime(wanted)
    if moment is None:
        raise ApiError(400, "badRequest", "Bad Request")
    return "dateTime" in original and instant(original, "start", zone) == moment


@endpoint("calendar.events.instances")
def instances(call: Call) -> Response:
    google, params = call.google, call.params
    calendar = google.calendar(call.principal, call.path("calendarId"))
    low, high = parse_datetime(params.get("timeMin", "")), parse_datetime(params.get("timeMax", ""))
    if low and high and low >= high:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    page_size = min(params.get("maxResults", DEFAULT_PAGE), MAX_PAGE)
    zone = calendar.time_zone
    with google.lock:
        master = calendar.events.get(call.path("eventId"))
        if master is None or master.recurring_event_id:
            raise ApiError(404, "notFound", "Not Found")
        signature = ("instances", calendar.id, master.id)
        offset = 0
        if params.get("pageToken"):
            state = google.page_tokens.get(params["pageToken"])
            if state is None or state.signature != signature:
                raise ApiError(400, "invalid", "Invalid page token value.")
            offset = state.offset
        found = series_instances(calendar, master) if master.is_series else []
        chosen = []
        for event in found or [master]:
            if event.cancelled and not params.get("showDeleted"):
                continue
            start, end = event_span(event, zone)
            if (low and end <= low) or (high and start >= high):
                continue
            if "originalStart" in params and not _same_start(event, params["originalStart"], zone):
                continue
            chosen.append(event)
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": new_etag(google.now()),
            "summary": calendar.summary,
            "description": calendar.description,
            "updated": rfc3339(max((e.updated for e in chosen), default=master.updated)),
            "timeZone": zone,
            "accessRole": calendar.role_of(call.principal),
            "defaultReminders": [],
            "items": [render(e, call.principal) for e in chosen[offset : offset + page_size]],
        }
        if offset + page_size < len(chosen):
            token = "CiAKGi" + secrets.token_urlsafe(24)
            google.page_tokens[token] = SyncState(
                calendar.id, google.seq, calendar.epoch, signature, None, offset + page_size
            )
            body["nextPageToken"] = token
    return Response.json(200, body)
