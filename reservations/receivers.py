"""Reactions to signals: the booking emails (sent by a Celery task), the history's source
column, and a deactivated user's feeds and API tokens revoked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from . import approvals, signals
from .models import REMOTE_SOURCES, Approval, FeedToken


def record_change_source(sender, instance, history_instance, **kwargs) -> None:
    """Copy the source the service set on the instance into the historical row."""
    history_instance.change_source = getattr(instance, "_change_source", "") or ""


def _email_receiver(event: str) -> Callable[..., None]:
    def enqueue(sender, reservation_ids: list[int], source: str, **kwargs) -> None:
        from .tasks import send_reservation_email

        if kwargs.get("no_show"):  # no provider told anyone: Reserva released it
            send_reservation_email.delay("released", reservation_ids)
            return
        changes = kwargs.get("changes") or {}
        decided = changes.get("approval", ("", ""))[1] in (Approval.APPROVED, Approval.DECLINED)
        if event == "created" or changes.get("approval", ("", ""))[1] == Approval.AWAITING:
            # The approvers' request (and, for a booking made in Outlook/Google, the notice
            # to its organizer) when the booking awaits approval (new, or moved to a space
            # that needs it).
            approvals.queue_emails(reservation_ids)
        if source in REMOTE_SOURCES:  # the calendar provider already told the organizer
            return
        if set(changes) == {"source"}:
            return  # kept as a local booking when its calendar was unbound: nothing to tell
        if decided:  # an approver's decision (or the deadline's)
            kind = "approved" if event == "changed" else "declined"
            send_reservation_email.delay(kind, reservation_ids)
            return
        send_reservation_email.delay(event, reservation_ids)

    return enqueue


EMAIL_RECEIVERS = {
    signals.reservation_created: _email_receiver("created"),
    signals.reservation_changed: _email_receiver("changed"),
    signals.reservation_cancelled: _email_receiver("cancelled"),
}


def revoke_access_of_deactivated_user(sender, instance, update_fields=None, **kwargs) -> None:
    """A user saved inactive (admin, ``services.deactivate_user``, the ORM, ``manage.py
    shell``) loses their calendar feeds and OAuth tokens for good, in the same transaction.

    Revoked, not hidden: reactivating the account brings none of them back. Idempotent, so it
    runs on every save of an inactive user rather than trusting a before/after comparison.
    ``QuerySet.update(is_active=False)`` sends no signal; the feed view and the API still
    refuse inactive users for that case.
    """
    if instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    FeedToken.objects.filter(user=instance, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    # Tokens issued to the user, and to the applications (API clients) the user owns.
    theirs = Q(user=instance) | Q(application__user=instance)
    get_refresh_token_model().objects.filter(theirs).delete()
    get_access_token_model().objects.filter(theirs).delete()
    get_id_token_model().objects.filter(theirs).delete()
    get_grant_model().objects.filter(theirs).delete()


def connect() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_save
    from simple_history.signals import pre_create_historical_record

    pre_create_historical_record.connect(
        record_change_source, dispatch_uid="reservations.history_source"
    )
    post_save.connect(
        revoke_access_of_deactivated_user,
        sender=get_user_model(),
        dispatch_uid="reservations.revoke_access_of_deactivated_user",
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
