"""Celery tasks of the reservations app. Thin: they take ids and call a module that works."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import approvals, checkin, displays, notifications, reminders, services
from .insights import rollup
from .models import Reservation


@shared_task(
    name="reservations.send_reservation_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_reservation_email(event: str, reservation_ids: list[int]) -> int:
    """Email the people concerned about a booking event; returns how many emails were sent."""
    return notifications.send_reservation_email(event, reservation_ids)


@shared_task(name="reservations.release_no_shows")
def release_no_shows() -> int:
    """Release the bookings whose check-in window closed with nobody checked in (beat, every
    30 s). Each in its own transaction: a worker killed midway leaves the others for the next
    tick, and one released already is skipped. Returns how many were released."""
    now = timezone.now()
    released = 0
    for pk in checkin.due_for_release(now):
        reservation = Reservation.objects.filter(pk=pk).first()
        if reservation is not None and services.release_no_show(reservation=reservation, now=now):
            released += 1
    return released


def _send_once(due: list[int], claim, send, now) -> int:
    """Send each due booking's email once: the claim (a compare-and-set on the booking) first,
    so a second worker or a tick run twice skips it; the row is read after the claim."""
    sent = 0
    for pk in due:
        if not claim(reservation_id=pk, now=now):
            continue  # another worker took it
        reservation = (
            Reservation.objects.select_related("space__location", "requested_for")
            .filter(pk=pk)
            .first()
        )
        if reservation is not None:
            sent += send(reservation)
    return sent


@shared_task(name="reservations.send_check_in_reminders")
def send_check_in_reminders() -> int:
    """Email the check-in link when a booking's window opens (beat, every 60 s), once per
    booking. Returns how many reminders were sent."""
    now = timezone.now()
    return _send_once(
        checkin.due_for_reminder(now), services.claim_check_in_reminder, checkin.send_reminder, now
    )


@shared_task(name="reservations.send_booking_reminders")
def send_booking_reminders() -> int:
    """Email the reminder BOOKING_REMINDER_MINUTES before a booking starts (beat, every
    60 s), once per booking, to people who did not turn it off. Returns how many were sent."""
    now = timezone.now()
    return _send_once(reminders.due(now), services.claim_booking_reminder, reminders.send, now)


@shared_task(
    name="reservations.send_approval_emails",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_approval_emails(reservation_ids: list[int]) -> int:
    """A new booking awaits approval: email its approvers (and a remote organizer)."""
    return approvals.send_request(reservation_ids) + approvals.send_awaiting_notice(reservation_ids)


@shared_task(name="reservations.decline_overdue_approvals")
def decline_overdue_approvals() -> int:
    """Beat, every minute: decline the bookings not approved by their deadline."""
    return len(approvals.decline_overdue())


@shared_task(name="reservations.alert_offline_displays")
def alert_offline_displays() -> int:
    """Beat, every minute: email the admins about room displays not seen for 15 minutes
    during opening hours, once per outage (``displays.alert_offline``)."""
    return displays.alert_offline()


@shared_task(name="reservations.rollup_insights")
def rollup_insights() -> int:
    """Beat, every 15 minutes: rebuild the Insights rollup of yesterday and today so far for
    every location (idempotent: the rows of a day are replaced). Returns the rows written."""
    return rollup.rollup_recent(timezone.now())
