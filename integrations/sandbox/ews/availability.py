"""``GetUserAvailability``: free/busy of several mailboxes.

GetUserAvailability answers one ``FreeBusyResponse`` per ``MailboxData``: the requested view
(``FreeBusy``, ``FreeBusyMerged``, ``Detailed``, ``DetailedMerged``, ``MergedOnly``) with the
mailbox's calendar items in the ``TimeWindow`` as a ``CalendarEventArray`` (times in the
request's ``TimeZone``, without offset, as Exchange writes them) and ``MergedFreeBusy`` digits
for the merged views. Details (subject, location...) only for whom may see them: the mailbox
itself, its delegates, or everyone when the mailbox's ``free_busy_access`` is
``LimitedDetails`` (subject and location) or ``Reviewer``; otherwise a detailed view is
downgraded to ``FreeBusy``/``FreeBusyMerged``, as Exchange's default ``AvailabilityOnly``
permission does. An address without a mailbox is ``ErrorMailRecipientNotFound`` for that
mailbox; a window not starting before it ends is ``ErrorInvalidTimeInterval``, one over 42
days ``ErrorTimeIntervalTooBig`` (SOAP faults). ``SuggestionsViewOptions`` are not emulated.

``GetServerTimeZones`` and ``ResolveNames`` are in ``directory.py``.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from . import recurrence
from .operations import Call, _required, operation
from .soap import ItemError, M, SoapFault, T, local, q, response_message
from .state import CalendarItem, Mailbox

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
VIEWS = ("MergedOnly", "FreeBusy", "FreeBusyMerged", "Detailed", "DetailedMerged")
MAX_WINDOW = dt.timedelta(days=42)
MERGED_DIGIT = {"Free": "0", "Tentative": "1", "Busy": "2", "OOF": "3", "WorkingElsewhere": "4"}
# Which status wins when items overlap in one merged interval.
PRECEDENCE = ("Free", "WorkingElsewhere", "Tentative", "Busy", "OOF")


def _schema(message: str) -> SoapFault:
    return SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {message}")


def _int(elem: ET.Element | None, name: str) -> int:
    text = (elem.findtext(q(T, name)) if elem is not None else None) or ""
    try:
        return int(text.strip())
    except ValueError:
        raise _schema(f"'{name}' must be an integer.") from None


@dataclass
class Transition:
    bias: int
    time: dt.time
    order: int  # 1-4, 5 = last
    month: int
    weekday: int  # 0 = Monday

    def local_start(self, year: int) -> dt.datetime:
        if self.order >= 5:
            nxt = dt.date(year + (self.month == 12), self.month % 12 + 1, 1)
            day = nxt - dt.timedelta(days=1)
            day -= dt.timedelta(days=(day.weekday() - self.weekday) % 7)
        else:
            first = dt.date(year, self.month, 1)
            day = first + dt.timedelta(days=(self.weekday - first.weekday()) % 7)
            day += dt.timedelta(weeks=self.order - 1)
        return dt.datetime.combine(day, self.time)


@dataclass
class RequestZone:
    """The availability ``TimeZone`` (bias in minutes west of UTC, and its DST rule)."""

    bias: int
    standard: Transition | None
    daylight: Transition | None

    def offset(self, utc: dt.datetime) -> dt.timedelta:
        """Local time minus UTC at the instant ``utc``."""
        std = dt.timedelta(minutes=-(self.bias + (self.standard.bias if self.standard else 0)))
        if self.standard is None or self.daylight is None:
            return std
        dst = dt.timedelta(minutes=-(self.bias + self.daylight.bias))
        if dst == std:
            return std
        naive = utc.astimezone(dt.UTC).replace(tzinfo=None)
        begins = self.daylight.local_start(naive.year) - std
        ends = self.standard.local_start(naive.year) - dst
        inside = begins <= naive < ends if begins < ends else naive >= begins or naive < ends
        return dst if inside else std

    def to_local(self, utc: dt.datetime) -> dt.datetime:
        return (utc + self.offset(utc)).replace(tzinfo=None)

    def to_utc(self, local_time: dt.datetime) -> dt.datetime:
        guess = local_time.replace(tzinfo=dt.UTC)
        first = guess - self.offset(guess)
        return guess - self.offset(first)


def _transition(elem: ET.Element | None) -> Transition | None:
    if elem is None:
        return None
    day = (elem.findtext(q(T, "DayOfWeek")) or "").strip()
    if day not in WEEKDAYS:
        raise _schema(f"DayOfWeek '{day}' is not a day of the week.")
    try:
        time = dt.time.fromisoformat((elem.findtext(q(T, "Time")) or "").strip())
    except ValueError:
        raise _schema("Time must be hh:mm:ss.") from None
    order, month = _int(elem, "DayOrder"), _int(elem, "Month")
    if not 1 <= order <= 5 or not 1 <= month <= 12:
        raise _schema("DayOrder must be 1-5 and Month 1-12.")
    return Transition(_int(elem, "Bias"), time, order, month, WEEKDAYS.index(day))


def _zone(call: Call) -> RequestZone:
    elem = call.op.find(q(T, "TimeZone"))
    if elem is None:
        return RequestZone(0, None, None)
    return RequestZone(
        _int(elem, "Bias"),
        _transition(elem.find(q(T, "StandardTime"))),
        _transition(elem.find(q(T, "DaylightTime"))),
    )


def _local_time(text: str | None, zone: RequestZone, what: str) -> dt.datetime:
    value = (text or "").strip()
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _schema(f"'{what}' is not an xs:dateTime.") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC)
    return zone.to_utc(parsed)


def _format_local(value: dt.datetime, zone: RequestZone) -> str:
    return zone.to_local(value).strftime("%Y-%m-%dT%H:%M:%S")


def _sees_details(call: Call, mailbox: Mailbox) -> str:
    """ "Reviewer", "LimitedDetails" or "AvailabilityOnly": what the caller may see."""
    if mailbox.email == call.acting.email or call.user.email in call.delegates(mailbox):
        return "Reviewer"
    return mailbox.free_busy_access


@operation("GetUserAvailabilityRequest")
def get_user_availability(call: Call) -> ET.Element:
    zone = _zone(call)
    boxes = _required(call.op, "MailboxDataArray")
    options = call.op.find(q(T, "FreeBusyViewOptions"))
    if options is None:
        if call.op.find(q(T, "SuggestionsViewOptions")) is not None:
            raise SoapFault(
                "ErrorInvalidOperation", "The sandbox does not emulate meeting suggestions."
            )
        raise _schema("FreeBusyViewOptions is required.")
    window = _required(options, "TimeWindow", T)
    start = _local_time(window.findtext(q(T, "StartTime")), zone, "StartTime")
    end = _local_time(window.findtext(q(T, "EndTime")), zone, "EndTime")
    interval = (
        _int(options, "MergedFreeBusyIntervalInMinutes")
        if options.find(q(T, "MergedFreeBusyIntervalInMinutes")) is not None
        else 30
    )
    if not 5 <= interval <= 1440:
        raise _schema("MergedFreeBusyIntervalInMinutes must be between 5 and 1440.")
    view = (options.findtext(q(T, "RequestedView")) or "").strip()
    if view not in VIEWS:
        raise _schema(f"RequestedView '{view}' is not allowed.")
    if start >= end:
        raise SoapFault("ErrorInvalidTimeInterval", "The time interval is invalid.")
    if end - start > MAX_WINDOW:
        raise SoapFault(
            "ErrorTimeIntervalTooBig", "The time window exceeds the maximum of 42 days."
        )
    root = ET.Element(q(M, "GetUserAvailabilityResponse"))
    responses = ET.SubElement(root, q(M, "FreeBusyResponseArray"))
    with call.state.lock:
        for data in boxes:
            if local(data.tag) != "MailboxData":
                raise _schema(f"'{local(data.tag)}' is not MailboxData.")
            address = (data.findtext(f"{q(T, 'Email')}/{q(T, 'Address')}") or "").strip()
            answer = ET.SubElement(responses, q(M, "FreeBusyResponse"))
            mailbox = call.state.mailboxes.get(address.lower())
            if mailbox is None:
                error = ItemError(
                    "ErrorMailRecipientNotFound",
                    f"Unable to resolve e-mail address <>SMTP:{address} to an Active Directory "
                    "object.",
                )
                answer.append(response_message("", error))
                free_busy = ET.SubElement(answer, q(M, "FreeBusyView"))
                ET.SubElement(free_busy, q(T, "FreeBusyViewType")).text = "None"
                continue
            answer.append(response_message(""))
            answer.append(_view(call, mailbox, zone, start, end, interval, view))
    return root


def _view(
    call: Call,
    mailbox: Mailbox,
    zone: RequestZone,
    start: dt.datetime,
    end: dt.datetime,
    interval: int,
    view: str,
) -> ET.Element:
    access = _sees_details(call, mailbox)
    if access == "AvailabilityOnly" and view.startswith("Detailed"):
        view = view.replace("Detailed", "FreeBusy")
    items = call.state.items_in(mailbox.folders["calendar"])
    found = [i for i in recurrence.expand(items, start, end) if not i.is_cancelled]
    node = ET.Element(q(M, "FreeBusyView"))
    ET.SubElement(node, q(T, "FreeBusyViewType")).text = view
    if view.endswith("Merged") or view == "MergedOnly":
        ET.SubElement(node, q(T, "MergedFreeBusy")).text = _merged(found, start, end, interval)
    if view == "MergedOnly":
        return node
    events = ET.SubElement(node, q(T, "CalendarEventArray"))
    for item in found:
        event = ET.SubElement(events, q(T, "CalendarEvent"))
        assert item.start and item.end
        ET.SubElement(event, q(T, "StartTime")).text = _format_local(item.start, zone)
        ET.SubElement(event, q(T, "EndTime")).text = _format_local(item.end, zone)
        ET.SubElement(event, q(T, "BusyType")).text = item.free_busy
        if view.startswith("Detailed"):
            _details(event, item, access)
    return node


def _details(event: ET.Element, item: CalendarItem, access: str) -> None:
    private = item.sensitivity in ("Private", "Confidential")
    details = ET.SubElement(event, q(T, "CalendarEventDetails"))
    if access == "Reviewer":
        ET.SubElement(details, q(T, "ID")).text = item.id
    if not private:
        ET.SubElement(details, q(T, "Subject")).text = item.subject
        if item.location:
            ET.SubElement(details, q(T, "Location")).text = item.location
    for name, value in (
        ("IsMeeting", item.is_meeting),
        ("IsRecurring", False),
        ("IsException", False),
        ("IsReminderSet", item.reminder_is_set),
        ("IsPrivate", private),
    ):
        ET.SubElement(details, q(T, name)).text = str(value).lower()


def _merged(found: list[CalendarItem], start: dt.datetime, end: dt.datetime, step: int) -> str:
    digits = []
    slot = start
    size = dt.timedelta(minutes=step)
    while slot < end:
        status = "Free"
        for item in found:
            assert item.start and item.end
            shown = item.free_busy if item.free_busy in PRECEDENCE else "Busy"
            overlaps = item.start < slot + size and item.end > slot
            if overlaps and PRECEDENCE.index(shown) > PRECEDENCE.index(status):
                status = shown
        digits.append(MERGED_DIGIT.get(status, "2"))
        slot += size
    return "".join(digits)
