"""Calendar v3 events: insert, get, update, patch, delete; calendarList and calendars.get.

Documented behaviour this reproduces (reference §2):

* client-chosen ids: base32hex (a-v, 0-9), 5-1024 characters, else 400 "Invalid resource id
  value."; an id already used in the calendar, even by a deleted event, is 409 ``duplicate``;
* ``If-Match`` on update/patch/delete: 412 ``conditionNotMet`` when the etag moved on;
* patch merges objects and replaces arrays ("Array fields, if specified, overwrite the
  existing arrays");
* deleting a deleted event is 410 ``deleted``; updating it is 403 (google-api-ruby-client#1811);
* a service account acting as itself cannot add attendees: 403 ``forbiddenForServiceAccounts``;
* get/update/patch/delete also take the id of one instance of a recurring series; a write
  makes it an exception (``instances.py``); deleting a series cancels its exceptions too.
"""

from __future__ import annotations

from typing import Any

from ..core import Response
from .api import Call, endpoint, json_response
from .errors import ApiError
from .instances import find_event, instance_data
from .store import (
    EVENT_ID_RE,
    Calendar,
    StoredEvent,
    check_times,
    merge_patch,
    render,
    writable,
)


def _check_attendees(call: Call, data: dict[str, Any], before: dict[str, Any] | None) -> None:
    attendees = data.get("attendees") or []
    for attendee in attendees:
        if not attendee.get("email"):
            raise ApiError(400, "required", "Missing attendee email.")
    if call.token.kind != "service_account":
        return
    old = {a.get("email", "").lower() for a in (before or {}).get("attendees") or []}
    if any(a["email"].lower() not in old for a in attendees):
        raise ApiError(
            403,
            "forbiddenForServiceAccounts",
            "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority.",
        )


def _event(calendar: Calendar, event_id: str) -> StoredEvent:
    event = find_event(calendar, event_id)
    if event is None:
        raise ApiError(404, "notFound", "Not Found")
    return event


def _check_if_match(call: Call, event: StoredEvent) -> None:
    wanted = call.request.headers.get("if-match")
    if wanted and wanted.strip() not in ("*", event.etag):
        raise ApiError(
            412,
            "conditionNotMet",
            "Precondition Failed",
            extra={"locationType": "header", "location": "If-Match"},
        )


@endpoint("calendar.events.insert")
def insert(call: Call) -> Response:
    google = call.google
    calendar = google.calendar(call.principal, call.path("calendarId"), "writer")
    body = call.body
    event_id = body.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not EVENT_ID_RE.match(event_id)):
        raise ApiError(400, "invalid", "Invalid resource id value.")
    data = writable(body)
    check_times(data, calendar.time_zone)
    _check_attendees(call, data, None)
    with google.lock:
        if event_id in calendar.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        event = google.create(calendar, event_id, data, call.principal)
        return json_response(render(event, call.principal))


@endpoint("calendar.events.get")
def get(call: Call) -> Response:
    calendar = call.google.calendar(call.principal, call.path("calendarId"))
    with call.google.lock:
        event = _event(calendar, call.path("eventId"))
        if call.request.headers.get("if-none-match") == event.etag:
            # Conditional GET (version-resources guide): unchanged since that etag.
            return Response.empty(304, {"ETag": event.etag})
        return json_response(render(event, call.principal, minimal_cancelled=False))


def _write(call: Call, data: dict[str, Any], event: StoredEvent, calendar: Calendar) -> Response:
    check_times(data, calendar.time_zone)
    _check_attendees(call, data, event.data)
    call.google.replace(calendar, event, data)
    return json_response(render(event, call.principal))


def _writable_event(call: Call) -> tuple[Calendar, StoredEvent]:
    calendar = call.google.calendar(call.principal, call.path("calendarId"), "writer")
    event = _event(calendar, call.path("eventId"))
    if event.cancelled:
        # A deleted event cannot be brought back with update/patch (ruby-client#1811).
        raise ApiError(403, "forbidden", "Forbidden")
    _check_if_match(call, event)
    return calendar, event


@endpoint("calendar.events.update")
def update(call: Call) -> Response:
    with call.google.lock:
        calendar, event = _writable_event(call)
        data = instance_data(event, writable(call.body))
        data.setdefault("status", event.status)
        return _write(call, data, event, calendar)


@endpoint("calendar.events.patch")
def patch(call: Call) -> Response:
    with call.google.lock:
        calendar, event = _writable_event(call)
        current = dict(event.data, status=event.status)
        data = instance_data(event, merge_patch(current, writable(call.body)))
        return _write(call, data, event, calendar)


@endpoint("calendar.events.delete")
def delete(call: Call) -> Response:
    with call.google.lock:
        calendar = call.google.calendar(call.principal, call.path("calendarId"), "writer")
        event = _event(calendar, call.path("eventId"))
        if event.cancelled:
            raise ApiError(410, "deleted", "Resource has been deleted")
        _check_if_match(call, event)
        call.google.cancel(calendar, event)
    return Response.empty(204)


# -- calendars ------------------------------------------------------------------------------


def _calendar_entry(calendar: Calendar, principal: str, kind: str) -> dict[str, Any]:
    role = calendar.role_of(principal) or "freeBusyReader"
    entry: dict[str, Any] = {
        "kind": kind,
        "etag": f'"{abs(hash((calendar.id, calendar.summary))) % 10**16:016d}"',
        "id": calendar.id,
        "summary": calendar.summary,
        "timeZone": calendar.time_zone,
    }
    if kind == "calendar#calendarListEntry":
        entry.update(
            accessRole=role,
            defaultReminders=[],
            conferenceProperties={"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        )
        if calendar.id == principal:
            entry["primary"] = True
    else:
        entry["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
    return entry


@endpoint("calendar.calendarList.list")
def calendar_list(call: Call) -> Response:
    google = call.google
    with google.lock:
        google.calendar(call.principal, "primary")  # a service account's own calendar
        visible = [c for c in google.calendars.values() if c.role_of(call.principal)]
        rank = {"owner": 0, "writer": 1, "reader": 2}
        min_role = call.params.get("minAccessRole")
        if min_role in rank:
            visible = [
                c for c in visible if rank[c.role_of(call.principal) or ""] <= rank[min_role]
            ]
        items = [_calendar_entry(c, call.principal, "calendar#calendarListEntry") for c in visible]
    return Response.json(
        200,
        {
            "kind": "calendar#calendarList",
            "etag": f'"{google.seq:016d}"',
            "nextSyncToken": f"sandbox-calendarlist-{google.seq}",
            "items": items,
        },
    )


@endpoint("calendar.calendarList.get")
def calendar_list_get(call: Call) -> Response:
    calendar = call.google.calendar(call.principal, call.path("calendarId"))
    return json_response(_calendar_entry(calendar, call.principal, "calendar#calendarListEntry"))


@endpoint("calendar.calendars.get")
def calendars_get(call: Call) -> Response:
    calendar = call.google.calendar(call.principal, call.path("calendarId"))
    return json_response(_calendar_entry(calendar, call.principal, "calendar#calendar"))
