"""When a location is open next: the day the schedule opens on and what quick reservation
says instead of offering a room while the location is closed.

A location is open in its opening hours for the weekday, minus the closures of the whole
location (``reservations.closures``); a closure of one space does not close the location.
Looks at most ``LOOKAHEAD_DAYS`` ahead: a location closed longer than that has nothing to
offer soon, and the callers say so.

Reads: the location's opening hours (one query) and its whole-location closures over the
window (one query).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from . import closures
from .models import Location
from .recurrence import localize

LOOKAHEAD_DAYS = 14


def _open_periods(location: Location, first: date, days: int) -> list[tuple[datetime, datetime]]:
    """Each day's opening hours from ``first`` on, as aware datetimes in the location's zone."""
    zone = location.zone
    hours = {h.weekday: h for h in location.opening_hours.all()}
    found = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = hours.get(day.weekday())
        if row is None:
            continue
        opens, closes = localize(day, row.opens, zone), localize(day, row.closes, zone)
        if opens is not None and closes is not None and closes > opens:
            found.append((opens, closes))
    return found


def next_opening(location: Location, now: datetime) -> datetime | None:
    """``now`` when the location is open now, else the moment it opens next (in its zone),
    or None when it does not open within ``LOOKAHEAD_DAYS`` days."""
    today = now.astimezone(location.zone).date()
    periods = _open_periods(location, today, LOOKAHEAD_DAYS + 1)
    if not periods:
        return None
    closed = closures.periods_on(location, periods[0][0], periods[-1][1]).get(None, [])
    for opens, closes in periods:
        moment = max(opens, now)
        for period in closed:  # in time order: each may push the moment past the next
            if period.start <= moment < period.end:
                moment = period.end
        if moment < closes:
            return moment.astimezone(location.zone)
    return None


def next_open_day(location: Location, now: datetime) -> date | None:
    """The day in the location's zone on which it is open next (today while it is still to
    open or open now)."""
    opening = next_opening(location, now)
    return opening.date() if opening is not None else None


def opens_phrase(location: Location, opening: datetime | None, now: datetime) -> str:
    """ "opens at 07:00", "opens tomorrow at 07:00", "opens on Monday 7 December at 07:00",
    or "does not open in the next 14 days", for a sentence starting with the location's
    name."""
    if opening is None:
        return f"does not open in the next {LOOKAHEAD_DAYS} days"
    local = opening.astimezone(location.zone)
    today = now.astimezone(location.zone).date()
    if local.date() == today:
        when = ""
    elif local.date() == today + timedelta(days=1):
        when = " tomorrow"
    else:
        when = f" on {local:%A} {local.day} {local:%B}"
    return f"opens{when} at {local:%H:%M}"
