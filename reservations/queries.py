"""Reads that are more than a filter: clashes and availability.

Two intervals [a, b) and [c, d) overlap when a < d and c < b; back-to-back bookings do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import SLOT_HOLDING_STATUSES, Reservation, Space, SpaceKind


def slot_holding() -> QuerySet[Reservation]:
    return Reservation.objects.filter(status__in=SLOT_HOLDING_STATUSES)


def overlapping(start: datetime, end: datetime) -> Q:
    return Q(start__lt=end, end__gt=start)


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
    """Spaces with no slot-holding reservation in [start, end), smallest fitting first.

    One query with a NOT EXISTS subquery, served by the (space, start, end) index.
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
    return spaces.filter(~Exists(busy)).order_by("capacity", "name")
