"""Closures: when a location or one space cannot be booked, and why.

A ``Closure`` is stored in the location's wall clock (first and last day, optionally a start
time on the first day and an end time on the last), so "25 December" stays 25 December in
every zone and every year. This module turns closures into UTC periods and answers the three
questions the rest of the app asks:

- ``find``: the closure a booking of a space in [start, end) runs into (the booking service
  refuses it with the closure's reason, for every entry point);
- ``closed_ids``: which locations and spaces are closed at some point of a window (search and
  availability leave them out), in one query whatever the number of spaces;
- ``periods_on``: the closed periods of a location's spaces on one day (the schedule and the
  free slots of a space);
- ``affected``: the bookings that already hold a slot in a closure (the admin lists them and
  offers to cancel them, never silently).

Closures are few (holidays, maintenance), so they are read with one small query and compared
in Python; yearly ones are expanded to the years the window touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Max, Q, QuerySet

from .models import SLOT_HOLDING_STATUSES, Closure, Location, Reservation, Space

# A UTC window's local dates are within a day of its UTC dates in any zone (offsets < 24 h).
_ZONE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class ClosedPeriod:
    """One occurrence of a closure: [start, end) in UTC-aware datetimes."""

    closure: Closure
    start: datetime
    end: datetime

    def describe(self, name: str, zone: ZoneInfo) -> str:
        """The sentence shown when something is refused or greyed out for this closure."""
        start, end = self.start.astimezone(zone), self.end.astimezone(zone)
        whole_days = start.time() == time(0) and end.time() == time(0)
        last_day = (end - timedelta(days=1)).date() if whole_days else end.date()
        if whole_days and last_day == start.date():
            when = f"on {start:%a %d %b %Y}"
        elif whole_days:
            when = f"from {start:%a %d %b %Y} to {last_day:%a %d %b %Y}"
        elif start.date() == end.date():
            when = f"from {start:%H:%M} to {end:%H:%M} on {start:%a %d %b %Y}"
        elif end.time() == time(0) and end.date() == start.date() + timedelta(days=1):
            when = f"from {start:%H:%M} on {start:%a %d %b %Y} until the end of the day"
        else:
            when = f"from {start:%a %d %b %Y %H:%M} to {end:%a %d %b %Y %H:%M}"
        return f"{name} is closed {when}: {self.closure.reason}."


def _bounds(closure: Closure, first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, closure.start_time or time(0), tzinfo=zone)
    if closure.end_time is None:
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    else:
        end = datetime.combine(last, closure.end_time, tzinfo=zone)
    return start, end


def periods(closure: Closure, start: datetime, end: datetime, zone: ZoneInfo) -> list[ClosedPeriod]:
    """The occurrences of ``closure`` that overlap [start, end), in start order."""
    if not closure.yearly:
        candidates = [(closure.start_date, closure.end_date)]
    else:
        span = closure.end_date - closure.start_date
        years = range(start.astimezone(zone).year - 1, end.astimezone(zone).year + 1)
        candidates = []
        for year in years:
            try:  # 29 February repeats only in leap years
                first = closure.start_date.replace(year=year)
            except ValueError:
                continue
            candidates.append((first, first + span))
    found = []
    for first, last in candidates:
        closed_start, closed_end = _bounds(closure, first, last, zone)
        if closed_start < end and closed_end > start:
            found.append(ClosedPeriod(closure, closed_start, closed_end))
    return found


def _candidates(start: datetime, end: datetime) -> QuerySet[Closure]:
    """Closures that may overlap [start, end) in some zone (yearly ones always may)."""
    return Closure.objects.filter(
        Q(yearly=True)
        | Q(
            start_date__lte=(end + _ZONE_SLACK).date(),
            end_date__gte=(start - _ZONE_SLACK).date(),
        )
    ).select_related("location", "space")


def periods_for(space: Space, start: datetime, end: datetime) -> list[ClosedPeriod]:
    """The closed periods of the space's location, or of the space itself, that overlap
    [start, end), in start order. An unsaved space (a probe for "the location") sees only
    the location's closures."""
    location = space.location
    if space.pk is None:
        closures = _location_wide(location, start, end)
    else:
        closures = _candidates(start, end).filter(
            Q(space__isnull=True) | Q(space_id=space.pk), location_id=location.pk
        )
    found = [p for c in closures for p in periods(c, start, end, location.zone)]
    return sorted(found, key=lambda p: p.start)


def _location_wide(location: Location, start: datetime, end: datetime) -> list[Closure]:
    """The closures of the whole location that may overlap [start, end), remembered on the
    Location instance by the days the read covers.

    Find a space asks about "the location" (a probe Space) twice a request, for its search
    and for the quick reservation box, two windows of the same days: the second is answered
    from the first read. Only views make probes, and their Location instances live for one
    request; the booking service asks about a real space, read afresh under its lock.
    """
    days = ((start - _ZONE_SLACK).date(), (end + _ZONE_SLACK).date())
    remembered: dict[tuple[date, date], list[Closure]] = location.__dict__.setdefault(
        "_closures_by_days", {}
    )
    if days not in remembered:
        remembered[days] = list(
            _candidates(start, end).filter(space__isnull=True, location_id=location.pk)
        )
    return remembered[days]


def find(space: Space, start: datetime, end: datetime) -> ClosedPeriod | None:
    """The first closed period of the space or its location overlapping [start, end)."""
    found = periods_for(space, start, end)
    return found[0] if found else None


def closed_ids(
    start: datetime, end: datetime, *, location_id: int | None = None
) -> tuple[set[int], set[int]]:
    """(location ids, space ids) closed at some point of [start, end)."""
    closures = _candidates(start, end)
    if location_id is not None:
        closures = closures.filter(location_id=location_id)
    locations: set[int] = set()
    spaces: set[int] = set()
    for closure in closures:
        if periods(closure, start, end, closure.location.zone):
            if closure.space_id is None:
                locations.add(closure.location_id)
            else:
                spaces.add(closure.space_id)
    return locations, spaces


def exclude_closed(
    spaces: QuerySet[Space], start: datetime, end: datetime, *, location_id: int | None = None
) -> QuerySet[Space]:
    """``spaces`` without those closed (themselves or their location) in [start, end);
    ``location_id`` narrows the read of closures when the spaces are all in one location."""
    locations, closed_spaces = closed_ids(start, end, location_id=location_id)
    if locations:
        spaces = spaces.exclude(location_id__in=locations)
    if closed_spaces:
        spaces = spaces.exclude(pk__in=closed_spaces)
    return spaces


def periods_on(
    location: Location, start: datetime, end: datetime, space_ids: Iterable[int] = ()
) -> dict[int | None, list[ClosedPeriod]]:
    """Closed periods overlapping [start, end), keyed by space id (None: the location)."""
    closures = _candidates(start, end).filter(
        Q(space__isnull=True) | Q(space_id__in=list(space_ids)), location_id=location.pk
    )
    by_space: dict[int | None, list[ClosedPeriod]] = {}
    for closure in closures:
        for period in periods(closure, start, end, location.zone):
            by_space.setdefault(closure.space_id, []).append(period)
    for found in by_space.values():
        found.sort(key=lambda p: p.start)
    return by_space


def affected(closure: Closure, now: datetime) -> list[tuple[Reservation, ClosedPeriod]]:
    """Slot-holding bookings not yet over that overlap a period of ``closure``, each with the
    period it runs into, in start order. A yearly closure is looked at up to the last
    booking of the location (or space): one aggregate, then one overlap query."""
    location = closure.location
    holding = Reservation.objects.filter(
        status__in=SLOT_HOLDING_STATUSES, end__gt=now, space__location_id=location.pk
    )
    if closure.space_id is not None:
        holding = holding.filter(space_id=closure.space_id)
    last_end = holding.aggregate(last=Max("end"))["last"]
    if last_end is None:
        return []
    found = periods(closure, now, last_end, location.zone)
    if not found:
        return []
    overlaps = Q()
    for period in found:
        overlaps |= Q(start__lt=period.end, end__gt=period.start)
    rows = holding.filter(overlaps).select_related("space__location", "requested_for")
    return [
        (row, next(p for p in found if p.start < row.end and p.end > row.start))
        for row in rows.order_by("start", "pk")
    ]


def notice(period: ClosedPeriod, space: Space) -> str:
    """The reason a booking cancelled for a closure carries (its person's email says it)."""
    name = space.name if period.closure.space_id else space.location.name
    return period.describe(name, space.location.zone)
