"""Setup and cleanup buffers: the minutes kept free before and after every booking of a space.

A booking holds its *buffered range*, ``[start - setup, end + cleanup)``, stored on the row
(``Reservation.buffered_start``/``buffered_end``, stamped by ``Reservation.save``). Two
slot-holding bookings of a space may not have overlapping buffered ranges: the booking
service's locked check compares them (``queries.clashes``) and PostgreSQL's exclusion
constraint is built on them (migration 0009). So with 15 minutes of setup and 15 of cleanup,
a booking ending at 10:00 is followed at the earliest by one starting at 10:30.

People and calendars see the booked times only: the push, the emails and the booking pages
never show a buffer; the schedule draws them as hatched edges so the gap is explained.
Buffers may reach outside the opening hours (they are the staff's time, not the booker's).

This module holds the pure parts: the words that explain a refusal caused by a buffer, and
the free periods left between buffered bookings (the API's free slots, the schedule).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def _minutes(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def explain(
    space_name: str,
    zone: ZoneInfo,
    *,
    start: datetime,
    end: datetime,
    setup: timedelta,
    cleanup: timedelta,
    other_start: datetime,
    other_end: datetime,
    other_buffered_start: datetime,
    other_buffered_end: datetime,
) -> str | None:
    """Why [start, end) cannot sit next to another booking of the space, when it is the
    buffers and not the booked times that collide; None when the booked times overlap."""
    if start < other_end and other_start < end:
        return None
    if end <= other_start:  # this one comes first: its cleanup and the next one's setup
        latest_end = (other_buffered_start - cleanup).astimezone(zone)
        needs = _needs(other_start - other_buffered_start, cleanup, "before the next booking")
        return (
            f"{space_name} {needs}: the next booking starts at "
            f"{other_start.astimezone(zone):%H:%M}, so this one must end by {latest_end:%H:%M}."
        )
    earliest_start = (other_buffered_end + setup).astimezone(zone)
    needs = _needs(setup, other_buffered_end - other_end, "after the previous booking")
    return (
        f"{space_name} {needs}: the previous booking ends at "
        f"{other_end.astimezone(zone):%H:%M}, so this one can start at {earliest_start:%H:%M} "
        "at the earliest."
    )


def _needs(setup: timedelta, cleanup: timedelta, where: str) -> str:
    """The words for what the space needs between two bookings, e.g. "needs 15 minutes to be
    cleaned up and 15 minutes to be set up before the next booking" (``setup``: of the later
    booking; ``cleanup``: of the earlier one)."""
    parts = []
    if cleanup:
        parts.append(f"{_minutes(cleanup)} to be cleaned up")
    if setup:
        parts.append(f"{_minutes(setup)} to be set up")
    return f"needs {' and '.join(parts) or 'a gap'} {where}"


def free_periods(
    opens: datetime,
    closes: datetime,
    busy: Iterable[tuple[datetime, datetime]],
    setup: timedelta,
    cleanup: timedelta,
) -> list[tuple[datetime, datetime]]:
    """The periods of [opens, closes) in which a booking may start and end: a booking of
    [s, e) fits when [s - setup, e + cleanup) overlaps none of the ``busy`` buffered ranges.
    So each busy range rules out booked times from ``cleanup`` before it to ``setup`` after."""
    periods: list[tuple[datetime, datetime]] = []
    cursor = opens
    for busy_start, busy_end in sorted(busy):
        blocked_from, blocked_to = busy_start - cleanup, busy_end + setup
        if blocked_from > cursor:
            periods.append((cursor, min(blocked_from, closes)))
        cursor = max(cursor, blocked_to)
        if cursor >= closes:
            break
    if cursor < closes:
        periods.append((cursor, closes))
    return [(s, e) for s, e in periods if e > s]
