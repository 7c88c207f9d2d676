"""EventData to exchangelib's ``CalendarItem`` and back.

Our tag is a MAPI named property in Reserva's own property set, the same set and name the
Graph client writes (``integrations/microsoft/mapping.py``), so an event made through either
API carries the one tag Outlook keeps. It is registered on ``CalendarItem`` as
``reserva_reservation_id``; asking for it in an ``only_fields`` makes EWS return it in
``FindItem``, ``GetItem`` and ``SyncFolderItems`` alike.

Times go out in the location's zone (``EventData.time_zone``): exchangelib sends the item's
``StartTimeZone``/``EndTimeZone`` from it, so Outlook shows the meeting in the room's zone and
a daylight-saving change moves nothing. They come back aware, converted to UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone, ExtendedProperty
from exchangelib.properties import Attendee, Mailbox

from ..base import EventData, RemoteEvent

PROPERTY_SET = "b6d1e1a4-3c2f-4f6e-9a57-52e5e7a0c0de"  # as integrations/microsoft/mapping.py
TAG_FIELD = "reserva_reservation_id"
# The create's idempotency key is also the item's iCalendar UID: uuid5 of the reservation.
UID_NAMESPACE = uuid.UUID("2f4e9c1a-7b7d-4a53-8f0e-6a1c3b5d9e21")


class ReservationTag(ExtendedProperty):
    """Reserva's reservation id on an item (String {PROPERTY_SET} Name ReservaReservationId)."""

    property_set_id = PROPERTY_SET
    property_name = "ReservaReservationId"
    property_type = "String"


def register() -> None:
    """Register the tag on CalendarItem once per process (exchangelib keeps a class registry)."""
    if TAG_FIELD not in {f.name for f in CalendarItem.FIELDS}:
        CalendarItem.register(TAG_FIELD, ReservationTag)


# What Reserva reads of an item: enough for RemoteEvent, and the tag.
READ_FIELDS = (
    "id",
    "changekey",
    "uid",
    "subject",
    "start",
    "end",
    "is_all_day",
    "is_cancelled",
    "legacy_free_busy_status",
    "organizer",
    "resources",
    "type",
    "datetime_created",
    TAG_FIELD,
)
WRITE_FIELDS = (
    "subject",
    "body",
    "start",
    "end",
    "location",
    "required_attendees",
    "resources",
    "legacy_free_busy_status",
    TAG_FIELD,
)

RESPONSES = {
    "accept": "accepted",
    "decline": "declined",
    "tentative": "tentative",
    "organizer": "accepted",
    "unknown": "none",
    "noresponsereceived": "none",
}


def creation_key(reservation_id: int) -> str:
    return str(uuid.uuid5(UID_NAMESPACE, f"reservation:{reservation_id}"))


def ews_time(value: dt.datetime, zone: str) -> EWSDateTime:
    try:
        tz = EWSTimeZone(zone or "UTC")
    except Exception:  # an IANA name Windows has no zone for: UTC is still the same instant
        tz = EWSTimeZone("UTC")
    local = value.astimezone(tz)
    return local if isinstance(local, EWSDateTime) else EWSDateTime.from_datetime(local)


def item_fields(data: EventData) -> dict[str, Any]:
    """The values of ``WRITE_FIELDS`` for ``data`` (create and full update alike)."""
    return {
        "subject": data.subject,
        "body": data.body,
        "start": ews_time(data.start, data.time_zone),
        "end": ews_time(data.end, data.time_zone),
        "location": data.location or None,
        "required_attendees": [Attendee(mailbox=Mailbox(email_address=a)) for a in data.attendees]
        or None,
        "resources": [Attendee(mailbox=Mailbox(email_address=r)) for r in data.resources] or None,
        "legacy_free_busy_status": "Tentative" if data.tentative else "Busy",
        TAG_FIELD: str(data.reservation_id),
    }


def utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        # A plain datetime: EWSDateTime refuses tzinfo objects other than EWSTimeZone.
        return dt.datetime.fromtimestamp(value.timestamp(), dt.UTC)
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)  # an all-day EWSDate


def _tag(item: Any) -> int | None:
    value = str(getattr(item, TAG_FIELD, None) or "").strip()
    return int(value) if value.isdigit() else None


def _resource_response(item: Any) -> str:
    answers = [
        RESPONSES.get(str(a.response_type or "unknown").lower(), "none")
        for a in getattr(item, "resources", None) or []
    ]
    for answer in ("declined", "tentative", "none", "accepted"):
        if answer in answers:
            return answer
    return ""


def _status(item: Any) -> str:
    if getattr(item, "is_cancelled", False):
        return "cancelled"
    if str(getattr(item, "legacy_free_busy_status", "") or "").lower() == "tentative":
        return "tentative"
    return "confirmed"


def parse_item(item: Any, *, reservation_id: int | None = None) -> RemoteEvent:
    """A CalendarItem as a RemoteEvent; ``reservation_id`` fills in a tag the answer lacks
    (a create or update answer carries only the id and change key)."""
    organizer = getattr(item, "organizer", None)
    tag = _tag(item)
    return RemoteEvent(
        id=str(item.id),
        ical_uid=str(getattr(item, "uid", None) or ""),
        version=str(item.changekey or ""),
        subject=str(getattr(item, "subject", None) or ""),
        start=utc(getattr(item, "start", None)),
        end=utc(getattr(item, "end", None)),
        is_all_day=bool(getattr(item, "is_all_day", False)),
        organizer_email=str(getattr(organizer, "email_address", None) or ""),
        organizer_name=str(getattr(organizer, "name", None) or ""),
        reservation_id=tag if tag is not None else reservation_id,
        status=_status(item),
        resource_response=_resource_response(item),
    )


def removed(item_id: str) -> RemoteEvent:
    return RemoteEvent(id=item_id, removed=True, status="cancelled")
