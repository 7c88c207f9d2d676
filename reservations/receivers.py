"""Reactions to this app's own signals: the booking emails, sent by a Celery task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import signals
from .models import REMOTE_SOURCES


def record_change_source(sender, instance, history_instance, **kwargs) -> None:
    """Copy the source the service set on the instance into the historical row."""
    history_instance.change_source = getattr(instance, "_change_source", "") or ""


def _email_receiver(event: str) -> Callable[..., None]:
    def enqueue(sender, reservation_ids: list[int], source: str, **kwargs) -> None:
        if source in REMOTE_SOURCES:  # the calendar provider already told the organizer
            return
        if set(kwargs.get("changes") or ()) == {"source"}:
            return  # kept as a local booking when its calendar was unbound: nothing to tell
        from .tasks import send_reservation_email

        send_reservation_email.delay(event, reservation_ids)

    return enqueue


EMAIL_RECEIVERS = {
    signals.reservation_created: _email_receiver("created"),
    signals.reservation_changed: _email_receiver("changed"),
    signals.reservation_cancelled: _email_receiver("cancelled"),
}


def connect() -> None:
    from simple_history.signals import pre_create_historical_record

    pre_create_historical_record.connect(
        record_change_source, dispatch_uid="reservations.history_source"
    )
    for signal, handler in EMAIL_RECEIVERS.items():
        signal.connect(handler, dispatch_uid=f"reservations.email.{id(signal)}")


@contextmanager
def emails_muted() -> Iterator[None]:
    """Send no booking emails inside this block (used when loading demo data)."""
    for signal, handler in EMAIL_RECEIVERS.items():
        signal.disconnect(handler, dispatch_uid=f"reservations.email.{id(signal)}")
    try:
        yield
    finally:
        connect()
