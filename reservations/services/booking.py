"""Booking: ``book`` for a person (portal, admin, API, display), ``book_from_calendar`` for an
event found in a remote calendar (sync), both through the same checks and lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import approvals, limits, rules, signals
from ..models import (
    REMOTE_SOURCES,
    Approval,
    Reservation,
    ReservationKind,
    ReservationStatus,
    Series,
    Source,
    Space,
    SyncMailbox,
)
from ..recurrence import Recurrence, RecurrenceError, expand
from .errors import BookingError, BookingResult, Clash, Conflict, TooSoon, Unavailable
from .validation import (
    _check_limits,
    _check_rules,
    _check_space,
    _check_times,
    _clashes_for,
    _closure_checker,
    _conflict,
    slot_problem,
)
from .writes import _lock_space, _save, _send_after_commit

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def book(
    *,
    actor: AbstractBaseUser | None,
    space: Space,
    start: datetime,
    end: datetime,
    requested_for: AbstractBaseUser | None = None,
    title: str = "",
    public_nickname: str = "",
    description: str = "",
    kind: str = ReservationKind.STANDARD,
    attendees: Sequence[str] = (),
    source: str = Source.PORTAL,
    recurrence: Recurrence | None = None,
    skip_unavailable: bool = False,
    now: datetime | None = None,
) -> BookingResult:
    """Book a space once, or as a series. Raises BookingError, NotAllowed or Conflict.

    ``actor`` is None only for reservations that come from a remote calendar (sync); then the
    policies and the opening-hours/horizon rules do not apply, only "no overlap". Sync itself
    books through ``book_from_calendar``, which also takes the organizer's details.

    The booking is confirmed, except when the placement puts the event in the requested-for
    user's own calendar (sync mailbox ``user``, personal mode): the room is then invited and
    its answer, which comes later, confirms or cancels the booking (``confirm``, ``cancel``),
    so the booking starts ``pending`` (it holds the slot meanwhile). A space that needs
    approval (``reservations.approvals``) also makes it ``pending``, with ``approval``
    awaiting, unless the person (``actor``, or ``requested_for`` for a pull) is an approver.
    """
    if requested_for is None and actor is not None:
        requested_for = actor
    prototype = Reservation(
        space=space, requested_for=requested_for, booked_by=actor, start=start, end=end,
        title=title, public_nickname=public_nickname, description=description, kind=kind,
        attendees=[a.strip() for a in attendees if a.strip()], source=source,
    )  # fmt: skip
    return _book(prototype, actor, recurrence, skip_unavailable, None, now or timezone.now())


def book_from_calendar(
    *,
    space: Space,
    start: datetime,
    end: datetime,
    source: str,
    requested_for: AbstractBaseUser | None = None,
    title: str = "",
    public_nickname: str = "",
    description: str = "",
    organizer_name: str = "",
    organizer_email: str = "",
    status: str | None = None,
    now: datetime | None = None,
) -> BookingResult:
    """Book a space for an event found in a remote calendar (a pull, the daily reconciliation,
    the demo's history): nobody in Reserva acts, so the policies and the opening-hours/horizon
    rules do not apply, only "no overlap" and the organizer's limits (``requested_for``, the
    Reserva user whose email is the organizer's, if any). The organizer's name and email are
    kept when the location keeps them. ``status`` overrides the status ``book`` would choose.
    """
    prototype = Reservation(
        space=space, requested_for=requested_for, booked_by=None, start=start, end=end,
        title=title, public_nickname=public_nickname, description=description,
        kind=ReservationKind.STANDARD, attendees=[], source=source,
        organizer_name=organizer_name, organizer_email=organizer_email,
    )  # fmt: skip
    return _book(prototype, None, None, False, status, now or timezone.now())


def _book(
    prototype: Reservation,
    actor: AbstractBaseUser | None,
    recurrence: Recurrence | None,
    skip_unavailable: bool,
    status: str | None,
    now: datetime,
) -> BookingResult:
    """The booking both entry points share: status, rules, then the slots checked and saved
    under the space's lock."""
    space, source, requested_for = prototype.space, prototype.source, prototype.requested_for
    _check_times(prototype.start, prototype.end)
    prototype.status = status or ReservationStatus.CONFIRMED
    prototype.sync_mailbox = rules.sync_mailbox_for(prototype, source)
    if status is None:
        awaits_room = prototype.sync_mailbox == SyncMailbox.USER
        prototype.status = ReservationStatus.PENDING if awaits_room else ReservationStatus.CONFIRMED
        if approvals.needs_approval(space, actor or requested_for):
            # Held, pending, until an approver decides (``approve`` / ``decline``).
            prototype.status = ReservationStatus.PENDING
            prototype.approval = Approval.AWAITING
    _check_rules(rules.Action.CREATE, actor, prototype, source)
    _check_space(space, prototype.kind, prototype.attendees)
    # The person's limits (counts for every source; notice and window for Reserva's own).
    person_limits = limits.for_person(requested_for, space.location)
    slots, unavailable = _slots(prototype, recurrence, person_limits, now)
    try:
        with transaction.atomic():
            _lock_space(space)
            bookable, clashes = _bookable(space, slots, unavailable)
            if unavailable and (recurrence is None or not skip_unavailable or not bookable):
                raise _conflict(clashes, unavailable, bookable, series=recurrence is not None)
            # A series over a limit is refused whole (skip_unavailable or not): which dates
            # to give up is the person's choice, not ours.
            _check_limits(person_limits, requested_for, space, bookable, now=now)
            created = _create(prototype, actor, recurrence, bookable)
    except IntegrityError as exc:
        # PostgreSQL's exclusion constraint caught an overlap the check could not see.
        raise Conflict("That slot was taken a moment ago; please choose another time.") from exc
    _send_after_commit(signals.reservation_created, created, actor, source)
    return BookingResult(created, unavailable)


Slot = tuple[datetime, datetime]


def _slots(
    prototype: Reservation,
    recurrence: Recurrence | None,
    person_limits: limits.PersonLimits,
    now: datetime,
) -> tuple[list[Slot], list[Unavailable]]:
    """The slots asked for (one, or a series' dates), and the dates refused before any lock:
    opening hours, horizon and notice for Reserva's own bookings, clock changes."""
    space, start, end = prototype.space, prototype.start, prototype.end
    check_policy = prototype.source not in REMOTE_SOURCES
    use_horizon = person_limits.window is None
    if recurrence is None:
        problem = slot_problem(
            space, start, end, now=now, check_policy=check_policy, horizon=use_horizon
        )
        if problem:
            raise BookingError(problem, field="start")
        early = check_policy and limits.too_soon(person_limits, start, now=now)
        if early:
            raise TooSoon(early, field="start")
        return [(start, end)], []
    try:
        expansion = expand(start, end, recurrence, space.location.zone)
    except RecurrenceError as exc:
        raise BookingError(str(exc), field="recurrence") from exc
    slots = []
    unavailable = [
        Unavailable(None, day, "That time does not exist on this date (clocks change).")
        for day in expansion.nonexistent
    ]
    for slot_start, slot_end in expansion.slots:
        problem = slot_problem(
            space,
            slot_start,
            slot_end,
            now=now,
            check_policy=check_policy,
            horizon=use_horizon,
        ) or (check_policy and limits.too_soon(person_limits, slot_start, now=now))
        if problem:
            day = slot_start.astimezone(space.location.zone).date()
            unavailable.append(Unavailable(slot_start, day, problem))
        else:
            slots.append((slot_start, slot_end))
    return slots, unavailable


def _bookable(
    space: Space, slots: list[Slot], unavailable: list[Unavailable]
) -> tuple[list[Slot], list[Clash]]:
    """Under the space's lock: the slots free of closures and clashes; the others are added
    to ``unavailable`` (sorted by day), with the clashes found."""
    bookable: list[Slot] = []
    clashes: list[Clash] = []
    closed_for = _closure_checker(space, slots)
    for slot_start, slot_end in slots:
        closed = closed_for(slot_start, slot_end)
        if closed:
            day = slot_start.astimezone(space.location.zone).date()
            unavailable.append(Unavailable(slot_start, day, closed, closed=True))
            continue
        found = _clashes_for(space, slot_start, slot_end)
        if found:
            clashes.extend(found)
            day = slot_start.astimezone(space.location.zone).date()
            unavailable.append(Unavailable(slot_start, day, found[0].describe()))
        else:
            bookable.append((slot_start, slot_end))
    unavailable.sort(key=lambda u: u.day)
    return bookable, clashes


def _create(
    prototype: Reservation,
    actor: AbstractBaseUser | None,
    recurrence: Recurrence | None,
    bookable: list[Slot],
) -> list[Reservation]:
    """One row per bookable slot, copied from the prototype (and their series, if any)."""
    series = None
    if recurrence is not None:
        series = Series.objects.create(
            frequency=recurrence.frequency,
            interval=recurrence.interval,
            weekdays=list(recurrence.weekdays),
            until=recurrence.until,
            count=recurrence.count,
        )
    created = []
    for slot_start, slot_end in bookable:
        reservation = Reservation(
            **{
                f.attname: getattr(prototype, f.attname)
                for f in Reservation._meta.concrete_fields
                if f.attname not in ("id", "start", "end", "series_id")
            }
        )
        reservation.start, reservation.end, reservation.series = slot_start, slot_end, series
        _save(reservation, actor, prototype.source)
        created.append(reservation)
    return created
