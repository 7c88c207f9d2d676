"""What a room display shows (``state``): free or busy now, the current and next bookings as
the public nickname or "Reserved" (never a title or a name), the *Book now* lengths that fit,
the extensions that fit, check-in; and ``etag``, the fingerprint its 5-second poll is answered
304 with while nothing changed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max
from django.utils import timezone

from .. import approvals, checkin, closures, queries, services
from ..models import SLOT_HOLDING_STATUSES, Display, Reservation, ReservationStatus, Space

RESERVED = "Reserved"
BOOK_MINUTES = (15, 30, 60)
EXTEND_MINUTES = (15, 30)


def approval_refusal(rule) -> str:
    """Why the display does not book a room whose bookings need approval."""
    return f"{approvals.notice(rule)}: book this room in the portal."


@dataclass(frozen=True)
class Shown:
    """A booking as the display shows it: no title, no person."""

    pk: int
    label: str
    start: datetime  # in the location's zone
    end: datetime
    pending: bool
    checked_in: bool
    can_check_in: bool


@dataclass
class State:
    display: Display
    now: datetime  # in the location's zone
    open_now: bool
    closed_reason: str = ""
    current: Shown | None = None
    next: Shown | None = None
    later: list[Shown] = field(default_factory=list)
    needs_approval: str = ""  # why Book now is not offered: the room's bookings need approval
    book: list[tuple[int, datetime]] = field(default_factory=list)  # (minutes, until)
    extend: list[tuple[int, datetime]] = field(default_factory=list)
    opens_next: datetime | None = None

    @property
    def space(self) -> Space:
        return self.display.space

    @property
    def busy(self) -> bool:
        return self.current is not None

    @property
    def free_until(self) -> datetime | None:
        return self.next.start if self.next else None


def _local_day(space: Space, now: datetime) -> tuple[datetime, datetime]:
    zone = space.location.zone
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _today(space: Space, now: datetime):
    _day_start, day_end = _local_day(space, now)
    return (
        Reservation.objects.filter(
            space=space, status__in=SLOT_HOLDING_STATUSES, end__gt=now, start__lt=day_end
        )
        .select_related("space__location")
        .order_by("start", "pk")
    )


def _shown(reservation: Reservation, now: datetime) -> Shown:
    zone = reservation.space.location.zone
    return Shown(
        pk=reservation.pk,
        label=reservation.public_nickname or RESERVED,
        start=reservation.start.astimezone(zone),
        end=reservation.end.astimezone(zone),
        pending=reservation.status == ReservationStatus.PENDING,
        checked_in=reservation.checked_in_at is not None,
        can_check_in=checkin.can_check_in_now(reservation, now),
    )


def _fits(space: Space, start: datetime, end: datetime, now: datetime, exclude=()) -> bool:
    """Whether the service would accept [start, end) (opening hours, maximum length, closures,
    other bookings and buffers); the service checks again when the button is pressed."""
    if services.slot_problem(space, start, end, now=min(now, start)):
        return False
    if services.closure_problem(space, start, end):
        return False
    return not queries.clashes(
        space.pk, start, end, exclude, setup=space.setup, cleanup=space.cleanup
    )


def open_at(space: Space, now: datetime) -> tuple[bool, str]:
    """Whether the location is open at ``now`` (opening hours, no closure), and the closure's
    reason when one applies."""
    location = space.location
    local = now.astimezone(location.zone)
    hours = next((h for h in location.opening_hours.all() if h.weekday == local.weekday()), None)
    if hours is None or not (hours.opens <= local.time() < hours.closes):
        return False, ""
    period = next(iter(closures.periods_for(space, now, now + timedelta(seconds=1))), None)
    if period is not None:
        return False, closures.notice(period, space)
    return True, ""


def _next_opening(space: Space, now: datetime) -> datetime | None:
    location = space.location
    hours = {h.weekday: h for h in location.opening_hours.all()}
    local = now.astimezone(location.zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        row = hours.get(day.weekday())
        if row is None:
            continue
        opens = datetime.combine(day, row.opens, tzinfo=location.zone)
        if opens > now:
            return opens
    return None


def state(display: Display, *, now: datetime | None = None) -> State:
    now = now or timezone.now()
    space = display.space
    zone = space.location.zone
    open_now, closed_reason = open_at(space, now)
    found = State(display, now.astimezone(zone), open_now, closed_reason)
    rows = list(_today(space, now))
    current = next((r for r in rows if r.start <= now < r.end), None)
    upcoming = [r for r in rows if r.start > now]
    if current is not None:
        found.current = _shown(current, now)
    if upcoming:
        found.next = _shown(upcoming[0], now)
        found.later = [_shown(r, now) for r in upcoming[1:4]]
    if not open_now:
        found.opens_next = _next_opening(space, now)
        if found.opens_next is not None:
            found.opens_next = found.opens_next.astimezone(zone)
        return found
    start = now.replace(second=0, microsecond=0)
    rule = approvals.needs_approval(space, display.user) if current is None else None
    if rule is not None:
        found.needs_approval = approval_refusal(rule)
    elif current is None:
        found.book = [
            (minutes, (start + timedelta(minutes=minutes)).astimezone(zone))
            for minutes in BOOK_MINUTES
            if _fits(space, start, start + timedelta(minutes=minutes), now)
        ]
    else:
        found.extend = [
            (minutes, (current.end + timedelta(minutes=minutes)).astimezone(zone))
            for minutes in EXTEND_MINUTES
            if _fits(
                space, current.start, current.end + timedelta(minutes=minutes), now, [current.pk]
            )
        ]
    return found


def etag(display: Display, *, now: datetime | None = None) -> str:
    """A fingerprint of everything the page shows: the space's bookings of today (count,
    latest change, highest id), the minute (times move on), the display's own state and the
    space's name. One aggregate query; equal tags mean the page would be the same."""
    now = now or timezone.now()
    space = display.space
    day_start, day_end = _local_day(space, now)
    summary = Reservation.objects.filter(
        space=space, end__gt=day_start, start__lt=day_end
    ).aggregate(n=Count("id"), last=Max("updated"), top=Max("id"))
    minute = now.replace(second=0, microsecond=0).isoformat()
    raw = (
        f"{display.pk}|{display.revoked_at}|{space.name}|{summary['n']}|{summary['last']}|"
        f"{summary['top']}|{minute}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
