"""Free times of one space over several days: what the conflict panel offers as "next free
time in the same room", and the API's free slots.

A booking of [s, e) fits when it lies within one day's opening hours, its range widened by the
space's setup and cleanup buffers meets no slot-holding booking's buffered range
(``buffers.free_periods``), and it meets no closure of the space or its location. A closure
rules out the booked times themselves: it is given to ``free_periods`` as a "buffered range"
that blocks exactly the closed period.

``next_free`` answers "when is this room free for as long, after the slot I asked for?": the
earliest start of each free period long enough (so three offers are three different gaps, not
10:00, 10:05 and 10:10 of the same one), rounded up to five minutes, from the requested start
over the following days, up to ``NEXT_FREE_DAYS`` days and never beyond the location's
booking horizon. The person's own limits (notice, window, hours per week) are the service's
to judge when the offer is taken.

Reads, whatever the number of days: the opening hours, the space's bookings in the window (one
query, only their buffered ranges) and the closures (one query).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from . import buffers, closures, queries
from .models import Space
from .recurrence import localize

NEXT_FREE_DAYS = 14  # how far ahead "next free time" looks (less when the horizon is shorter)
NEXT_FREE_COUNT = 3
ROUND_TO = timedelta(minutes=5)  # the booking form's time step
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def opening_hours(space: Space, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The location's opening hours on each day from ``first`` to ``last`` (aware, in its
    zone), skipping the days it does not open."""
    location = space.location
    zone = location.zone
    hours = {h.weekday: h for h in location.opening_hours.all()}
    found = []
    day = first
    while day <= last:
        day_hours = hours.get(day.weekday())
        if day_hours is not None:
            opens = localize(day, day_hours.opens, zone)
            closes = localize(day, day_hours.closes, zone)
            if opens is not None and closes is not None and closes > opens:
                found.append((opens, closes))
        day += timedelta(days=1)
    return found


def free_periods(
    space: Space, first: date, last: date, *, exclude: tuple[int, ...] = ()
) -> list[tuple[datetime, datetime]]:
    """The periods from ``first`` to ``last`` (days in the location's zone) in which a
    booking of the space may start and end, in time order (aware datetimes in UTC).
    ``exclude``: bookings not to count (the one being moved does not block its own move)."""
    days = [
        (opens.astimezone(UTC), closes.astimezone(UTC))
        for opens, closes in opening_hours(space, first, last)
    ]
    if not days:
        return []
    start, end = days[0][0], days[-1][1]
    busy = list(
        queries.slot_holding()
        .filter(
            queries.overlapping(start - space.setup, end + space.cleanup),
            space_id=space.pk,
        )
        .exclude(pk__in=exclude)
        .values_list("buffered_start", "buffered_end")
    )
    closed = closures.periods_on(space.location, start, end, [space.pk])
    busy += [
        (period.start + space.cleanup, period.end - space.setup)
        for found in closed.values()
        for period in found
    ]
    busy.sort()
    periods = []
    for opens, closes in days:
        near = [(s, e) for s, e in busy if s < closes + space.cleanup and e > opens - space.setup]
        periods += buffers.free_periods(opens, closes, near, space.setup, space.cleanup)
    return periods


def _round_up(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    late = (moment - _EPOCH) % ROUND_TO
    return moment + (ROUND_TO - late) if late else moment


def next_free(
    space: Space,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    count: int = NEXT_FREE_COUNT,
    exclude: tuple[int, ...] = (),
) -> list[tuple[datetime, datetime]]:
    """Up to ``count`` slots as long as [start, end) in the same space, at or after ``start``
    (and not in the past): the earliest start of each free period that is long enough, in
    time order, as aware datetimes in the location's zone. Empty when none is free within
    ``NEXT_FREE_DAYS`` days and the booking horizon. ``exclude``: as for ``free_periods``
    (a reschedule leaves out the booking it moves)."""
    location = space.location
    zone = location.zone
    length = end - start
    earliest = _round_up(max(start, now))
    latest_start = now + timedelta(days=location.booking_horizon_days)
    first = earliest.astimezone(zone).date()
    last = min(first + timedelta(days=NEXT_FREE_DAYS), latest_start.astimezone(zone).date())
    found: list[tuple[datetime, datetime]] = []
    if length <= timedelta() or last < first:
        return found
    for period_start, period_end in free_periods(space, first, last, exclude=exclude):
        begin = _round_up(max(period_start, earliest))
        if begin > latest_start:
            break
        if begin + length <= period_end:
            found.append((begin.astimezone(zone), (begin + length).astimezone(zone)))
            if len(found) == count:
                break
    return found
