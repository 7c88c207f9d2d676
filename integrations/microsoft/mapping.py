"""Graph event JSON to and from Reserva's neutral dataclasses.

What Reserva writes: subject, text body, location, UTC start and end, attendees (people as
``required``, rooms and resources as ``resource``), our reservation id as a single-value
extended property, and on create a ``transactionId`` derived from the reservation id so a
retried POST answers with the event the first one made.

What Reserva reads: Graph's documented event shape (``id``, ``changeKey``, ``iCalUId``,
``start``/``end`` as ``dateTimeTimeZone`` with seven fractional digits, ``isAllDay``,
``isCancelled``, ``showAs``, ``organizer``, ``attendees`` with their ``status.response``,
``seriesMasterId``, ``singleValueExtendedProperties`` when expanded, ``@removed`` in delta).
"""

from __future__ import annotations

import uuid
from typing import Any

from ..base import CalendarInfo, EventData, RemoteEvent
from .timezones import graph_time, parse_graph_time

# One fixed, Reserva-owned property set GUID: the id must be written and read in exactly
# this form ("String {GUID} Name ...") for Graph to match it.
PROPERTY_SET = "b6d1e1a4-3c2f-4f6e-9a57-52e5e7a0c0de"
RESERVATION_PROPERTY = f"String {{{PROPERTY_SET}}} Name ReservaReservationId"
# transactionId namespace: uuid5(namespace, "reservation:<id>") is stable across processes.
TRANSACTION_NAMESPACE = uuid.UUID("2f4e9c1a-7b7d-4a53-8f0e-6a1c3b5d9e21")

# Sent on every Graph request: ids that survive a move between folders, and times in UTC.
PREFER = 'IdType="ImmutableId", outlook.timezone="UTC"'

RESPONSES = {
    "accepted": "accepted",
    "declined": "declined",
    "tentativelyaccepted": "tentative",
    "none": "none",
    "notresponded": "none",
    "organizer": "accepted",
}


def etag(version: str) -> str:
    """A changeKey as an If-Match value (Graph's ``@odata.etag`` is ``W/"<changeKey>"``)."""
    return version if version.startswith(("W/", '"')) else f'W/"{version}"'


def transaction_id(reservation_id: int) -> str:
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, f"reservation:{reservation_id}"))


def event_body(data: EventData, *, creating: bool) -> dict[str, Any]:
    """The JSON body of a create (POST) or a full update (PATCH)."""
    attendees = [
        {"emailAddress": {"address": email}, "type": "required"} for email in data.attendees
    ] + [{"emailAddress": {"address": email}, "type": "resource"} for email in data.resources]
    body: dict[str, Any] = {
        "subject": data.subject,
        "body": {"contentType": "text", "content": data.body},
        "start": graph_time(data.start),
        "end": graph_time(data.end),
        "location": {"displayName": data.location},
        "attendees": attendees,
        "showAs": "tentative" if data.tentative else "busy",
        "singleValueExtendedProperties": [
            {"id": RESERVATION_PROPERTY, "value": str(data.reservation_id)}
        ],
    }
    if creating:
        # transactionId cannot change after creation (Graph refuses it on PATCH).
        body["transactionId"] = transaction_id(data.reservation_id)
    return body


def _reservation_tag(item: dict[str, Any]) -> int | None:
    for prop in item.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).lower() == RESERVATION_PROPERTY.lower():
            value = str(prop.get("value", "")).strip()
            return int(value) if value.isdigit() else None
    return None


def _resource_response(item: dict[str, Any]) -> str:
    """The invited room's answer: declined wins over tentative over accepted over none."""
    answers = [
        RESPONSES.get(str((a.get("status") or {}).get("response", "none")).lower(), "none")
        for a in item.get("attendees") or []
        if str(a.get("type", "")).lower() == "resource"
    ]
    for answer in ("declined", "tentative", "none", "accepted"):
        if answer in answers:
            return answer
    return ""


def _status(item: dict[str, Any]) -> str:
    if item.get("isCancelled"):
        return "cancelled"
    if str(item.get("showAs", "")).lower() == "tentative":
        return "tentative"
    return "confirmed"


def parse_event(item: dict[str, Any], *, reservation_id: int | None = None) -> RemoteEvent:
    """A Graph event (or a delta ``@removed`` entry) as a RemoteEvent.

    ``reservation_id`` fills in our tag when the response did not expand the extended
    property (a create or update answer), as Reserva just wrote it.
    """
    if "@removed" in item:
        return RemoteEvent(id=str(item["id"]), removed=True, status="cancelled")
    organizer = (item.get("organizer") or {}).get("emailAddress") or {}
    tag = _reservation_tag(item)
    return RemoteEvent(
        id=str(item["id"]),
        ical_uid=str(item.get("iCalUId") or ""),
        version=str(item.get("changeKey") or ""),
        subject=str(item.get("subject") or ""),
        start=parse_graph_time(item.get("start")),
        end=parse_graph_time(item.get("end")),
        is_all_day=bool(item.get("isAllDay")),
        organizer_email=str(organizer.get("address") or ""),
        organizer_name=str(organizer.get("name") or ""),
        reservation_id=tag if tag is not None else reservation_id,
        status=_status(item),
        resource_response=_resource_response(item),
        series_id=str(item.get("seriesMasterId") or ""),
    )


def parse_calendar(item: dict[str, Any]) -> CalendarInfo:
    owner = item.get("owner") or {}
    return CalendarInfo(
        id=str(item["id"]),
        name=str(item.get("name") or ""),
        owner_email=str(owner.get("address") or ""),
        can_edit=bool(item.get("canEdit", True)),
        is_default=bool(item.get("isDefaultCalendar", False)),
    )
