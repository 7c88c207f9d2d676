"""Graph's ``patternedRecurrence``: validating it and expanding a series into its dates.

Emulated (Microsoft's "Schedule repeating appointments as recurring events in Outlook" and
the recurrencePattern / recurrenceRange resource pages): patterns ``daily`` (``interval``)
and ``weekly`` (``interval``, ``daysOfWeek`` required, ``firstDayOfWeek`` default
``sunday``); ranges ``endDate``, ``numbered`` and ``noEnd``. Occurrences keep the series'
wall-clock time in its time zone (``range.recurrenceTimeZone``, else the event's start zone),
start on or after ``range.startDate`` (which MUST be the date of the event's start) and fall
on days that fit the pattern. An endless series is expanded two years ahead, as the Google
sandbox does; a sandbox has no use for more.

Refusals: a property or enum value Graph does not define is ``RequestBodyRead`` (as for the
event itself; "even if a field is ignored, it is still validated"); a missing or invalid
required value is ``ErrorPropertyValidationFailure`` ("At least one property failed
validation.", the code Graph answers for recurrence it cannot accept); a range with no
occurrence at all is ``ErrorRecurrenceHasNoOccurrence`` (Exchange's response code); the
monthly and yearly patterns, valid in Graph, are not emulated (``NotImplemented``, 501).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import timezones as tz

PATTERN_TYPES = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
EMULATED_PATTERNS = ("daily", "weekly")
RANGE_TYPES = ("endDate", "noEnd", "numbered")
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
WEEK_INDEXES = ("first", "second", "third", "fourth", "last")
PATTERN_FIELDS = {
    "type",
    "interval",
    "month",
    "dayOfMonth",
    "daysOfWeek",
    "firstDayOfWeek",
    "index",
}
RANGE_FIELDS = {"type", "startDate", "endDate", "numberOfOccurrences", "recurrenceTimeZone"}
NULL_DATE = "0001-01-01"
ENDLESS_DAYS = 730  # how far ahead an endless series is expanded
MAX_OCCURRENCES = 999  # Outlook's own ceiling for a numbered series


class RecurrenceError(ValueError):
    """A refused recurrence: ``code`` and ``message`` as Graph answers, and the status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _invalid(detail: str) -> RecurrenceError:
    return RecurrenceError(
        "ErrorPropertyValidationFailure",
        f"At least one property failed validation. (sandbox: {detail})",
    )


def _unknown(name: str, type_name: str) -> RecurrenceError:
    return RecurrenceError(
        "RequestBodyRead",
        f"The property '{name}' does not exist on type 'microsoft.graph.{type_name}'. Make "
        "sure to only use property names that are defined by the type.",
    )


def _enum(value: Any, allowed: tuple[str, ...], type_name: str) -> str:
    """Graph reads enum members case-insensitively ("Monday" and "monday")."""
    for member in allowed:
        if isinstance(value, str) and value.lower() == member.lower():
            return member
    raise RecurrenceError(
        "RequestBodyRead",
        f"Requested value '{value}' was not found for the enum type of "
        f"'microsoft.graph.{type_name}'.",
    )


def _date(value: Any, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise RecurrenceError(
            "RequestBodyRead",
            f"Cannot convert the literal '{value}' to the expected type 'Edm.Date' ({name}).",
        ) from exc


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecurrenceError(
            "RequestBodyRead",
            f"Cannot convert the literal '{value}' to the expected type 'Edm.Int32' ({name}).",
        )
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"recurrence.{name} is required and must be an object")
    return value


def parse(value: Any, start: dt.datetime, start_zone: str) -> dict[str, Any]:
    """Validate a ``patternedRecurrence`` body for an event starting at ``start`` (UTC) in
    ``start_zone``; the normalised form the sandbox stores."""
    body = _object(value, "")
    for name in body:
        if name not in ("pattern", "range") and not name.startswith("@odata."):
            raise _unknown(name, "patternedRecurrence")
    pattern_in = _object(body.get("pattern"), "pattern")
    range_in = _object(body.get("range"), "range")
    for name in pattern_in:
        if name not in PATTERN_FIELDS and not name.startswith("@odata."):
            raise _unknown(name, "recurrencePattern")
    for name in range_in:
        if name not in RANGE_FIELDS and not name.startswith("@odata."):
            raise _unknown(name, "recurrenceRange")

    # Every enum is checked, used or not (the Outlook recurrence guide says so).
    if "type" not in pattern_in:
        raise _invalid("recurrence.pattern.type is required")
    kind = _enum(pattern_in["type"], PATTERN_TYPES, "recurrencePatternType")
    days = [_enum(d, DAYS, "dayOfWeek") for d in pattern_in.get("daysOfWeek") or []]
    first_day = _enum(pattern_in.get("firstDayOfWeek") or "sunday", DAYS, "dayOfWeek")
    index = _enum(pattern_in.get("index") or "first", WEEK_INDEXES, "weekIndex")
    if "type" not in range_in:
        raise _invalid("recurrence.range.type is required")
    range_kind = _enum(range_in["type"], RANGE_TYPES, "recurrenceRangeType")
    interval = _int(pattern_in.get("interval", 0), "interval")
    if interval < 1:
        raise _invalid("recurrence.pattern.interval must be a positive number")
    if kind not in EMULATED_PATTERNS:
        raise RecurrenceError(
            "NotImplemented",
            f"The sandbox emulates daily and weekly recurrence patterns only, not '{kind}'.",
            501,
        )
    if kind == "weekly" and not days:
        raise _invalid("recurrence.pattern.daysOfWeek is required for a weekly pattern")

    zone_name = range_in.get("recurrenceTimeZone") or start_zone
    try:
        zone = tz.zone(zone_name)
    except tz.UnknownTimeZone as exc:
        raise RecurrenceError(
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not "
            f"supported: '{zone_name}'.",
        ) from exc
    if not range_in.get("startDate"):
        raise _invalid("recurrence.range.startDate is required")
    start_date = _date(range_in["startDate"], "startDate")
    if start_date != start.astimezone(zone).date():
        raise _invalid(
            "recurrence.range.startDate must be the date of the event's start "
            f"({start.astimezone(zone).date().isoformat()})"
        )
    end_date, count = None, 0
    if range_kind == "endDate":
        if not range_in.get("endDate") or range_in["endDate"] == NULL_DATE:
            raise _invalid("recurrence.range.endDate is required for an endDate range")
        end_date = _date(range_in["endDate"], "endDate")
        if end_date < start_date:
            raise _invalid("recurrence.range.endDate is before its startDate")
    elif range_in.get("endDate") not in (None, ""):
        _date(range_in["endDate"], "endDate")  # validated though ignored
    if range_kind == "numbered":
        count = _int(range_in.get("numberOfOccurrences", 0), "numberOfOccurrences")
        if count < 1:
            raise _invalid("recurrence.range.numberOfOccurrences must be positive")
        if count > MAX_OCCURRENCES:
            raise _invalid(f"a numbered series has at most {MAX_OCCURRENCES} occurrences")
    rule = {
        "pattern": {
            "type": kind,
            "interval": interval,
            "daysOfWeek": days,
            "firstDayOfWeek": first_day,
            "index": index,
        },
        "range": {
            "type": range_kind,
            "startDate": start_date,
            "endDate": end_date,
            "numberOfOccurrences": count,
            "recurrenceTimeZone": zone_name,
        },
    }
    if not dates(rule):
        raise RecurrenceError(
            "ErrorRecurrenceHasNoOccurrence",
            "The recurrence has no occurrence in its range.",
        )
    return rule


def dates(rule: dict[str, Any]) -> list[dt.date]:
    """The dates of the series' occurrences, first to last (capped for endless series)."""
    pattern, span = rule["pattern"], rule["range"]
    first: dt.date = span["startDate"]
    last: dt.date = span["endDate"] or first + dt.timedelta(days=ENDLESS_DAYS)
    limit = span["numberOfOccurrences"] if span["type"] == "numbered" else MAX_OCCURRENCES + 1
    if span["type"] == "numbered":
        last = dt.date.max
    interval = pattern["interval"]
    found: list[dt.date] = []
    if pattern["type"] == "daily":
        day = first
        while day <= last and len(found) < limit:
            found.append(day)
            day += dt.timedelta(days=interval)
        return found
    # Weekly: weeks begin on firstDayOfWeek; every interval-th week from the start's week.
    week_start_index = DAYS.index(pattern["firstDayOfWeek"])
    wanted = {DAYS.index(d) for d in pattern["daysOfWeek"]}
    sunday_based = (first.weekday() + 1) % 7  # date.weekday(): Monday is 0
    week = first - dt.timedelta(days=(sunday_based - week_start_index) % 7)
    while week <= last and len(found) < limit:
        for offset in range(7):
            day = week + dt.timedelta(days=offset)
            if (day.weekday() + 1) % 7 not in wanted or day < first:
                continue
            if day > last or len(found) >= limit:
                break
            found.append(day)
        week += dt.timedelta(weeks=interval)
    return found


def occurrence_start(rule: dict[str, Any], master_start: dt.datetime, day: dt.date) -> dt.datetime:
    """The UTC start of the occurrence on ``day``: the master's wall-clock time in the
    series' zone (so it stays put across daylight-saving changes)."""
    zone = tz.zone(rule["range"]["recurrenceTimeZone"])
    local = master_start.astimezone(zone)
    return dt.datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=zone).astimezone(
        dt.UTC
    )


def to_graph(rule: dict[str, Any]) -> dict[str, Any]:
    """The stored rule in the shape Graph returns (unused members as Graph fills them)."""
    pattern, span = rule["pattern"], rule["range"]
    out_pattern: dict[str, Any] = {
        "type": pattern["type"],
        "interval": pattern["interval"],
        "month": 0,
        "dayOfMonth": 0,
    }
    if pattern["type"] == "weekly":
        out_pattern["daysOfWeek"] = list(pattern["daysOfWeek"])
    out_pattern |= {"firstDayOfWeek": pattern["firstDayOfWeek"], "index": pattern["index"]}
    return {
        "pattern": out_pattern,
        "range": {
            "type": span["type"],
            "startDate": span["startDate"].isoformat(),
            "endDate": span["endDate"].isoformat() if span["endDate"] else NULL_DATE,
            "recurrenceTimeZone": span["recurrenceTimeZone"],
            "numberOfOccurrences": span["numberOfOccurrences"],
        },
    }
