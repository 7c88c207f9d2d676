"""Check-in, releasing a no-show, and claiming reminders (the rules are in
``reservations.checkin``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from .. import checkin, signals
from ..models import ENDED_STATUSES, NoShowAction, Reservation, ReservationStatus
from .errors import BookingError, CheckInClosed, NeedsApproval, NotAllowed
from .writes import _lock_current, _save, _send_after_commit

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


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


def _claim_reminder(reservation_id: int, stamp: str, now: datetime) -> bool:
    """Mark one of a booking's reminder emails as sent by setting its ``stamp`` field
    (``check_in_reminded_at``, ``reminder_sent_at``) with a compare-and-set; False when it was
    already, so two workers never send it twice. Not a change of the booking: no history, no
    signal."""
    return bool(
        Reservation.objects.filter(pk=reservation_id, **{f"{stamp}__isnull": True}).update(
            **{stamp: now}
        )
    )


def claim_check_in_reminder(*, reservation_id: int, now: datetime) -> bool:
    """The check-in reminder's claim (``reservations.checkin``)."""
    return _claim_reminder(reservation_id, "check_in_reminded_at", now)


def claim_booking_reminder(*, reservation_id: int, now: datetime) -> bool:
    """The start reminder's claim (``reservations.reminders``)."""
    return _claim_reminder(reservation_id, "reminder_sent_at", now)
