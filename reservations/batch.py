"""The booking service's batch writes for what a remote calendar did (the pull): many new
bookings, moves and cancellations of one space, made in the provider, in a few queries.

Each function gives every item the answer ``services.book`` / ``change`` / ``cancel`` with
``actor=None`` and the provider's source would give it, one after the other, in the order
given (a move sees the moves before it; a new booking sees the ones before it), and writes
the same rows, history rows (one bulk insert) and signals (sent after commit). The rules are
the same, not copied in spirit: under the same lock (the space row,
``services.writes._lock_space``), the rows are re-read and the slot holders, closures and
approval rule read once for the span of the batch; then each item is checked in memory
against what the items before it left, with the service's own checks.

Only bookings nobody in Reserva is the person of (``requested_for`` None) come here: a
person's limits are counted by ``services`` one booking at a time, so the pull sends those
there. An item that cannot be carried out gets its ``BookingError`` (a ``Conflict`` naming
the clashes, ``Closed``...) in place of a row, and the rest go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import approvals, closures, limits, rules, services, signals
from .models import (
    SLOT_HOLDING_STATUSES,
    Approval,
    Reservation,
    ReservationKind,
    ReservationStatus,
    Space,
    SyncMailbox,
)
from .services import changes, validation, writes


@dataclass(frozen=True)
class NewBooking:
    """A booking made in the provider by someone who is not a Reserva user."""

    start: datetime
    end: datetime
    title: str = ""
    organizer_name: str = ""
    organizer_email: str = ""


@dataclass(frozen=True)
class Move:
    """New times (and title, when not None) for a booking made in the provider."""

    reservation: Reservation
    start: datetime
    end: datetime
    title: str | None = None


Outcome = Reservation | services.BookingError


class _Slots:
    """The space's slot holders around the batch, as the lock found them, kept up to date
    item after item: what ``queries.clashes`` would answer at that point of the sequence."""

    def __init__(self, space: Space, spans: Sequence[tuple[datetime, datetime]]) -> None:
        self.space = space
        self.held: dict[int, Reservation] = {}
        if spans:
            low = min(s for s, _ in spans) - space.setup
            high = max(e for _, e in spans) + space.cleanup
            for row in Reservation.objects.filter(
                space_id=space.pk,
                status__in=SLOT_HOLDING_STATUSES,
                buffered_start__lt=high,
                buffered_end__gt=low,
            ).select_related("space__location"):
                self.held[row.pk] = row
        found = closures.periods_for(space, *_bounds(spans)) if spans else []
        self._closures = found

    def closed(self, start: datetime, end: datetime) -> str | None:
        period = next((p for p in self._closures if p.start < end and p.end > start), None)
        return closures.notice(period, self.space) if period else None

    def clashes(self, start: datetime, end: datetime, own: int | None) -> list[services.Clash]:
        low, high = start - self.space.setup, end + self.space.cleanup
        found = sorted(
            (
                (key, row)
                for key, row in self.held.items()
                if key != own and row.buffered_start < high and row.buffered_end > low
            ),
            key=lambda item: (item[1].start, item[0]),
        )
        # A booking of this batch not inserted yet is named by its placeholder key (negative)
        # until it has an id (``_name_new``).
        return [
            replace(validation._clash(self.space, start, end, row), reservation_id=key)
            for key, row in found
        ]

    def refusal(
        self, start: datetime, end: datetime, own: int | None
    ) -> services.BookingError | None:
        """Why [start, end) cannot be taken now (a closure first, then a taken slot), in the
        words ``services`` uses, or None."""
        day = start.astimezone(self.space.location.zone).date()
        closed = self.closed(start, end)
        if closed:
            unavailable = [services.Unavailable(start, day, closed, closed=True)]
            return validation._conflict([], unavailable, [], series=False)
        found = self.clashes(start, end, own)
        if found:
            unavailable = [services.Unavailable(start, day, found[0].describe())]
            return validation._conflict(found, unavailable, [], series=False)
        return None


def _bounds(spans: Sequence[tuple[datetime, datetime]]) -> tuple[datetime, datetime]:
    return min(s for s, _ in spans), max(e for _, e in spans)


def _times_problem(start: datetime, end: datetime) -> services.BookingError | None:
    """``book``'s checks of the times alone (no policy applies to a remote booking)."""
    try:
        validation._check_times(start, end)
    except services.BookingError as exc:
        return exc
    if timezone.is_naive(start) or timezone.is_naive(end):
        return services.BookingError("Times must include a time zone.", field="start")
    return None


def book_remote(space: Space, items: Sequence[NewBooking], *, source: str) -> list[Outcome]:
    """Book each item as ``services.book_from_calendar(source=source, ...)`` would, in order:
    the new row, or the error that refused it."""
    outcomes: list[Outcome | None] = [None] * len(items)
    try:
        validation._check_space(space, ReservationKind.STANDARD, ())
    except services.BookingError as exc:
        return [exc] * len(items)
    # What ``book`` decides per booking depends here on the space and the source only.
    prototype = Reservation(space=space, kind=ReservationKind.STANDARD, source=source)
    sync_mailbox = rules.sync_mailbox_for(prototype, source)
    awaits_room = sync_mailbox == SyncMailbox.USER
    status = ReservationStatus.PENDING if awaits_room else ReservationStatus.CONFIRMED
    approval = prototype.approval
    if approvals.needs_approval(space, None):
        status, approval = ReservationStatus.PENDING, Approval.AWAITING
    wanted = []
    for n, item in enumerate(items):
        problem = _times_problem(item.start, item.end)
        if problem:
            outcomes[n] = problem
        else:
            wanted.append(n)
    created: list[Reservation] = []
    try:
        with transaction.atomic():
            writes._lock_space(space)
            slots = _Slots(space, [(items[n].start, items[n].end) for n in wanted])
            for n in wanted:
                item = items[n]
                refusal = slots.refusal(item.start, item.end, None)
                if refusal:
                    outcomes[n] = refusal
                    continue
                row = Reservation(
                    space=space, start=item.start, end=item.end, title=item.title,
                    kind=ReservationKind.STANDARD, source=source, status=status,
                    approval=approval, sync_mailbox=sync_mailbox,
                    organizer_name=item.organizer_name, organizer_email=item.organizer_email,
                    attendees=[],
                )  # fmt: skip
                row.stamp_buffers()
                row._held_key = -(n + 1)
                slots.held[row._held_key] = row
                outcomes[n] = row
                created.append(row)
            if created:
                Reservation.objects.bulk_create(created)
                ids = {}
                for row in created:
                    slots.held.pop(row._held_key)
                    ids[row._held_key] = row.pk
                    row._stamped_for = row._placement()
                _name_new(outcomes, ids)
                _history(created, source, update=False)
    except IntegrityError as exc:  # PostgreSQL's exclusion constraint saw a race
        taken = services.Conflict("That slot was taken a moment ago; please choose another time.")
        taken.__cause__ = exc
        return [taken if isinstance(o, Reservation) else o for o in outcomes]
    if created:
        writes._send_after_commit(signals.reservation_created, created, None, source)
    return outcomes  # type: ignore[return-value]


def _name_new(outcomes: list, ids: dict[int, int]) -> None:
    """Give the clashes with bookings of the batch the ids they were inserted with."""
    for outcome in outcomes:
        if isinstance(outcome, services.Conflict) and any(
            c.reservation_id in ids for c in outcome.clashes
        ):
            outcome.clashes = [
                replace(c, reservation_id=ids.get(c.reservation_id, c.reservation_id))
                for c in outcome.clashes
            ]


def change_remote(space: Space, moves: Sequence[Move], *, source: str) -> list[Outcome]:
    """Apply each move as ``services.change(actor=None, source=source, ...)`` would, in
    order: the changed row, or the error that refused it. The rows are re-read under the
    lock; a row that is no longer there or no longer holds its slot is refused as it would
    be there."""
    outcomes: list[Outcome | None] = [None] * len(moves)
    changed: list[tuple[Reservation, dict]] = []
    with transaction.atomic():
        writes._lock_space(space)
        current = (
            Reservation.objects.select_for_update(of=("self",))
            .select_related("space__location")
            .in_bulk([m.reservation.pk for m in moves])
        )
        spans = [(m.start, m.end) for m in moves]
        slots = _Slots(space, spans)
        for n, move in enumerate(moves):
            row = current.get(move.reservation.pk)
            try:
                changes._check_current(move.reservation, row, None)
                if row.space_id != space.pk:
                    raise services.BookingError("This reservation is in another space now.")
                validation._check_space(space, row.kind, row.attendees)
            except services.BookingError as exc:
                outcomes[n] = exc
                continue
            problem = _times_problem(move.start, move.end)
            if problem:
                outcomes[n] = problem
                continue
            moved = (move.start, move.end) != (row.start, row.end)
            if moved:
                refusal = slots.refusal(move.start, move.end, row.pk) or _over_limit(
                    row, space, move.start, move.end
                )
                if refusal:
                    outcomes[n] = refusal
                    continue
            old = {"start": row.start, "end": row.end, "title": row.title}
            row.start, row.end = move.start, move.end
            if move.title is not None:
                row.title = move.title
            row.version += 1
            if moved:
                row.stamp_buffers()
                if row.holds_slot:
                    slots.held[row.pk] = row
            # One UPDATE each, in this order: each was checked against the ones before it,
            # so PostgreSQL's exclusion constraint never sees two rows overlap on the way.
            row.skip_history_when_saving = True
            row.save()
            del row.skip_history_when_saving
            outcomes[n] = row
            changed.append((row, {k: (v, getattr(row, k)) for k, v in old.items()}))
        _history([row for row, _ in changed], source, update=True)
    for row, before in changed:
        differs = {name: pair for name, pair in before.items() if pair[0] != pair[1]}
        writes._send_after_commit(signals.reservation_changed, [row], None, source, changes=differs)
    return outcomes  # type: ignore[return-value]


def _over_limit(
    row: Reservation, space: Space, start: datetime, end: datetime
) -> services.BookingError | None:
    """``change``'s limits check, for a booking given to a person since it was read (the
    pull sends only bookings for nobody here; this keeps a race with the admin honest)."""
    if row.requested_for_id is None:
        return None
    person = row.requested_for
    try:
        validation._check_limits(
            limits.for_person(person, space.location), person, space, [(start, end)],
            now=timezone.now(), replacing=[row],
        )  # fmt: skip
    except services.BookingError as exc:
        return exc
    return None


def cancel_remote(
    space: Space, reservations: Sequence[Reservation], *, source: str, reasons: Sequence[str]
) -> list[Outcome]:
    """Cancel each reservation as ``services.cancel(actor=None, source=source, ...)`` would:
    the cancelled row, or the error that refused it (gone, or not holding its slot now)."""
    outcomes: list[Outcome | None] = [None] * len(reservations)
    done: list[Reservation] = []
    with transaction.atomic():
        writes._lock_space(space)
        current = (
            Reservation.objects.select_for_update(of=("self",))
            .select_related("space__location")
            .in_bulk([r.pk for r in reservations])
        )
        for n, reservation in enumerate(reservations):
            row = current.get(reservation.pk)
            try:
                changes._check_current(reservation, row, None)
            except services.BookingError as exc:
                outcomes[n] = exc
                continue
            row.status = ReservationStatus.CANCELLED
            row.cancel_reason = reasons[n][:255]
            row.version += 1
            row.updated = timezone.now()
            row._change_reason = writes._history_reason(reasons[n])
            outcomes[n] = row
            done.append(row)
        if done:
            Reservation.objects.bulk_update(done, ["status", "cancel_reason", "version", "updated"])
            _history(done, source, update=True)
    if done:
        writes._send_after_commit(signals.reservation_cancelled, done, None, source)
    return outcomes  # type: ignore[return-value]


def _history(rows: Sequence[Reservation], source: str, *, update: bool) -> None:
    """The history rows ``services.writes._save`` would have written, in one insert."""
    if not rows:
        return
    for row in rows:
        row._history_user = None
    Reservation.history.bulk_history_create(
        rows, update=update, custom_historical_attrs={"change_source": source}
    )
