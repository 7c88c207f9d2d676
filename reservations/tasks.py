"""Celery tasks of the reservations app. Thin: they take ids and call a module that works."""

from __future__ import annotations

from celery import shared_task

from . import notifications


@shared_task(
    name="reservations.send_reservation_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_reservation_email(event: str, reservation_ids: list[int]) -> int:
    """Email the people concerned about a booking event; returns how many emails were sent."""
    return notifications.send_reservation_email(event, reservation_ids)
