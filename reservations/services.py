"""Every write to a reservation: book, change (reschedule and edit), cancel, deactivate a user.

Portal, admin, REST API and sync all come through here, so the rules hold for every entry
point: validation, the policies in ``reservations.rules``, the person's limits
(``reservations.limits``: ``LimitExceeded``, ``TooSoon``), and "no two slot-holding
reservations of one space overlap", compared by their buffered ranges (the space's setup and
cleanup minutes around the booked times, ``reservations.buffers``). That last guarantee comes
from the transaction: the space row is locked (PostgreSQL, where an exclusion constraint also
backs it) or SQLite's write lock is taken when the transaction begins
(``transaction_mode=IMMEDIATE`` in settings), so the check and the insert cannot interleave
with another booking.

Signals (``reservations.signals``) are sent only after the transaction commits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import (
    approvals,
    buffers,
    checkin,
    closures,
    limits,
    queries,
    rules,
    signals,
    timebounds,
)
from .models import (
    ENDED_STATUSES,
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    Approval,
    NoShowAction,
    Reservation,
    ReservationKind,
    ReservationStatus,
    Series,
    Source,
    Space,
    SpaceKind,
    SyncMailbox,
    UserDeactivation,
)
from .recurrence import Recurrence, RecurrenceError, expand, localize

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# A booking may start this long before "now" (the form was opened a minute ago).
PAST_GRACE = timedelta(minutes=5)


class BookingError(Exception):
    """A booking request that cannot be carried out; ``message`` is meant for the user."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotAllowed(BookingError):
    code = "not_allowed"


class StaleReservation(BookingError):
    code = "stale"


class AlreadyDecided(BookingError):
    """An approval decision for a booking that is not (or no longer) awaiting one."""

    code = "already_decided"


class LimitExceeded(NotAllowed):
    """The booking would take its person over one of their limits (``reservations.limits``):
    active bookings, hours per week, an overlapping booking. The message names the limit and
    what the person already holds."""

    code = "limit_exceeded"


class TooSoon(NotAllowed):
    """The booking starts inside the person's minimum notice, or beyond their booking window
    (``reservations.limits``)."""

    code = "too_soon"


@dataclass(frozen=True)
class Clash:
    """A slot that is already taken (no private details: titles and names are left out)."""

    reservation_id: int
    space_name: str
    start: datetime
    end: datetime
    time_zone: str

    def describe(self) -> str:
        zone = ZoneInfo(self.time_zone)
        start, end = self.start.astimezone(zone), self.end.astimezone(zone)
        return (
            f"{self.space_name} is already booked from {start:%H:%M} to {end:%H:%M} "
            f"on {start:%a %d %b %Y} ({self.time_zone})."
        )


@dataclass(frozen=True)
class BufferClash(Clash):
    """A slot whose booked times are free but which leaves the space too little time to be
    cleaned up or set up next to another booking (``reservations.buffers``)."""

    reason: str = ""

    def describe(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Unavailable:
    """One occurrence of a series that cannot be booked, and why."""

    start: datetime | None
    day: date
    reason: str
    closed: bool = False  # refused because of a closure (``reservations.closures``)


class Conflict(BookingError):
    """The slot (or some occurrences of a series) is taken or cannot be booked.

    ``clashes`` names the taken slots; for a series, ``unavailable`` lists every date that
    cannot be booked and ``bookable`` the slots that could still be booked (call again with
    ``skip_unavailable=True`` to book those). ``next_free``: the same space's next free slots
    of the same length (``freetimes.next_free``), when the caller looked them up; None when
    it did not.
    """

    code = "conflict"

    def __init__(
        self,
        message: str,
        *,
        clashes: Sequence[Clash] = (),
        unavailable: Sequence[Unavailable] = (),
        bookable: Sequence[tuple[datetime, datetime]] = (),
    ) -> None:
        super().__init__(message, field="start")
        self.clashes = list(clashes)
        self.unavailable = list(unavailable)
        self.bookable = list(bookable)
        self.next_free: list[tuple[datetime, datetime]] | None = None


class Closed(Conflict):
    """The space or its whole location is closed (a ``Closure``) during the slot: the message
    is the closure's reason. For a series, raised only when every refused date is closed."""

    code = "closed"


# What keeps a booking that comes from a remote calendar as ``conflicted`` (holding no slot,
# with these words as the reason) instead of dropping it: its slot is taken or closed, or it
# takes its person over a limit. The sync engine (pull, reconciliation) catches exactly these.
KEPT_AS_CONFLICT: tuple[type[BookingError], ...] = (Conflict, LimitExceeded)


class CheckInClosed(BookingError):
    """Check-in is refused: outside the booking's window, or the booking was released or
    cancelled already (``reservations.checkin``)."""

    code = "check_in_closed"


class NeedsApproval(BookingError):
    """Refused because the booking is not confirmed yet: it is still awaiting approval
    (``reservations.approvals``) or, in personal mode, the room's answer."""

    code = "needs_approval"


class Scope(enum.StrEnum):
    THIS = "this"
    FOLLOWING = "following"


@dataclass
class BookingResult:
    reservations: list[Reservation] = field(default_factory=list)
    skipped: list[Unavailable] = field(default_factory=list)


# --- validation -----------------------------------------------------------------------------


def _check_space(space: Space, kind: str, attendees: Sequence[str]) -> None:
    if space.kind == SpaceKind.CONTAINER:
        raise BookingError(
            f"{space.name} is a container; book one of its seats instead.", field="space"
        )
    if not space.is_reservable:
        raise BookingError(f"{space.name} cannot be reserved.", field="space")
    if kind == ReservationKind.GROUP:
        if not space.allows_group:
            raise BookingError(f"{space.name} does not allow group reservations.", field="kind")
        if len(attendees) + 1 > space.capacity:
            raise BookingError(
                f"{space.name} holds {space.capacity} people; this group has "
                f"{len(attendees) + 1} (you and {len(attendees)} attendees).",
                field="attendees",
            )
    for email in attendees:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise BookingError(
                f"{email!r} is not a valid email address.", field="attendees"
            ) from exc


def _check_times(start: datetime, end: datetime) -> None:
    """Refuse, as a field error, times nothing after this can compute with (a zone conversion
    near year 1 or 9999 overflows: ``timebounds``) and an end that is not after the start."""
    for name, value in (("start", start), ("end", end)):
        if timezone.is_aware(value) and not timebounds.in_range(value):
            raise BookingError(timebounds.OUT_OF_RANGE, field=name)
    if timezone.is_aware(start) and timezone.is_aware(end) and end <= start:
        raise BookingError("The end must be after the start.", field="end")


def slot_problem(
    space: Space,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    check_policy: bool = True,
    horizon: bool = True,
) -> str | None:
    """Why [start, end) cannot be booked in this space (ignoring other bookings), or None.
    ``horizon=False``: the person has a booking window of their own (``limits.too_soon``)
    instead of the location's horizon."""
    if timezone.is_naive(start) or timezone.is_naive(end):
        return "Times must include a time zone."
    if end <= start:
        return "The end must be after the start."
    if not check_policy:
        return None
    location = space.location
    zone = location.zone
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if end - start > timedelta(minutes=location.max_booking_minutes):
        hours, minutes = divmod(location.max_booking_minutes, 60)
        return f"Bookings at {location.name} may last at most {hours}h{minutes:02d}."
    if start < now - PAST_GRACE:
        return "That time is in the past."
    if horizon and start > now + timedelta(days=location.booking_horizon_days):
        return (
            f"Bookings at {location.name} may be made at most "
            f"{location.booking_horizon_days} days ahead."
        )
    hours = {h.weekday: h for h in location.opening_hours.all()}
    day_hours = hours.get(local_start.weekday())
    if day_hours is None:
        return f"{location.name} is closed on {local_start:%A}s."
    if (
        local_end.date() != local_start.date()
        or local_start.time() < day_hours.opens
        or local_end.time() > day_hours.closes
    ):
        return (
            f"{location.name} is open {day_hours.opens:%H:%M}-{day_hours.closes:%H:%M} "
            f"on {local_start:%A}s ({location.time_zone})."
        )
    return None


def closure_problem(space: Space, start: datetime, end: datetime) -> str | None:
    """Why [start, end) is closed for this space (its own or its location's closure), or None.
    Applies to every source, remote ones included: a closed room is closed in Outlook too."""
    return _closure_checker(space, [(start, end)])(start, end)


def _closure_checker(
    space: Space, spans: Sequence[tuple[datetime, datetime]]
) -> Callable[[datetime, datetime], str | None]:
    """``closure_problem`` for many slots of one space (a series) with one read of the
    closures, rather than one query per occurrence."""
    if not spans:
        return lambda start, end: None
    found = closures.periods_for(space, min(s for s, _ in spans), max(e for _, e in spans))

    def problem(start: datetime, end: datetime) -> str | None:
        period = next((p for p in found if p.start < end and p.end > start), None)
        return closures.notice(period, space) if period else None

    return problem


def _clashes_for(
    space: Space, start: datetime, end: datetime, exclude_ids: Iterable[int] = ()
) -> list[Clash]:
    """The bookings a booking of [start, end) would collide with, buffers included."""
    found = queries.clashes(
        space.pk, start, end, exclude_ids, setup=space.setup, cleanup=space.cleanup
    )
    return [_clash(space, start, end, r) for r in found]


def _clash(space: Space, start: datetime, end: datetime, other: Reservation) -> Clash:
    zone_name = space.location.time_zone
    reason = buffers.explain(
        space.name,
        ZoneInfo(zone_name),
        start=start,
        end=end,
        setup=space.setup,
        cleanup=space.cleanup,
        other_start=other.start,
        other_end=other.end,
        other_buffered_start=other.buffered_start,
        other_buffered_end=other.buffered_end,
    )
    if reason is None:
        return Clash(other.pk, space.name, other.start, other.end, zone_name)
    return BufferClash(other.pk, space.name, other.start, other.end, zone_name, reason)


def _lock_space(space: Space) -> None:
    # Serializes bookings of one space on PostgreSQL; a no-op on SQLite, whose IMMEDIATE
    # transactions are already serialized.
    Space.objects.select_for_update().filter(pk=space.pk).first()


def _lock_space_of(reservation: Reservation) -> None:
    """Lock the reservation's space (where the row is now) before the reservation itself.
    Every write locks a space before its reservations, so two transactions writing bookings
    of one space (a portal change, and a pull applying several changes in one transaction)
    wait for each other instead of deadlocking."""
    Space.objects.select_for_update(of=("self",)).filter(reservations=reservation.pk).first()


def _lock_current(reservation: Reservation) -> Reservation | None:
    """Lock the reservation's space, then the reservation itself (the order every write
    keeps), and return the row as it is now, with its space and location; None when it is gone.
    A decision, a check-in or a release re-checks the state on this, so the first one wins."""
    _lock_space_of(reservation)
    return (
        Reservation.objects.select_for_update(of=("self",))
        .select_related("space__location")
        .filter(pk=reservation.pk)
        .first()
    )


def _save(reservation: Reservation, actor: AbstractBaseUser | None, source: str, reason: str = ""):
    reservation._history_user = actor  # read by simple-history
    reservation._change_source = source  # copied into the historical row (apps.py)
    if reason:  # the history's reason column holds 100 characters (cancel_reason keeps 255)
        reservation._change_reason = _history_reason(reason)
    reservation.save()


def _check_rules(
    action: rules.Action, actor: AbstractBaseUser | None, reservation: Reservation, source: str
):
    if actor is None:  # background sync acts for the provider, not a person
        return
    decision = rules.check(action, actor, reservation, source)
    if not decision:
        raise NotAllowed(decision.reason)


def _send_after_commit(signal, reservations: Sequence[Reservation], actor, source, **extra):
    ids = [r.pk for r in reservations]
    actor_id = getattr(actor, "pk", None)
    transaction.on_commit(
        lambda: signal.send(
            sender=Reservation, reservation_ids=ids, actor_id=actor_id, source=source, **extra
        ),
        # The booking is committed: a failing receiver (broker down) is logged, not raised.
        robust=True,
    )


# --- book -----------------------------------------------------------------------------------


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
    status: str | None = None,
    organizer_name: str = "",
    organizer_email: str = "",
    now: datetime | None = None,
) -> BookingResult:
    """Book a space once, or as a series. Raises BookingError, NotAllowed or Conflict.

    ``actor`` is None only for reservations that come from a remote calendar (sync); then the
    policies and the opening-hours/horizon rules do not apply, only "no overlap".

    ``status`` defaults to confirmed, except when the placement puts the event in the
    requested-for user's own calendar (sync mailbox ``user``, personal mode): the room is then
    invited and its answer, which comes later, confirms or cancels the booking (``confirm``,
    ``cancel``), so the booking starts ``pending`` (it holds the slot meanwhile). A space that
    needs approval (``reservations.approvals``) also makes it ``pending``, with ``approval``
    awaiting, unless the person (``actor``, or ``requested_for`` for a pull) is an approver.
    """
    now = now or timezone.now()
    _check_times(start, end)
    if requested_for is None and actor is not None:
        requested_for = actor
    attendees = [a.strip() for a in attendees if a.strip()]
    prototype = Reservation(
        space=space,
        requested_for=requested_for,
        booked_by=actor,
        start=start,
        end=end,
        title=title,
        public_nickname=public_nickname,
        description=description,
        kind=kind,
        attendees=attendees,
        source=source,
        status=status or ReservationStatus.CONFIRMED,
        organizer_name=organizer_name,
        organizer_email=organizer_email,
    )
    prototype.sync_mailbox = rules.sync_mailbox_for(prototype, source)
    if status is None:
        awaits_room = prototype.sync_mailbox == SyncMailbox.USER
        prototype.status = ReservationStatus.PENDING if awaits_room else ReservationStatus.CONFIRMED
        if approvals.needs_approval(space, actor or requested_for):
            # Held, pending, until an approver decides (``approve`` / ``decline``).
            prototype.status = ReservationStatus.PENDING
            prototype.approval = Approval.AWAITING
    _check_rules(rules.Action.CREATE, actor, prototype, source)
    _check_space(space, kind, attendees)
    check_policy = source not in REMOTE_SOURCES
    # The person's limits (counts for every source; notice and window for Reserva's own).
    person_limits = limits.for_person(requested_for, space.location)
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
        slots = [(start, end)]
        unavailable: list[Unavailable] = []
    else:
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

    try:
        with transaction.atomic():
            _lock_space(space)
            bookable: list[tuple[datetime, datetime]] = []
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
            if unavailable and (recurrence is None or not skip_unavailable or not bookable):
                raise _conflict(clashes, unavailable, bookable, series=recurrence is not None)
            # A series over a limit is refused whole (skip_unavailable or not): which dates
            # to give up is the person's choice, not ours.
            _check_limits(person_limits, requested_for, space, bookable, now=now)

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
                reservation.start, reservation.end, reservation.series = (
                    slot_start,
                    slot_end,
                    series,
                )
                _save(reservation, actor, source)
                created.append(reservation)
    except IntegrityError as exc:
        # PostgreSQL's exclusion constraint caught an overlap the check could not see.
        raise Conflict("That slot was taken a moment ago; please choose another time.") from exc
    _send_after_commit(signals.reservation_created, created, actor, source)
    return BookingResult(created, unavailable)


def _check_limits(
    person_limits: limits.PersonLimits,
    person: AbstractBaseUser | None,
    space: Space,
    slots: Sequence[tuple[datetime, datetime]],
    *,
    now: datetime,
    replacing: Sequence[Reservation] = (),
) -> None:
    """Raise LimitExceeded when the slots take the person over a limit. Called after the
    space lock; the person's row is locked too when a limit counts their bookings, so two
    bookings of different spaces for one person cannot both pass (PostgreSQL; SQLite's
    transactions are serialized already). Persons are locked after spaces, always."""
    if person is None or (not person_limits.counts and not person_limits.overlap_kinds(space)):
        return
    get_user_model().objects.select_for_update().filter(pk=person.pk).first()
    over = limits.excess(person_limits, person, space, slots, now=now, replacing=replacing)
    if over:
        raise LimitExceeded(over)


def limit_problem(
    space: Space, start: datetime, end: datetime, person: AbstractBaseUser | None
) -> str | None:
    """Why a booking of [start, end) in this space for ``person`` would break their counts,
    hours or overlap limits, or None (read only: the pull's reason for a conflicted remote
    event moved again)."""
    person_limits = limits.for_person(person, space.location)
    return limits.excess(person_limits, person, space, [(start, end)], now=timezone.now())


def _conflict(clashes, unavailable, bookable, *, series: bool) -> Conflict:
    # "closed" only when a closure is the whole story; a taken slot among them is a conflict.
    error = Closed if unavailable and all(u.closed for u in unavailable) else Conflict
    if not series:
        message = unavailable[0].reason
    else:
        dates = ", ".join(f"{u.day:%a %d %b}" for u in unavailable)
        message = (
            f"{len(unavailable)} of {len(unavailable) + len(bookable)} dates cannot be booked: "
            f"{dates}."
        )
        if bookable:
            message += f" The other {len(bookable)} dates are free."
    return error(message, clashes=clashes, unavailable=unavailable, bookable=bookable)


# --- change and cancel ----------------------------------------------------------------------


def _targets(reservation: Reservation, scope: Scope) -> list[Reservation]:
    """The occurrences an operation applies to, locked for update, in start order."""
    if scope is Scope.FOLLOWING and reservation.series_id:
        # The anchor is always included, so a cancelled one is reported as such.
        qs = Reservation.objects.filter(
            Q(pk=reservation.pk)
            | Q(
                series_id=reservation.series_id,
                start__gte=reservation.start,
                status__in=SLOT_HOLDING_STATUSES,
            )
        )
    else:
        qs = Reservation.objects.filter(pk=reservation.pk)
    # Only the reservations: the space is locked first (_lock_space_of), never through a join.
    return list(
        qs.select_for_update(of=("self",)).select_related("space__location").order_by("start")
    )


def _check_current(reservation: Reservation, current: Reservation | None, expected_version):
    if current is None:
        raise BookingError("This reservation no longer exists.")
    if expected_version is not None and current.version != expected_version:
        raise StaleReservation(
            "This reservation was changed by someone else since you opened it. "
            "Reload to see the latest version."
        )
    if current.status not in SLOT_HOLDING_STATUSES:
        raise BookingError(f"This reservation is {current.get_status_display().lower()}.")


DETAIL_FIELDS = ("title", "public_nickname", "description", "attendees", "kind")
TRACKED_DETAILS = (*DETAIL_FIELDS, "requested_for_id")  # what a change signal reports


def _check_handover(
    actor: AbstractBaseUser | None,
    current: Reservation,
    person: AbstractBaseUser,
    source: str,
) -> None:
    """May ``actor`` hand ``current`` to ``person``? Handing a booking over is booking for
    that person, so the create rules decide (the on-behalf permission; in personal sync mode,
    only for yourself). A booking kept in its owner's own calendar (sync mailbox ``user``)
    cannot move to someone else's calendar: that is a cancellation and a new booking."""
    if not person.is_active:
        raise BookingError(f"{person} is deactivated.", field="requested_for")
    if current.sync_mailbox == SyncMailbox.USER:
        raise BookingError(
            "This booking lives in its owner's own calendar; to book it for someone else, "
            "cancel it and book again for them.",
            field="requested_for",
        )
    if actor is None:
        return
    handed = Reservation(
        **{f.attname: getattr(current, f.attname) for f in Reservation._meta.concrete_fields}
    )
    handed.space, handed.requested_for, handed.booked_by = current.space, person, actor
    decision = rules.check(rules.Action.CREATE, actor, handed, source)
    if not decision:
        raise NotAllowed(decision.reason, field="requested_for")


def change(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    start: datetime | None = None,
    end: datetime | None = None,
    space: Space | None = None,
    scope: Scope = Scope.THIS,
    expected_version: int | None = None,
    source: str = Source.PORTAL,
    now: datetime | None = None,
    requested_for: AbstractBaseUser | None = None,
    **details,
) -> list[Reservation]:
    """Reschedule (new times and/or space) and/or edit details of one occurrence or of this
    and the following occurrences of its series. All or nothing.

    ``requested_for`` hands the booking to another person (see ``_check_handover``): the
    history records it and the push updates the remote event's subject and attendees.

    ``actor`` None with a remote ``source``: the provider's own change of a booking made in
    its calendar (sync); only "no overlap" is checked. A person as ``actor`` with a remote
    ``source``: their change of a Reserva booking made in their calendar, which the pull
    applies as them: checked like any change of theirs (policies, opening hours, horizon,
    maximum length, past), and recorded with the provider as its source."""
    now = now or timezone.now()
    unknown = set(details) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown fields: {', '.join(sorted(unknown))}")
    check_policy = actor is not None or source not in REMOTE_SOURCES
    try:
        with transaction.atomic():
            _lock_space_of(reservation)
            targets = _targets(reservation, scope)
            current = next((t for t in targets if t.pk == reservation.pk), None)
            _check_current(reservation, current, expected_version)
            _check_rules(rules.Action.CHANGE, actor, current, source)
            if check_policy and current.end <= now:
                raise BookingError("This booking is over and can no longer be changed.")
            new_space = space or current.space
            if new_space.pk != current.space_id:
                _lock_space(new_space)
            _lock_space(current.space)
            kind = details.get("kind", current.kind)
            attendees = details.get("attendees", current.attendees)
            _check_space(new_space, kind, attendees)
            new_start, new_end = start or current.start, end or current.end
            # Invalid input is a field error (400), not one more "unavailable date" (409).
            _check_times(new_start, new_end)
            if requested_for is not None and requested_for.pk != current.requested_for_id:
                _check_handover(actor, current, requested_for, source)
                details["requested_for"] = requested_for

            plans = _plan_moves(targets, current, new_start, new_end)
            person = details.get("requested_for") or current.requested_for
            person_limits = limits.for_person(person, new_space.location)
            _check_moves(
                targets, plans, new_space, now=now, check_policy=check_policy,
                person_limits=person_limits,
            )  # fmt: skip
            moved = any(
                (s, e, new_space.pk) != (t.start, t.end, t.space_id)
                for t, (s, e) in zip(targets, plans, strict=True)
            )
            if moved or "requested_for" in details:
                handed = "requested_for" in details
                _check_limits(
                    person_limits, person, new_space, plans, now=now,
                    replacing=() if handed else targets,
                )  # fmt: skip

            tracked = ("start", "end", "space_id", "status", "approval", *TRACKED_DETAILS)
            old = {f: getattr(current, f) for f in tracked}
            mover = actor or current.requested_for  # an approver moves without approval
            for target, (planned_start, planned_end) in zip(targets, plans, strict=True):
                settled = approvals.after_move(target, new_space, mover)
                if settled is not None:  # into or out of a space that needs approval
                    target.status, target.approval = settled
                target.start, target.end, target.space = planned_start, planned_end, new_space
                for name, value in details.items():
                    setattr(target, name, value)
                target.version += 1
                _save(target, actor, source)
    except IntegrityError as exc:
        # PostgreSQL's exclusion constraint caught an overlap the check could not see.
        raise Conflict("That slot was taken a moment ago; please choose another time.") from exc
    changes = {
        name: (value, getattr(current, name))
        for name, value in old.items()
        if getattr(current, name) != value
    }
    _send_after_commit(signals.reservation_changed, targets, actor, source, changes=changes)
    return targets


def _check_moves(
    targets: list[Reservation],
    plans: list[tuple[datetime | None, datetime | None]],
    space: Space,
    *,
    now: datetime,
    check_policy: bool,
    person_limits: limits.PersonLimits | None = None,
) -> None:
    """Raise Conflict listing every target that cannot move to its planned slot (TooSoon for
    one booking moved inside its person's notice or beyond their window)."""
    use_horizon = person_limits is None or person_limits.window is None
    target_ids = [t.pk for t in targets]
    clashes: list[Clash] = []
    unavailable: list[Unavailable] = []
    closed_for = _closure_checker(space, [p for p in plans if p[0] and p[1]])
    for target, (new_start, new_end) in zip(targets, plans, strict=True):
        day = (new_start or target.start).astimezone(space.location.zone).date()
        if new_start is None or new_end is None:
            unavailable.append(Unavailable(None, day, "That time does not exist (clocks change)."))
            continue
        moved = (new_start, new_end, space.pk) != (target.start, target.end, target.space_id)
        if not moved:
            # It holds this slot already, with the buffers it was booked with; checking it
            # against buffers widened since would refuse a mere edit of its title.
            continue
        # A booking under way that keeps its start and room (ended early, extended) is judged
        # from its start: that the start has passed is no reason to refuse a new end.
        ongoing = (new_start, space.pk) == (target.start, target.space_id) and new_start <= now
        problem = slot_problem(
            space, new_start, new_end, now=new_start if ongoing else now,
            check_policy=check_policy, horizon=use_horizon,
        )  # fmt: skip
        if problem:
            unavailable.append(Unavailable(new_start, day, problem))
            continue
        early = (
            not ongoing
            and check_policy
            and person_limits
            and limits.too_soon(person_limits, new_start, now=now)
        )
        if early and len(targets) == 1:
            raise TooSoon(early, field="start")
        if early:
            unavailable.append(Unavailable(new_start, day, early))
            continue
        closed = moved and closed_for(new_start, new_end)
        if closed:
            unavailable.append(Unavailable(new_start, day, closed, closed=True))
            continue
        found = _clashes_for(space, new_start, new_end, exclude_ids=target_ids)
        if found:
            clashes.extend(found)
            unavailable.append(Unavailable(new_start, day, found[0].describe()))
    if unavailable:
        raise _conflict(clashes, unavailable, [], series=len(targets) > 1)


def _plan_moves(
    targets: list[Reservation], anchor: Reservation, start: datetime, end: datetime
) -> list[tuple[datetime | None, datetime | None]]:
    """New (start, end) per target: the anchor gets exactly (start, end); later occurrences
    keep their own date shifted by the same number of days, at the new wall-clock times."""
    zone = anchor.space.location.zone
    anchor_local = anchor.start.astimezone(zone)
    new_local_start, new_local_end = start.astimezone(zone), end.astimezone(zone)
    day_shift = new_local_start.date() - anchor_local.date()
    end_days = new_local_end.date() - new_local_start.date()
    plans: list[tuple[datetime | None, datetime | None]] = []
    for target in targets:
        if target.pk == anchor.pk:
            plans.append((start, end))
            continue
        day = target.start.astimezone(zone).date() + day_shift
        new_start = localize(day, new_local_start.time(), zone)
        new_end = localize(day + end_days, new_local_end.time(), zone)
        plans.append((new_start, new_end) if new_start and new_end else (None, None))
    return plans


def cancel(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    scope: Scope = Scope.THIS,
    reason: str = "",
    source: str = Source.PORTAL,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> list[Reservation]:
    """Cancel one occurrence, or this and the following ones. The rows stay, as cancelled."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_space_of(reservation)
        targets = _targets(reservation, scope)
        current = next((t for t in targets if t.pk == reservation.pk), None)
        _check_current(reservation, current, expected_version)
        _check_rules(rules.Action.CANCEL, actor, current, source)
        if source not in REMOTE_SOURCES and current.end <= now:
            raise BookingError("This booking is over and can no longer be cancelled.")
        _mark_cancelled(targets, actor, source, reason)
    _send_after_commit(signals.reservation_cancelled, targets, actor, source)
    return targets


def confirm(
    *, actor: AbstractBaseUser | None, reservation: Reservation, source: str = Source.PORTAL
) -> Reservation | None:
    """Confirm a pending reservation (the invited room accepted). Returns the reservation, or
    None when it is no longer pending (cancelled or confirmed meanwhile), or still awaits an
    approver's decision (the room's yes does not approve it): nothing to do."""
    with transaction.atomic():
        current = Reservation.objects.select_for_update().filter(pk=reservation.pk).first()
        if current is None or current.status != ReservationStatus.PENDING:
            return None
        if current.approval == Approval.AWAITING:
            return None
        current.status = ReservationStatus.CONFIRMED
        current.version += 1
        _save(current, actor, source)
    _send_after_commit(
        signals.reservation_changed,
        [current],
        actor,
        source,
        changes={"status": (ReservationStatus.PENDING, ReservationStatus.CONFIRMED)},
    )
    return current


# --- approvals (reservations/approvals.py) ---------------------------------------------------


def _decision_target(actor, reservation: Reservation) -> Reservation:
    """The reservation locked for a decision, after checking that ``actor`` may decide (None:
    the deadline task) and that it still awaits one."""
    current = _lock_current(reservation)
    if current is None:
        raise BookingError("This reservation no longer exists.")
    if actor is not None and not approvals.may_decide(actor, current):
        raise NotAllowed("Only the approvers of this space may approve or decline its bookings.")
    if current.status != ReservationStatus.PENDING or current.approval != Approval.AWAITING:
        state = (
            current.get_approval_display().lower()
            if current.approval in (Approval.APPROVED, Approval.DECLINED)
            else current.get_status_display().lower()
        )
        raise AlreadyDecided(f"This booking is not awaiting approval: it is {state}.")
    return current


def approve(
    *,
    actor: AbstractBaseUser,
    reservation: Reservation,
    source: str = Source.PORTAL,
    now: datetime | None = None,
) -> Reservation:
    """An approver approves a booking awaiting approval: it becomes confirmed, and the push
    turns its tentative remote event busy. Raises NotAllowed for anyone else, AlreadyDecided
    when it is not awaiting approval (decided, cancelled) or is over."""
    now = now or timezone.now()
    with transaction.atomic():
        current = _decision_target(actor, reservation)
        if current.end <= now:
            raise AlreadyDecided("This booking is over; it can no longer be approved.")
        current.status = ReservationStatus.CONFIRMED
        current.approval = Approval.APPROVED
        current.decided_by, current.decided_at = actor, now
        current.version += 1
        _save(current, actor, source, f"Approved by {actor}")
    _send_after_commit(
        signals.reservation_changed,
        [current],
        actor,
        source,
        changes={
            "status": (ReservationStatus.PENDING, current.status),
            "approval": (Approval.AWAITING, Approval.APPROVED),
        },
    )
    return current


def decline(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    reason: str = "",
    source: str = Source.PORTAL,
    now: datetime | None = None,
) -> Reservation:
    """An approver declines a booking awaiting approval (``actor`` None: its deadline passed,
    ``approvals.decline_overdue``): it is cancelled with the reason and frees the slot."""
    now = now or timezone.now()
    with transaction.atomic():
        current = _decision_target(actor, reservation)
        who = f"Declined by {actor}" if actor is not None else "Declined"
        full = f"{who}: {reason}" if reason else who
        current.status = ReservationStatus.CANCELLED
        current.approval = Approval.DECLINED
        current.cancel_reason = full[:255]
        current.decided_by, current.decided_at = actor, now
        current.version += 1
        _save(current, actor, source, full)
    _send_after_commit(
        signals.reservation_cancelled,
        [current],
        actor,
        source,
        changes={"approval": (Approval.AWAITING, Approval.DECLINED)},
    )
    return current


def release_from_calendar(
    *,
    actor: AbstractBaseUser | None,
    space: Space,
    reservation_ids: Sequence[int],
    cancel: bool,
    reason: str,
    now: datetime | None = None,
) -> tuple[list[Reservation], list[Reservation]]:
    """Bookings pulled from a room calendar that Reserva stops reading (its binding was
    removed or pointed at another calendar) become Reserva's own bookings.

    Their source becomes ``admin``, so the rules treat them as ordinary bookings ("made in
    Exchange, change it there" no longer holds). With ``cancel``, those that still hold their
    slot and are not over are cancelled with ``reason`` (their people get the usual
    cancellation email); the others are kept. The caller has dropped their remote links
    first, so no push touches the old calendar's events. Returns (kept, cancelled).
    """
    now = now or timezone.now()
    kept: list[Reservation] = []
    cancelled: list[Reservation] = []
    with transaction.atomic():
        _lock_space(space)
        rows = Reservation.objects.select_for_update().filter(
            pk__in=list(reservation_ids), space=space, source__in=REMOTE_SOURCES
        )
        for row in rows.order_by("start", "pk"):
            row.source = Source.ADMIN
            row.version += 1
            if cancel and row.holds_slot and row.end > now:
                row.status = ReservationStatus.CANCELLED
                row.cancel_reason = reason[:255]
                cancelled.append(row)
            else:
                kept.append(row)
            _save(row, actor, Source.ADMIN, reason)
    if kept:
        _send_after_commit(
            signals.reservation_changed,
            kept,
            actor,
            Source.ADMIN,
            changes={"source": ("remote", Source.ADMIN)},
        )
    if cancelled:
        _send_after_commit(signals.reservation_cancelled, cancelled, actor, Source.ADMIN)
    return kept, cancelled


def _mark_cancelled(targets: Iterable[Reservation], actor, source: str, reason: str) -> None:
    for target in targets:
        target.status = ReservationStatus.CANCELLED
        target.cancel_reason = reason[:255]
        target.version += 1
        _save(target, actor, source, reason)


# --- check-in (reservations/checkin.py) ------------------------------------------------------


def check_in(
    *,
    actor: AbstractBaseUser | None,
    reservation: Reservation,
    source: str,
    now: datetime | None = None,
) -> Reservation:
    """Check in to a booking inside its window. Idempotent (checked in already: unchanged).

    ``actor`` must be the person it is for, who booked it, its organizer or a manager;
    None only when the caller verified a signed check-in link of a booking that has no
    Reserva user (its organizer got the link by email). Raises NotAllowed, CheckInClosed,
    NeedsApproval or BookingError (check-in is not used in that space). No signal: nothing
    shown in a calendar changes, and the booking's version stays (a form open elsewhere
    remains valid).
    """
    now = now or timezone.now()
    with transaction.atomic():
        current = _lock_current(reservation)
        if current is None:
            raise BookingError("This booking no longer exists.")
        if actor is not None and not checkin.may_check_in(actor, current, source=source):
            raise NotAllowed("Only the person the booking is for, or who made it, can check in.")
        if current.checked_in_at is not None:
            return current
        _check_check_in(current, now)
        current.checked_in_at = now
        local = now.astimezone(current.space.location.zone)
        _save(current, actor, source, f"Checked in at {local:%H:%M}")
    return current


def _check_check_in(reservation: Reservation, now: datetime) -> None:
    policy = checkin.policy_for(reservation.space)
    if reservation.status == ReservationStatus.RELEASED:
        raise CheckInClosed(f"{reservation.cancel_reason or 'This booking was released'}.")
    if reservation.status in ENDED_STATUSES:
        raise CheckInClosed("This booking was cancelled.")
    if reservation.status == ReservationStatus.PENDING:
        raise NeedsApproval(
            "This booking is still awaiting approval (or the room's answer); "
            "you can check in once it is confirmed."
        )
    if reservation.status != ReservationStatus.CONFIRMED:
        raise BookingError("This booking does not hold its slot, so there is nothing to check in.")
    if not policy.required:
        raise BookingError(f"Bookings of {reservation.space.name} need no check-in.")
    found = checkin.window(reservation, policy)
    if not found.contains(now):
        when = "has not opened yet" if now < found.opens else "has closed"
        raise CheckInClosed(
            f"Check-in for this booking is open {checkin.describe_window(reservation, policy)}; "
            f"it {when}."
        )


def release_no_show(*, reservation: Reservation, now: datetime) -> Reservation | None:
    """Release (or cancel, per the space's ``no_show_action``) a booking nobody checked in
    to by the end of its window; returns it, or None when there is nothing to do (checked in,
    released, cancelled or moved meanwhile; a concurrent check-in wins: both take the space's
    lock and this re-reads the row under it). One transaction: the status, the history entry
    with the reason and the day's released minutes (``SpaceDayUsage``) commit together; the
    email and the push follow the signal, sent after commit."""
    with transaction.atomic():
        current = _lock_current(reservation)
        if (
            current is None
            or current.status != ReservationStatus.CONFIRMED
            or current.checked_in_at is not None
            or current.end <= now
        ):
            return None
        policy = checkin.policy_for(current.space)
        if not policy.required or checkin.window(current, policy).closes > now:
            return None
        reason = checkin.no_show_reason(current, policy)
        released = policy.no_show_action == NoShowAction.RELEASE
        current.status = ReservationStatus.RELEASED if released else ReservationStatus.CANCELLED
        current.released_at = now
        current.cancel_reason = reason
        current.version += 1
        _save(current, None, current.source, reason)
        checkin.record_released_minutes(current, now)
    if released:
        changes = {"status": (ReservationStatus.CONFIRMED, ReservationStatus.RELEASED)}
        _send_after_commit(
            signals.reservation_changed, [current], None, current.source,
            changes=changes, no_show=True,
        )  # fmt: skip
    else:
        _send_after_commit(
            signals.reservation_cancelled, [current], None, current.source, no_show=True
        )
    return current


def claim_check_in_reminder(*, reservation_id: int, now: datetime) -> bool:
    """Mark the check-in reminder of a booking as sent; False when it was already (so two
    workers never send it twice). Not a change of the booking: no history, no signal."""
    return bool(
        Reservation.objects.filter(pk=reservation_id, check_in_reminded_at__isnull=True).update(
            check_in_reminded_at=now
        )
    )


def claim_booking_reminder(*, reservation_id: int, now: datetime) -> bool:
    """Mark the start reminder of a booking as sent (``reservations.reminders``); False when
    it was already, so two workers never send it twice. No history, no signal."""
    return bool(
        Reservation.objects.filter(pk=reservation_id, reminder_sent_at__isnull=True).update(
            reminder_sent_at=now
        )
    )


# --- users ----------------------------------------------------------------------------------


def deactivate_user(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, reason: str = ""
) -> UserDeactivation:
    """Deactivate an account and cancel its future bookings; the people concerned are emailed
    through the cancellation signal. Recorded as a UserDeactivation row."""
    reason = reason or "The account was deactivated."
    with transaction.atomic():
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
        future = list(
            Reservation.objects.select_for_update()
            .filter(requested_for=user, status__in=SLOT_HOLDING_STATUSES, end__gt=timezone.now())
            .order_by("start")
        )
        _mark_cancelled(future, actor, Source.ADMIN, reason)
        record = UserDeactivation.objects.create(
            user=user, deactivated_by=actor, cancelled_reservations=len(future), reason=reason
        )
    if future:
        _send_after_commit(signals.reservation_cancelled, future, actor, Source.ADMIN)
    return record


# --- conflicts from remote calendars (calendars/sync/pull.py) --------------------------------


def record_conflict(
    *,
    space: Space,
    start: datetime,
    end: datetime,
    source: str,
    reservation: Reservation | None = None,
    title: str = "",
    organizer_name: str = "",
    organizer_email: str = "",
    requested_for: AbstractBaseUser | None = None,
    reason: str = "",
) -> Reservation:
    """Store a remote event that collides with a slot-holding reservation, as ``conflicted``.

    ``reason`` says why (the room's cleanup buffer meets another booking, the room is closed:
    ``Closed``): it is kept on the reservation (shown with its status) and in its history.

    A conflicted reservation holds no slot (``SLOT_HOLDING_STATUSES``), so writing it never
    breaks "no two slot-holding reservations overlap" (nor PostgreSQL's exclusion constraint,
    which only covers slot-holding rows) and never overwrites the booking it clashes with.
    Only for remote sources (the booking exists in the provider's calendar whatever Reserva
    says). With ``reservation``: an existing reservation that was moved remotely onto a taken
    slot becomes conflicted at its new times. No signal is sent (nothing to push: the remote
    event already is where it is); the pull tells the people concerned.
    """
    if source not in REMOTE_SOURCES:
        raise ValueError("Only remote calendar events are recorded as conflicts.")
    with transaction.atomic():
        if reservation is None:
            reservation = Reservation(
                space=space,
                requested_for=requested_for,
                title=title,
                source=source,
                organizer_name=organizer_name,
                organizer_email=organizer_email,
                sync_mailbox=SyncMailbox.ROOM,
            )
        else:
            reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
            reservation.version += 1
            if title:
                reservation.title = title
        reservation.start, reservation.end = start, end
        reservation.status = ReservationStatus.CONFLICTED
        reservation.cancel_reason = reason[:255]
        why = reason or "Collides with another booking in the remote calendar."
        _save(reservation, None, source, why)
    return reservation


def _history_reason(reason: str) -> str:
    # simple-history keeps a change reason in 100 characters.
    return reason if len(reason) <= 100 else reason[:99] + "…"


def collision_reason(space: Space, start: datetime, end: datetime, clash_ids: Iterable[int]) -> str:
    """Why a remote event of [start, end) collides with these bookings, in the words a refused
    booking would get (the first clash; a buffer's words when only buffers meet)."""
    other = queries.slot_holding().filter(pk__in=list(clash_ids)).order_by("start").first()
    if other is None:
        return "Collides with another booking in the remote calendar."
    return _clash(space, start, end, other).describe()


def retry_conflict(*, reservation: Reservation, actor: AbstractBaseUser | None = None) -> bool:
    """A conflicted reservation takes its slot if the slot is free now (one of the two was
    moved or cancelled), not closed, and within its person's limits: it becomes confirmed and
    True is returned; else nothing changes."""
    with transaction.atomic():
        _lock_space_of(reservation)
        current = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if current.status != ReservationStatus.CONFLICTED:
            return False
        _lock_space(current.space)
        if _clashes_for(current.space, current.start, current.end, exclude_ids=[current.pk]):
            return False
        if closure_problem(current.space, current.start, current.end):
            return False
        person_limits = limits.for_person(current.requested_for, current.space.location)
        try:
            _check_limits(
                person_limits, current.requested_for, current.space,
                [(current.start, current.end)], now=timezone.now(),
            )  # fmt: skip
        except LimitExceeded:
            return False
        current.stamp_buffers()  # checked with the space's buffers of now, so held with them
        current.status = ReservationStatus.CONFIRMED
        current.cancel_reason = ""
        current.version += 1
        _save(current, actor, current.source, "The slot is free again.")
    return True


def cancel_conflict(
    *, reservation: Reservation, actor: AbstractBaseUser | None = None, reason: str = ""
) -> Reservation | None:
    """Cancel a conflicted reservation (its remote event was deleted or declined). Returns
    None when it is not conflicted any more. No signal: a conflict was never pushed."""
    with transaction.atomic():
        current = Reservation.objects.select_for_update().filter(pk=reservation.pk).first()
        if current is None or current.status != ReservationStatus.CONFLICTED:
            return None
        current.status = ReservationStatus.CANCELLED
        current.cancel_reason = reason[:255]
        current.version += 1
        _save(current, actor, current.source, reason)
    return current
