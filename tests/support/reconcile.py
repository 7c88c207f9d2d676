"""Running the daily reconciliation in a test: ``settle`` (what happened is older than
its grace period), ``book`` and ``run``."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from calendars.models import SyncLink
from calendars.sync import reconcile
from calendars.sync.push import push_reservation
from reservations import services
from reservations.models import Reservation
from tests.support.pull import at


def settle() -> None:
    """What happened so far is older than the reconciliation's grace period."""
    Reservation.objects.update(updated=timezone.now() - timedelta(hours=1))


def book(binding, user, day: int, hour: int, capture) -> Reservation:
    with capture(execute=True):  # the push task runs (eagerly) after the commit
        row = services.book(
            actor=user, space=binding.space, start=at(day, hour), end=at(day, hour + 1)
        ).reservations[0]
    assert SyncLink.objects.get(reservation=row).external_id, "the push did not run"
    return row


def run(binding_id: int, capture) -> reconcile.ReconcileResult:
    """Reconcile, then run the pushes it asked for (as the task queues them)."""
    with capture(execute=True):
        result = reconcile.reconcile_binding(binding_id)
        for reservation_id in result.push:
            push_reservation(reservation_id)
    return result
