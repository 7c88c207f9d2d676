"""Expanding a recurrence rule into occurrences, in the location's wall-clock time.

A weekly 09:00-10:00 booking stays at 09:00 local time across a DST change, so its UTC time
moves. A local time that does not exist on a date (inside the spring-forward gap) cannot be
booked; such dates are reported, not silently shifted. Pure functions, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule

from .models import Frequency

MAX_OCCURRENCES = 366


@dataclass(frozen=True)
class Recurrence:
    """A rule as the portal, admin and API express it.

    ``weekdays`` (0=Monday) are used by weekly rules. Monthly by weekday repeats on the same
    nth weekday as the first occurrence (the 2nd Tuesday, or the last Friday when the first
    date is in the month's last seven days and ``last_weekday`` is set).
    """

    frequency: str
    interval: int = 1
    weekdays: tuple[int, ...] = ()
    until: date | None = None
    count: int | None = None
    last_weekday: bool = False


@dataclass
class Expansion:
    slots: list[tuple[datetime, datetime]] = field(default_factory=list)
    nonexistent: list[date] = field(default_factory=list)  # dates inside a DST gap


class RecurrenceError(ValueError):
    pass


def localize(day: date, wall: time, zone: ZoneInfo) -> datetime | None:
    """The aware datetime for a wall-clock time, or None when it does not exist that day.

    For an ambiguous time (the autumn fold) the first occurrence (fold=0, summer time) is used,
    which is what calendar applications do.
    """
    aware = datetime.combine(day, wall, tzinfo=zone)
    round_trip = aware.astimezone(ZoneInfo("UTC")).astimezone(zone)
    if round_trip.replace(tzinfo=None) != aware.replace(tzinfo=None):
        return None
    return aware


def expand(
    first_start: datetime, first_end: datetime, rule: Recurrence, zone: ZoneInfo
) -> Expansion:
    """All occurrences of ``rule`` starting with the one at ``first_start`` (aware)."""
    if rule.until is None and rule.count is None:
        raise RecurrenceError("A recurring booking needs an end date or a number of occurrences.")
    if rule.count is not None and not 1 <= rule.count <= MAX_OCCURRENCES:
        raise RecurrenceError(f"The number of occurrences must be between 1 and {MAX_OCCURRENCES}.")
    if rule.interval < 1:
        raise RecurrenceError("The interval must be at least 1.")
    local_start = first_start.astimezone(zone)
    local_end = first_end.astimezone(zone)
    duration_days = (local_end.date() - local_start.date()).days
    if rule.until is not None and rule.until < local_start.date():
        raise RecurrenceError("The end date of the series is before its first occurrence.")

    until = datetime.combine(rule.until, time.max) if rule.until else None
    kwargs: dict = {
        "dtstart": local_start.replace(tzinfo=None),
        "interval": rule.interval,
        "count": rule.count,
        # dateutil deprecates count and until together (a later version raises, which would be
        # a 500 for an API call giving both): with a count, the end date is applied below.
        "until": None if rule.count is not None else until,
    }
    if rule.frequency == Frequency.DAILY:
        freq = rrule.DAILY
    elif rule.frequency == Frequency.WEEKLY:
        freq = rrule.WEEKLY
        kwargs["byweekday"] = sorted(set(rule.weekdays)) or [local_start.weekday()]
        if any(not 0 <= d <= 6 for d in kwargs["byweekday"]):
            raise RecurrenceError("Weekdays are 0 (Monday) to 6 (Sunday).")
    elif rule.frequency == Frequency.MONTHLY_BY_DAY:
        freq = rrule.MONTHLY
        kwargs["bymonthday"] = local_start.day
    elif rule.frequency == Frequency.MONTHLY_BY_WEEKDAY:
        freq = rrule.MONTHLY
        if rule.last_weekday:
            nth = -1
        else:
            nth = (local_start.day - 1) // 7 + 1
            if nth == 5:  # "the 5th Monday" skips most months; treat it as "the last Monday"
                nth = -1
        kwargs["byweekday"] = [rrule.weekday(local_start.weekday(), nth)]
    else:
        raise RecurrenceError(f"Unknown frequency {rule.frequency!r}.")

    result = Expansion()
    for naive in rrule.rrule(freq, **kwargs):
        if until is not None and naive > until:
            break
        if len(result.slots) + len(result.nonexistent) >= MAX_OCCURRENCES:
            raise RecurrenceError(
                f"A series may have at most {MAX_OCCURRENCES} occurrences; choose an earlier end."
            )
        start = localize(naive.date(), local_start.time(), zone)
        end = localize(naive.date() + timedelta(days=duration_days), local_end.time(), zone)
        if start is None or end is None:
            result.nonexistent.append(naive.date())
            continue
        result.slots.append((start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))))
    if not result.slots:
        raise RecurrenceError("This rule produces no occurrences.")
    return result
