"""Deactivating a user: their future bookings are cancelled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from .. import signals
from ..models import SLOT_HOLDING_STATUSES, Reservation, Source, UserDeactivation
from .writes import _mark_cancelled, _send_after_commit

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def deactivate_user(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, reason: str = ""
) -> UserDeactivation:
    """Deactivate an account and cancel its future bookings; the people concerned are emailed
    through the cancellation signal. Recorded as a UserDeactivation row."""
    reason = reason or "The account was deactivated."
    with transaction.atomic():
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
        future = list(
            Reservation.objects.select_for_update()
            .filter(requested_for=user, status__in=SLOT_HOLDING_STATUSES, end__gt=timezone.now())
            .order_by("start")
        )
        _mark_cancelled(future, actor, Source.ADMIN, reason)
        record = UserDeactivation.objects.create(
            user=user, deactivated_by=actor, cancelled_reservations=len(future), reason=reason
        )
    if future:
        _send_after_commit(signals.reservation_cancelled, future, actor, Source.ADMIN)
    return record
