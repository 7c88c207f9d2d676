"""Bookings that come from remote calendars: conflicts kept without a slot, retried or
cancelled, and bookings released when Reserva stops reading a calendar."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from .. import limits, queries, signals
from ..models import REMOTE_SOURCES, Reservation, ReservationStatus, Source, Space, SyncMailbox
from .errors import LimitExceeded
from .validation import _check_limits, _clash, _clashes_for, closure_problem
from .writes import _lock_space, _lock_space_of, _save, _send_after_commit

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


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
