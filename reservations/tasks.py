"""Celery tasks of the reservations app. Thin: they take ids and call a module that works."""

from __future__ import annotations

from celery import shared_task

from . import approvals, notifications


@shared_task(
    name="reservations.send_reservation_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_reservation_email(event: str, reservation_ids: list[int]) -> int:
    """Email the people concerned about a booking event; returns how many emails were sent."""
    return notifications.send_reservation_email(event, reservation_ids)


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
