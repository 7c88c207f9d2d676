"""Reads that are more than a filter: clashes and availability.

Two intervals [a, b) and [c, d) overlap when a < d and c < b; back-to-back bookings do not.
On PostgreSQL that test is written as a range overlap (``tstzrange(start, end) && ...``) so the
GiST indexes can answer it: a B-tree on (start, end) can bound only one end of an interval, so
"which bookings cover 14:00-15:00" would read every booking that starts before 15:00.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import (
    BooleanField,
    DateTimeField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Value,
)

from . import closures
from .models import SLOT_HOLDING_STATUSES, Reservation, Space, SpaceKind


class Overlaps(Func):
    """True for reservations whose [start, end) overlaps the given [start, end).

    Portable SQL: ``start < :end AND end > :start``. PostgreSQL:
    ``tstzrange(start, end, '[)') && tstzrange(:start, :end, '[)')``, the very expression the
    exclusion constraint (migration 0002, per space) and the range index (migration 0004,
    across spaces) are built on; the planner uses an index only when the expression matches.
    """

    output_field = BooleanField()
    conditional = True
    arity = 4

    def __init__(self, start: datetime, end: datetime) -> None:
        super().__init__(
            F("start"),
            F("end"),
            Value(start, output_field=DateTimeField()),
            Value(end, output_field=DateTimeField()),
        )

    def _compile_args(self, compiler, connection) -> tuple[list[str], list[list]]:
        compiled = [compiler.compile(arg) for arg in self.get_source_expressions()]
        return [sql for sql, _ in compiled], [list(params) for _, params in compiled]

    def as_sql(self, compiler, connection, **extra_context):
        (row_start, row_end, start, end), params = self._compile_args(compiler, connection)
        return (
            f"({row_start} < {end} AND {row_end} > {start})",
            (*params[0], *params[3], *params[1], *params[2]),
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        (row_start, row_end, start, end), params = self._compile_args(compiler, connection)
        return (
            f"(tstzrange({row_start}, {row_end}, '[)') && tstzrange({start}, {end}, '[)'))",
            (*params[0], *params[1], *params[2], *params[3]),
        )


def slot_holding() -> QuerySet[Reservation]:
    return Reservation.objects.filter(status__in=SLOT_HOLDING_STATUSES)


def overlapping(start: datetime, end: datetime) -> Q:
    """Reservations whose [start, end) overlaps [start, end)."""
    return Q(Overlaps(start, end))


def clashes(
    space_id: int, start: datetime, end: datetime, exclude_ids: Iterable[int] = ()
) -> QuerySet[Reservation]:
    """Slot-holding reservations of a space that overlap [start, end)."""
    return (
        slot_holding()
        .filter(overlapping(start, end), space_id=space_id)
        .exclude(pk__in=list(exclude_ids))
        .order_by("start")
    )


def bookable_spaces() -> QuerySet[Space]:
    return Space.objects.filter(is_reservable=True).exclude(kind=SpaceKind.CONTAINER)


def free_spaces(
    start: datetime,
    end: datetime,
    *,
    location_id: int | None = None,
    min_capacity: int = 1,
    kinds: Iterable[str] = (),
    amenity_ids: Iterable[int] = (),
) -> QuerySet[Space]:
    """Spaces with no slot-holding reservation in [start, end) and not closed then (nor their
    location: ``closures``), smallest fitting first.

    One query with a NOT EXISTS subquery (plus one small read of the closures). On PostgreSQL
    the planner turns it into a hash anti-join: the range index finds the few bookings that
    overlap the hour (across all spaces), and the spaces not among them are returned.
    """
    busy = slot_holding().filter(overlapping(start, end), space_id=OuterRef("pk"))
    spaces = bookable_spaces().filter(capacity__gte=min_capacity)
    if location_id is not None:
        spaces = spaces.filter(location_id=location_id)
    kinds = list(kinds)
    if kinds:
        spaces = spaces.filter(kind__in=kinds)
    for amenity_id in amenity_ids:
        spaces = spaces.filter(amenities__id=amenity_id)
    spaces = closures.exclude_closed(spaces, start, end, location_id=location_id)
    return spaces.filter(~Exists(busy)).order_by("capacity", "name")
