"""The schedule view (event planner): one location and day, spaces down, hours across.

Bookings are blocks placed by percentage of the opening hours, in the location's zone. Free
half hours are links to the booking form (source "event planner"). A booking the viewer cannot
change is greyed out and carries the reason from ``rules.check`` - the text the service gives
when it refuses - shown on hover and on keyboard focus. A closure (``reservations.closures``)
of the whole location for the opening hours replaces the grid by its reason; a shorter one,
or one of a single space, is a greyed "Closed" block with the same words the service refuses
a booking with.

A space's setup and cleanup buffers (``reservations.buffers``) are drawn as hatched edges
before and after each booking, and a half hour is offered only when a booking there would
leave them free.

The grid shows one page of a location's spaces at a time (``space_page``): one floor
(``?floor=3``) or all floors, at most ``SCHEDULE_PAGE_SIZE`` spaces (50) a page
(``?page=2``), ordered by floor (2 before 10) and name, with previous/next links - as Robin
or LibCal show a floor's schedule rather than a whole campus. The work and the markup of a
page stay bounded however many spaces a location holds.

``space_row`` builds one space's line (blocks, buffers, closures, bookable half hours) for a
frame of time; the week view of one space (``views.week``) draws its seven days with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from .. import approvals, closures, opening, queries, rules
from ..models import ApprovalRule, Location, OpeningHours, Reservation, Source, Space
from ..recurrence import localize
from .booking import PLANNER
from .common import SLOT_MINUTES, default_location, is_htmx, parse_day

DEFAULT_BOOKING_MINUTES = 60


@dataclass
class Edge:
    """A setup or cleanup buffer next to a booking, placed like a block."""

    left: float
    width: float
    minutes: int


@dataclass
class Block:
    reservation: Reservation
    left: float
    width: float
    label: str
    can_open: bool
    can_change: bool
    reason: str
    setup: Edge | None = None
    cleanup: Edge | None = None
    times: str = ""  # "09:00", an en dash, "10:30": in the location's zone, as shown


@dataclass
class ClosedBlock:
    start: datetime
    end: datetime
    left: float
    width: float
    reason: str
    times: str = ""  # the same, clipped to the frame


@dataclass
class Slot:
    start: datetime
    end: datetime  # the suggested end when booking from here
    free: bool
    past: bool
    shut: bool = False  # outside the day's opening hours (the week view's longer days)
    # What starts in this half hour: the day grid draws it inside the slot's grid cell, so
    # that the keyboard reaches a booking where it begins (WAI-ARIA grid pattern).
    space: Space | None = None
    blocks: list[Block] = field(default_factory=list)
    closed: list[ClosedBlock] = field(default_factory=list)

    @property
    def bookable(self) -> bool:
        return self.free and not self.past


@dataclass
class Row:
    space: Space
    blocks: list[Block] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    closed: list[ClosedBlock] = field(default_factory=list)
    approval: str = ""  # "Needs approval by Facilities" (``reservations.approvals``)


@dataclass(frozen=True)
class SpacePage:
    """Which of a location's spaces one schedule page shows, and how to reach the others."""

    floors: list[str]  # the location's floors, for the picker (natural order: 2 before 10)
    floor: str  # the one shown; "" for all floors
    number: int  # 1-based
    count: int  # pages
    total: int  # spaces on the floor (or at the location)
    space_ids: list[int]
    size: int  # spaces a page

    @property
    def first(self) -> int:
        return (self.number - 1) * self.size + 1 if self.space_ids else 0

    @property
    def last(self) -> int:
        return self.first + len(self.space_ids) - 1 if self.space_ids else 0


def floor_order(floor: str) -> tuple:
    """Numbered floors by number (-1, 0, 2, 10), then named ones by name, then no floor."""
    if floor.removeprefix("-").isdigit():
        return (0, int(floor), "")
    return (1, 0, floor.casefold()) if floor else (2, 0, "")


def space_page(location: Location, floor: str | None, page: str | None) -> SpacePage:
    """The page ``page`` (1 when missing or malformed, the last when past it) of the bookable
    spaces on ``floor`` ("" or a floor the location does not have: all floors). One query of
    ids and floors; the grid then loads only the page's spaces."""
    listed = sorted(
        queries.bookable_spaces().filter(location=location).values_list("pk", "floor", "name"),
        key=lambda space: (floor_order(space[1]), space[2].casefold(), space[0]),
    )
    floors = sorted({f for _, f, _ in listed if f}, key=floor_order)
    floor = floor if floor in floors else ""
    ids = [pk for pk, f, _ in listed if not floor or f == floor]
    size = max(1, settings.SCHEDULE_PAGE_SIZE)
    count = max(1, -(-len(ids) // size))
    number = int(page) if page and page.isdigit() else 1
    number = min(max(number, 1), count)
    shown = ids[(number - 1) * size : number * size]
    return SpacePage(floors, floor, number, count, len(ids), shown, size)


def schedule_query(location: Location, day: date, floor: str = "", page: int = 1) -> str:
    """The query string of a schedule page (without the floor and page when they are the
    defaults, so the links of a location with one page stay as they were)."""
    params = {"location": location.pk, "date": day.isoformat()}
    if floor:
        params["floor"] = floor
    if page > 1:
        params["page"] = page
    return urlencode(params)


@login_required
def schedule(request: HttpRequest) -> HttpResponse:
    # The picker lists every location, and the page's is among them: one query, not one for
    # it and one for the list.
    locations = list(Location.objects.all())
    location = default_location(request.user, request.GET.get("location"), among=locations)
    if location is None:
        return render(request, "reservations/schedule.html", {"no_locations": True})
    zone = location.zone
    now = timezone.now()
    today = now.astimezone(zone).date()
    day = parse_day(request.GET.get("date"), today)
    notice = ""
    if not request.GET.get("date"):
        # Opened without a date while the location is closed for the rest of today: show the
        # next day it opens rather than an empty grid.
        opens = opening.next_opening(location, now)
        if opens is not None and opens.date() != today:
            day = opens.date()
            notice = (
                f"{location.name} is not open again today; it "
                f"{opening.opens_phrase(location, opens, now)}, shown here."
            )
    spaces = space_page(location, request.GET.get("floor"), request.GET.get("page"))
    floor, number = spaces.floor, spaces.number
    context = {
        "notice": notice,
        "location": location,
        "locations": locations,
        "day": day,
        "today": today,
        "spaces_page": spaces,
        # The day links keep the floor and the page; the page links keep the day and floor.
        "previous_day_query": schedule_query(location, day - timedelta(days=1), floor, number),
        "next_day_query": schedule_query(location, day + timedelta(days=1), floor, number),
        "today_query": schedule_query(location, today, floor, number),
        "previous_page_query": schedule_query(location, day, floor, number - 1),
        "next_page_query": schedule_query(location, day, floor, number + 1),
        "planner": PLANNER,
    }
    context.update(_grid(request.user, location, day, spaces.space_ids))
    template = (
        "reservations/_schedule_grid.html" if is_htmx(request) else "reservations/schedule.html"
    )
    return render(request, template, context)


def _grid(user, location: Location, day: date, space_ids: list[int]) -> dict:
    hours = OpeningHours.objects.filter(location=location, weekday=day.weekday()).first()
    if hours is None:
        return {"closed": f"{location.name} is closed on {day:%A}s."}
    zone = location.zone
    opens, closes = localize(day, hours.opens, zone), localize(day, hours.closes, zone)
    if opens is None or closes is None or closes <= opens:
        return {"closed": f"{location.name} has no bookable hours on {day:%d %b %Y}."}
    total = (closes - opens).total_seconds()
    order = {pk: index for index, pk in enumerate(space_ids)}
    spaces = sorted(
        Space.objects.filter(pk__in=space_ids).select_related("location"),
        key=lambda space: order[space.pk],
    )
    closed = closures.periods_on(location, opens, closes, [space.pk for space in spaces])
    for period in closed.get(None, []):
        if period.start <= opens and period.end >= closes:
            return {"closed": period.describe(location.name, zone)}
    # Wide enough for the buffers: a half hour before closing is not free when its cleanup
    # would meet a booking that starts after closing.
    widest_setup = max((s.setup for s in spaces), default=timedelta())
    widest_cleanup = max((s.cleanup for s in spaces), default=timedelta())
    bookings = (
        queries.slot_holding()
        .filter(
            queries.overlapping(opens - widest_setup, closes + widest_cleanup), space__in=spaces
        )
        .select_related("requested_for")
        .order_by("start")
    )
    manage_all = rules.can_manage_all(user)
    by_space: dict[int, list[Reservation]] = {}
    space_by_id = {space.pk: space for space in spaces}
    for reservation in bookings:
        # One shared Space instance per row, so what policies look up about a space (its
        # calendar binding) is fetched once per space, not once per booking.
        reservation.space = space_by_id[reservation.space_id]
        by_space.setdefault(reservation.space_id, []).append(reservation)
    # What the policies look up (the spaces' bindings, the sync settings) for the bookings the
    # person may change, at once: not one query per space and one per synced booking. For the
    # others the ownership rule refuses before any policy looks anything up.
    rules.preload(
        r for found in by_space.values() for r in found if manage_all or rules.is_own(user, r)
    )

    now = timezone.now()
    approval_rules = approvals.rules_for(spaces)
    rows = [
        space_row(
            user,
            space,
            by_space.get(space.pk, []),
            [*closed.get(None, []), *closed.get(space.pk, [])],
            frame=(opens, closes),
            hours=(opens, closes),
            now=now,
            manage_all=manage_all,
            approval_rule=approval_rules.get(space.pk),
        )
        for space in spaces
    ]
    hour_marks = []
    mark = opens.replace(minute=0) + (timedelta(hours=1) if opens.minute else timedelta())
    while mark < closes:
        hour_marks.append(
            {"label": f"{mark:%H:%M}", "left": (mark - opens).total_seconds() / total * 100}
        )
        mark += timedelta(hours=1)
    now_left = (now - opens).total_seconds() / total * 100 if opens <= now < closes else None
    return {
        "rows": rows,
        "has_buffers": any(s.setup_minutes or s.cleanup_minutes for s in spaces),
        "opens": opens,
        "closes": closes,
        "hour_marks": hour_marks,
        "slot_count": len(rows[0].slots) if rows else 0,
        "now_left": now_left,
    }


def space_row(
    user,
    space: Space,
    taken: list[Reservation],
    closed: list[closures.ClosedPeriod],
    *,
    frame: tuple[datetime, datetime],
    hours: tuple[datetime, datetime] | None,
    now: datetime,
    manage_all: bool,
    approval_rule: ApprovalRule | None,
) -> Row:
    """One space's bookings, buffers, closed periods and half hours, placed as percentages
    of ``frame``; only half hours within ``hours`` (None: closed all day) may be free. The
    day grid draws its opening hours (``frame == hours``); the week view draws every day on
    the week's widest hours, so that its rows line up.

    ``taken``: the space's slot-holding bookings whose buffered range reaches into the
    frame; ``closed``: the closed periods of the space and its location that overlap it."""
    placer = _Placer(frame, space.location.zone)
    row = Row(space)
    if approval_rule is not None and not approvals.is_approver(user, approval_rule):
        row.approval = approvals.notice(approval_rule)
    row.blocks = _blocks(user, taken, placer, now=now, manage_all=manage_all)
    row.closed = _closed_blocks(space, closed, placer)
    row.slots = _slots(frame, hours, taken, now, space, row.closed)
    _place_in_slots(row)
    return row


class _Placer:
    """Places ranges of time on one row's frame, as percentages of it, and writes them in
    the location's zone. Built once per row: the per-block work stays a few arithmetic
    operations."""

    __slots__ = ("end_of", "start_of", "total", "zone")

    def __init__(self, frame: tuple[datetime, datetime], zone: tzinfo) -> None:
        self.start_of, self.end_of = frame
        self.total = (self.end_of - self.start_of).total_seconds()
        self.zone = zone

    def place(self, start: datetime, end: datetime) -> tuple[float, float] | None:
        """[start, end) clipped to the frame, as (offset, length) percentages of it."""
        start_of = self.start_of
        start, end = max(start, start_of), min(end, self.end_of)
        if end <= start:
            return None
        return (
            (start - start_of).total_seconds() / self.total * 100,
            (end - start).total_seconds() / self.total * 100,
        )

    def edge(self, start: datetime, end: datetime) -> Edge | None:
        placed = self.place(start, end)
        if placed is None:
            return None
        minutes = round((min(end, self.end_of) - max(start, self.start_of)).total_seconds() / 60)
        return Edge(placed[0], placed[1], minutes)

    def times(self, start: datetime, end: datetime) -> str:
        zone = self.zone
        return f"{start.astimezone(zone):%H:%M}\u2013{end.astimezone(zone):%H:%M}"


def _blocks(
    user, taken: list[Reservation], placer: _Placer, *, now: datetime, manage_all: bool
) -> list[Block]:
    """The row's bookings that reach into the frame, with what ``user`` may do with them."""
    blocks = []
    for reservation in taken:
        placed = placer.place(reservation.start, reservation.end)
        if placed is None:
            continue  # outside the frame; only its buffer reaches into it
        decision = rules.check(rules.Action.CHANGE, user, reservation, Source.PORTAL)
        own = rules.is_own(user, reservation)
        can_open = own or manage_all
        blocks.append(
            Block(
                reservation=reservation,
                left=placed[0],
                width=placed[1],
                label=_label(reservation, can_open),
                can_open=can_open,
                can_change=bool(decision) and reservation.end > now,
                reason=decision.reason
                or ("This booking is over." if reservation.end <= now else ""),
                setup=placer.edge(reservation.buffered_start, reservation.start),
                cleanup=placer.edge(reservation.end, reservation.buffered_end),
                times=placer.times(reservation.start, reservation.end),
            )
        )
    return blocks


def _closed_blocks(
    space: Space, closed: list[closures.ClosedPeriod], placer: _Placer
) -> list[ClosedBlock]:
    """The closed periods that reach into the frame, clipped to it."""
    blocks = []
    for period in closed:
        placed = placer.place(period.start, period.end)
        if placed is None:
            continue
        start, end = max(period.start, placer.start_of), min(period.end, placer.end_of)
        blocks.append(
            ClosedBlock(
                start=start,
                end=end,
                left=placed[0],
                width=placed[1],
                reason=closures.notice(period, space),
                times=placer.times(start, end),
            )
        )
    return blocks


def _place_in_slots(row: Row) -> None:
    """Give each block and closed period to the half hour it starts in (clipped to the
    frame: a booking from before opening starts in the first one)."""
    for slot in row.slots:
        slot.space = row.space
    if not row.slots:
        return
    first = row.slots[0].start
    step = timedelta(minutes=SLOT_MINUTES)

    def slot_of(moment: datetime) -> Slot:
        index = max(0, int((moment - first) / step))
        return row.slots[min(index, len(row.slots) - 1)]

    for block in row.blocks:
        slot_of(block.reservation.start).blocks.append(block)
    for gap in row.closed:
        slot_of(gap.start).closed.append(gap)


def _label(reservation: Reservation, can_open: bool) -> str:
    if can_open:
        return reservation.title or (
            reservation.requested_for.get_full_name() if reservation.requested_for else "Booked"
        )
    return reservation.public_nickname or "Booked"


def _slots(
    frame: tuple[datetime, datetime],
    hours: tuple[datetime, datetime] | None,
    taken: list[Reservation],
    now: datetime,
    space: Space,
    closed: list[ClosedBlock],
) -> list[Slot]:
    """The frame's half hours, free when they lie within the opening ``hours``, a booking of
    them leaves every buffer free (its own setup and cleanup and the other bookings':
    ``buffered_start``/``buffered_end``) and meets none of the row's closed periods (which
    rule out the booked times themselves)."""
    slots = []
    start, frame_end = frame
    opens, closes = hours if hours is not None else (frame_end, frame_end)
    step = timedelta(minutes=SLOT_MINUTES)
    length = timedelta(minutes=DEFAULT_BOOKING_MINUTES)
    setup, cleanup = space.setup, space.cleanup
    # What a half hour [start, end) may not meet, worked out once per row rather than once per
    # half hour (a location's day grid has thousands): a booking's buffered range widened by
    # this space's own cleanup before it and setup after it, and the closed periods.
    # The bookings' ranges in UTC, and each half hour's bounds turned into UTC once: comparing
    # datetimes of two zones asks the location's zone for its offset every time (most of this
    # loop's cost), while two UTC ones compare as plain numbers - the same instants. Closed
    # periods are compared as they are (in the location's zone, so on the wall clock).
    booked = [
        ((r.buffered_start - cleanup).astimezone(UTC), (r.buffered_end + setup).astimezone(UTC))
        for r in taken
    ]
    shut_periods = [(c.start, c.end) for c in closed]
    # Where a suggested booking must stop: the next booking's buffers, or a closure.
    stops = [r.buffered_start - cleanup for r in taken] + [c.start for c in closed]
    now_utc, start_utc = now.astimezone(UTC), start.astimezone(UTC)
    while start < frame_end:
        end = min(start + step, frame_end)
        end_utc = end.astimezone(UTC)
        shut = start < opens or end > closes
        free = (
            not shut
            and not any(first < end_utc and last > start_utc for first, last in booked)
            and not any(first < end and last > start for first, last in shut_periods)
        )
        suggested = min(start + length, closes)
        for latest in stops:
            if start < latest < suggested:
                suggested = latest
        slots.append(Slot(start, suggested if free else end, free, end_utc <= now_utc, shut))
        start, start_utc = end, end_utc
    return slots
