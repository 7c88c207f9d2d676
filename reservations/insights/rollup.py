"""The daily rollup behind the Insights page: ``SpaceDayStats`` (and ``SpaceDaySource``).

``rollup_day(location, day)`` rebuilds the rows of every space of a location for one local
day, in one transaction: it deletes that day's rows and inserts them again, so running it
twice gives the same rows (the beat task redoes yesterday and today; ``manage.py
rollup_insights`` redoes any period). ``rebuild`` then sums the months it touched into
``SpaceMonthStats`` and ``SpaceMonthSource`` (``rollup_month``), from which the page reads the
whole months of a long period. The figures come from three aggregate queries over the
day's reservations (grouped by space in the database, whatever their number) and, for the
opening hours minus closures, the location's few opening-hour and closure rows.

What counts (see ``SpaceDayStats``): bookings that held their slot (pending, confirmed) and
no-shows (``released_at`` set: released, or cancelled by the no-show rule). Cancelled and
conflicted bookings do not. A no-show's booked minutes run to its release; its released
minutes (to its end) are recomputed here rather than read from ``SpaceDayUsage``, which the
release task increments and which a rebuild could not put right.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    F,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least

from .. import closures
from ..models import (
    HOUR_FIELDS,
    Location,
    Reservation,
    ReservationStatus,
    Space,
    SpaceDaySource,
    SpaceDayStats,
    SpaceMonthSource,
    SpaceMonthStats,
)

COUNTED = Q(
    status__in=(ReservationStatus.PENDING, ReservationStatus.CONFIRMED, ReservationStatus.RELEASED)
) | Q(released_at__isnull=False)
NO_TIME = Value(timedelta(0), output_field=DurationField())


def _minutes(value: timedelta | None) -> int:
    return round(value.total_seconds() / 60) if value else 0


def _at(day: date, hour: int, zone) -> datetime:
    """The UTC instant of ``hour``:00 on ``day`` on the zone's wall clock (24: next midnight)."""
    if hour == 24:
        day, hour = day + timedelta(days=1), 0
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def hour_bounds(day: date, zone) -> list[datetime]:
    """25 UTC instants: the start of each local hour of ``day`` and the next midnight. On the
    day clocks go forward the skipped hour is empty; going back, the repeated hour is longer."""
    bounds = [_at(day, hour, zone) for hour in range(25)]
    for i in range(1, 25):  # never backwards (a nonexistent local time may map past the next)
        bounds[i] = max(bounds[i], bounds[i - 1])
    return bounds


def _subtract(
    start: datetime, end: datetime, cuts: Iterable[tuple[datetime, datetime]]
) -> timedelta:
    """The length of [start, end) outside the union of ``cuts``."""
    free, cursor = timedelta(0), start
    for cut_start, cut_end in sorted(cuts):
        if cut_end <= cursor:
            continue
        if cut_start >= end:
            break
        if cut_start > cursor:
            free += cut_start - cursor
        cursor = max(cursor, cut_end)
        if cursor >= end:
            break
    if cursor < end:
        free += end - cursor
    return free


def _opening(location: Location, day: date) -> tuple[datetime, datetime] | None:
    hours = next((h for h in location.opening_hours.all() if h.weekday == day.weekday()), None)
    if hours is None:
        return None
    zone = location.zone
    opens = datetime.combine(day, hours.opens, tzinfo=zone).astimezone(UTC)
    closes = datetime.combine(day, hours.closes, tzinfo=zone).astimezone(UTC)
    return opens, closes


def _started(location: Location, start: datetime, end: datetime) -> dict[int, dict]:
    """Per space: counts, lengths and lead times of the bookings starting in [start, end)."""
    rows = (
        Reservation.objects.filter(COUNTED, space__location=location, start__gte=start)
        .filter(start__lt=end)
        .values("space_id")
        .annotate(
            bookings=Count("pk"),
            checked_in=Count("pk", filter=Q(checked_in_at__isnull=False)),
            released=Count("pk", filter=Q(released_at__isnull=False)),
            length=Sum(F("end") - F("start")),
            lead=Sum(F("start") - F("created")),
            released_time=Sum(
                Greatest(F("end") - Greatest(F("start"), F("released_at")), NO_TIME),
                filter=Q(released_at__isnull=False),
            ),
        )
    )
    return {row["space_id"]: row for row in rows}


def _sources(location: Location, start: datetime, end: datetime) -> dict[int, dict[str, int]]:
    rows = (
        Reservation.objects.filter(COUNTED, space__location=location, start__gte=start)
        .filter(start__lt=end)
        .values("space_id", "source")
        .annotate(n=Count("pk"))
    )
    found: dict[int, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["space_id"], {})[row["source"]] = row["n"]
    return found


def _hours(location: Location, bounds: list[datetime]) -> dict[int, list[int]]:
    """Per space: booked minutes in each local hour (24 values), bookings clipped to the day
    and a no-show's to its release. One query: 24 sums of overlaps, grouped by space."""
    held_end = Case(
        When(released_at__isnull=False, then=Greatest(Least(F("end"), F("released_at")), "start")),
        default=F("end"),
        output_field=DateTimeField(),
    )
    sums = {}
    for hour, name in enumerate(HOUR_FIELDS):
        low = Value(bounds[hour], output_field=DateTimeField())
        high = Value(bounds[hour + 1], output_field=DateTimeField())
        overlap = Least(held_end, high) - Greatest(F("start"), low)
        sums[name] = Sum(Greatest(overlap, NO_TIME))
    rows = (
        Reservation.objects.filter(COUNTED, space__location=location, start__lt=bounds[24])
        .filter(end__gt=bounds[0])
        .values("space_id")
        .annotate(**sums)
    )
    return {row["space_id"]: [_minutes(row[name]) for name in HOUR_FIELDS] for row in rows}


@transaction.atomic
def rollup_day(location: Location, day: date) -> int:
    """Rebuild the rows of the location's spaces for ``day`` (local); returns how many."""
    # One rebuild of a location at a time (the beat task and the command may meet): the
    # delete-and-insert below would otherwise insert the same (space, day) twice.
    Location.objects.select_for_update().filter(pk=location.pk).first()
    zone = location.zone
    bounds = hour_bounds(day, zone)
    start, end = bounds[0], bounds[24]
    started = _started(location, start, end)
    sources = _sources(location, start, end)
    hours = _hours(location, bounds)
    spaces = list(
        Space.objects.filter(location=location)
        .annotate(_check_in=Coalesce("check_in_required", "location__check_in_required"))
        .values("pk", "is_reservable", "_check_in")
    )
    opening = _opening(location, day)
    closed = closures.periods_on(location, start, end, [s["pk"] for s in spaces])
    closed_everywhere = [(p.start, p.end) for p in closed.get(None, [])]

    SpaceDayStats.objects.filter(space__location=location, day=day).delete()
    rows = []
    for space in spaces:
        pk = space["pk"]
        if not space["is_reservable"] and pk not in started and pk not in hours:
            continue
        available = 0
        if opening is not None and space["is_reservable"]:
            cuts = closed_everywhere + [(p.start, p.end) for p in closed.get(pk, [])]
            available = _minutes(_subtract(*opening, cuts))
        by_hour = hours.get(pk, [0] * 24)
        counts = started.get(pk, {})
        rows.append(
            SpaceDayStats(
                space_id=pk,
                day=day,
                weekday=day.weekday(),
                available_minutes=available,
                booked_minutes=sum(by_hour),
                bookings=counts.get("bookings", 0),
                check_in_required=bool(space["_check_in"]),
                checked_in=counts.get("checked_in", 0),
                released=counts.get("released", 0),
                released_minutes=_minutes(counts.get("released_time")),
                booking_minutes=_minutes(counts.get("length")),
                lead_minutes=_minutes(counts.get("lead")),
                **dict(zip(HOUR_FIELDS, by_hour, strict=True)),
            )
        )
    created = SpaceDayStats.objects.bulk_create(rows)
    by_space = {row.space_id: row for row in created}
    SpaceDaySource.objects.bulk_create(
        SpaceDaySource(stats=by_space[pk], space_id=pk, day=day, source=source, bookings=n)
        for pk, found in sources.items()
        if pk in by_space
        for source, n in found.items()
    )
    return len(created)


# Summed from the daily rows into the monthly ones (check_in_bookings is computed apart).
MONTH_SUMS = (
    "available_minutes",
    "booked_minutes",
    "bookings",
    "checked_in",
    "released",
    "released_minutes",
    "booking_minutes",
    "lead_minutes",
    *HOUR_FIELDS,
)


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


@transaction.atomic
def rollup_month(location: Location, month: date) -> int:
    """Rebuild the location's ``SpaceMonthStats`` and ``SpaceMonthSource`` rows of ``month``
    (its first day) from the daily rows: two aggregate queries, whatever the number of spaces.
    Under the same location lock as ``rollup_day``, so the days read are not being rebuilt."""
    Location.objects.select_for_update().filter(pk=location.pk).first()
    days = {"space__location": location, "day__gte": month, "day__lt": next_month(month)}
    sums = (
        SpaceDayStats.objects.filter(**days)
        .values("space_id", "weekday")
        .annotate(
            # Named apart from the fields: an annotation named "bookings" would hide the field.
            **{f"sum_{name}": Sum(name) for name in MONTH_SUMS},
            sum_check_in_bookings=Coalesce(Sum("bookings", filter=Q(check_in_required=True)), 0),
        )
        .order_by()
    )
    sources = (
        SpaceDaySource.objects.filter(**days)
        .values("space_id", "source")
        .annotate(n=Sum("bookings"))
        .order_by()
    )
    SpaceMonthStats.objects.filter(space__location=location, month=month).delete()
    SpaceMonthSource.objects.filter(space__location=location, month=month).delete()
    created = SpaceMonthStats.objects.bulk_create(
        SpaceMonthStats(
            space_id=row["space_id"],
            month=month,
            weekday=row["weekday"],
            check_in_bookings=row["sum_check_in_bookings"],
            **{name: row[f"sum_{name}"] for name in MONTH_SUMS},
        )
        for row in sums
    )
    SpaceMonthSource.objects.bulk_create(
        SpaceMonthSource(
            space_id=row["space_id"], month=month, source=row["source"], bookings=row["n"]
        )
        for row in sources
    )
    return len(created)


def rebuild(first: date, last: date, locations: Iterable[Location] | None = None) -> int:
    """Rebuild every day from ``first`` to ``last`` (included) of each location (all by
    default), each day in its own transaction, then the months those days are in. Returns the
    number of daily rows written."""
    locations = list(locations if locations is not None else Location.objects.all())
    written = 0
    for location in locations:
        day = first
        while day <= last:
            written += rollup_day(location, day)
            day += timedelta(days=1)
        month = month_of(first)
        while month <= last:
            rollup_month(location, month)
            month = next_month(month)
    return written


def rollup_recent(now: datetime) -> int:
    """Yesterday and today so far of every location, each in its own zone (the beat task)."""
    written = 0
    for location in Location.objects.prefetch_related("opening_hours"):
        today = now.astimezone(location.zone).date()
        written += rebuild(today - timedelta(days=1), today, [location])
    return written
