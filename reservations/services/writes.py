"""How every write touches rows: the space lock (taken before the reservation's), saving
with history, and signals sent only after the transaction commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.db import transaction

from ..models import Reservation, ReservationStatus, Space

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


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


def _mark_cancelled(targets: Iterable[Reservation], actor, source: str, reason: str) -> None:
    for target in targets:
        target.status = ReservationStatus.CANCELLED
        target.cancel_reason = reason[:255]
        target.version += 1
        _save(target, actor, source, reason)


def _history_reason(reason: str) -> str:
    # simple-history keeps a change reason in 100 characters.
    return reason if len(reason) <= 100 else reason[:99] + "…"
