"""The room display's buttons: ``book_now``, ``check_in``, ``end_early`` and ``extend``, each
a call of ``reservations.services`` as the display's account with source *Display*, so every
rule applies; a refusal is the service's ``BookingError`` with its message for the tablet."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from .. import approvals, services
from ..models import Display, Reservation, ReservationStatus, Source
from .board import BOOK_MINUTES, EXTEND_MINUTES, approval_refusal

WALK_IN = "Walk-in"


def _booking(display: Display, reservation_id) -> Reservation:
    try:
        pk = int(reservation_id)
    except (TypeError, ValueError):
        pk = 0
    row = Reservation.objects.select_related("space__location").filter(pk=pk, space=display.space)
    reservation = row.first()
    if reservation is None:
        raise services.BookingError("That booking is not in this room any more.")
    return reservation


def _minutes(value, allowed: tuple[int, ...]) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        minutes = 0
    if minutes not in allowed:
        choices = ", ".join(str(m) for m in allowed)
        raise services.BookingError(f"Choose {choices} minutes.")
    return minutes


def _hhmm(moment: datetime, display: Display) -> str:
    return f"{moment.astimezone(display.space.location.zone):%H:%M}"


def book_now(display: Display, minutes, *, now: datetime | None = None) -> str:
    """Book the room from now for ``minutes`` (15, 30 or 60) as the display; returns the
    message for the tablet. Raises services.BookingError with the service's reason. Not in a
    room whose bookings need approval: a walk-in starting now would be past its approval
    deadline at once (``approvals.deadline``) and declined within a minute."""
    now = now or timezone.now()
    minutes = _minutes(minutes, BOOK_MINUTES)
    rule = approvals.needs_approval(display.space, display.user)
    if rule is not None:
        raise services.NotAllowed(approval_refusal(rule))
    start = now.replace(second=0, microsecond=0)
    result = services.book(
        actor=display.user,
        space=display.space,
        start=start,
        end=start + timedelta(minutes=minutes),
        title=f"Booked on the display of {display.space.name}",
        public_nickname=WALK_IN,
        source=Source.DISPLAY,
        now=now,
    )
    booking = result.reservations[0]
    if booking.status == ReservationStatus.PENDING:
        return f"Requested until {_hhmm(booking.end, display)}: it awaits approval."
    return f"Booked until {_hhmm(booking.end, display)}."


def check_in(display: Display, reservation_id, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    reservation = services.check_in(
        actor=display.user,
        reservation=_booking(display, reservation_id),
        source=Source.DISPLAY,
        now=now,
    )
    return f"Checked in at {_hhmm(reservation.checked_in_at, display)}."


def end_early(display: Display, reservation_id, *, now: datetime | None = None) -> str:
    """End the current booking now (at the start of this minute), so the room is free at
    once; one that started less than a minute ago is cancelled instead (it would last no
    time). A booking that has not started yet is not "ended": it is changed in the portal."""
    now = now or timezone.now()
    reservation = _booking(display, reservation_id)
    if reservation.start > now:
        raise services.BookingError("This booking has not started yet.")
    end = now.replace(second=0, microsecond=0)
    if end >= reservation.end:
        return f"This booking ends at {_hhmm(reservation.end, display)} anyway."
    if end <= reservation.start:
        services.cancel(
            actor=display.user,
            reservation=reservation,
            reason="Ended on the room display",
            source=Source.DISPLAY,
            now=now,
        )
    else:
        services.change(
            actor=display.user, reservation=reservation, end=end, source=Source.DISPLAY, now=now
        )
    return "Ended. The room is free."


def extend(display: Display, reservation_id, minutes, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    minutes = _minutes(minutes, EXTEND_MINUTES)
    reservation = _booking(display, reservation_id)
    [changed] = services.change(
        actor=display.user,
        reservation=reservation,
        end=reservation.end + timedelta(minutes=minutes),
        source=Source.DISPLAY,
        now=now,
    )
    return f"Extended until {_hhmm(changed.end, display)}."
