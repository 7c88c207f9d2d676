"""The week view of one space: seven day columns, Monday to Sunday in the location's zone, down
the week's opening hours in half-hour rows.

``/schedule/space/<id>/?week=YYYY-MM-DD`` (any day of the week; without it, this week). Each
day is drawn by the day grid's own ``schedule.space_row`` on a common frame (the week's
earliest opening to its latest closing, to the half hour), so bookings, buffers, closures,
what other people's bookings show (their public nickname or "Booked") and which half hours
can be booked are the day grid's, by the same code. A day the location does not open keeps
its column, every half hour shut, with the reason.

Reads for the whole week, whatever the number of bookings: the opening hours, the space's
slot-holding bookings (one query), the closures (``closures.periods_on``, one query) and
the approval rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from .. import approvals, closures, queries, rules
from ..models import Space
from ..recurrence import localize
from .booking import PLANNER
from .common import SLOT_MINUTES, parse_day
from .schedule import Row, space_row

STEP = timedelta(minutes=SLOT_MINUTES)


@dataclass
class DayColumn:
    day: date
    row: Row
    note: str  # why nothing can be booked that day ("Closed on Sundays."), or ""
    is_today: bool
    now_at: float | None  # where the now line is, in % of the frame (today only)

    @property
    def tip(self) -> str:
        """A prefix for the ids of the column's tooltips (a booking past midnight, or a
        closure of several days, appears in two columns)."""
        return f"d{self.day:%m%d}-"


@login_required
def week(request: HttpRequest, pk: int) -> HttpResponse:
    space = get_object_or_404(queries.bookable_spaces().select_related("location"), pk=pk)
    location = space.location
    zone = location.zone
    today = timezone.now().astimezone(zone).date()
    picked = parse_day(request.GET.get("week") or request.GET.get("date"), today)
    monday = picked - timedelta(days=picked.weekday())
    context = {
        "space": space,
        "location": location,
        "picked": picked,
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        "today": today,
        "this_week": today - timedelta(days=today.weekday()),
        "previous_week": monday - timedelta(days=7),
        "next_week": monday + timedelta(days=7),
        "planner": PLANNER,
        "has_buffers": bool(space.setup_minutes or space.cleanup_minutes),
    }
    context.update(_columns(request.user, space, monday, today))
    return render(request, "reservations/week.html", context)


def _opening(space: Space, days: list[date]) -> dict[date, tuple[datetime, datetime]]:
    """The days the location opens, with their opening hours as aware datetimes."""
    zone = space.location.zone
    hours = {h.weekday: h for h in space.location.opening_hours.all()}
    found = {}
    for day in days:
        day_hours = hours.get(day.weekday())
        if day_hours is None:
            continue
        opens, closes = localize(day, day_hours.opens, zone), localize(day, day_hours.closes, zone)
        if opens is not None and closes is not None and closes > opens:
            found[day] = (opens, closes)
    return found


def _frame_times(
    opening: dict[date, tuple[datetime, datetime]], zone: ZoneInfo
) -> tuple[time, time | None]:
    """The week's earliest opening (down to the half hour) and latest closing (up to it), as
    wall-clock times, so every column has the same rows."""
    earliest = min(opens.astimezone(zone).time() for opens, _ in opening.values())
    latest = max(closes.astimezone(zone).time() for _, closes in opening.values())
    minutes = earliest.hour * 60 + earliest.minute
    earliest = time(*divmod(minutes - minutes % SLOT_MINUTES, 60))
    minutes = latest.hour * 60 + latest.minute
    if minutes % SLOT_MINUTES:
        minutes += SLOT_MINUTES - minutes % SLOT_MINUTES
    latest = None if minutes >= 24 * 60 else time(*divmod(minutes, 60))  # None: midnight
    return earliest, latest


def _frame(
    day: date, earliest: time, latest: time | None, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    end_day, end_time = (day, latest) if latest is not None else (day + timedelta(days=1), time(0))
    return (
        datetime.combine(day, earliest, tzinfo=zone),
        datetime.combine(end_day, end_time, tzinfo=zone),
    )


def _columns(user, space: Space, monday: date, today: date) -> dict:
    location = space.location
    zone = location.zone
    days = [monday + timedelta(days=n) for n in range(7)]
    opening = _opening(space, days)
    if not opening:
        return {"closed": f"{location.name} does not open in the week of {monday:%d %b %Y}."}
    earliest, latest = _frame_times(opening, zone)
    frames = {day: _frame(day, earliest, latest, zone) for day in days}
    week_start, week_end = frames[days[0]][0], frames[days[-1]][1]
    bookings = list(
        queries.slot_holding()
        .filter(
            queries.overlapping(week_start - space.setup, week_end + space.cleanup),
            space_id=space.pk,
        )
        .select_related("requested_for")
        .order_by("start")
    )
    for reservation in bookings:
        reservation.space = space  # what policies look up about the space, fetched once
    found = closures.periods_on(location, week_start, week_end, [space.pk])
    closed = [*found.get(None, []), *found.get(space.pk, [])]
    approval_rule = approvals.rules_for([space]).get(space.pk)
    manage_all = rules.can_manage_all(user)
    # The sync settings once, not once per synced booking the person may change (the others
    # the ownership rule refuses before any policy looks anything up).
    rules.preload(r for r in bookings if manage_all or rules.is_own(user, r))
    now = timezone.now()
    columns = []
    for day in days:
        start, end = frames[day]
        row = space_row(
            user,
            space,
            [
                r
                for r in bookings
                if r.buffered_start < end + space.cleanup and r.buffered_end > start - space.setup
            ],
            [p for p in closed if p.start < end and p.end > start],
            frame=(start, end),
            hours=opening.get(day),
            now=now,
            manage_all=manage_all,
            approval_rule=approval_rule,
        )
        total = (end - start).total_seconds()
        columns.append(
            DayColumn(
                day=day,
                row=row,
                note="" if day in opening else f"{location.name} is closed on {day:%A}s.",
                is_today=day == today,
                now_at=(now - start).total_seconds() / total * 100 if start <= now < end else None,
            )
        )
    first, last = frames[days[0]]
    labels = []
    mark = first
    while mark < last:
        labels.append(f"{mark:%H:%M}")
        mark += STEP
    return {
        "columns": columns,
        "labels": labels,
        "approval": columns[0].row.approval,
    }
