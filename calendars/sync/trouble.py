"""Token trouble: pausing a binding's or a person's pushes on a permanent error, alerting once,
and resuming in order once someone reconnects.

- Application credentials refused (secret revoked, consent withdrawn, room calendar gone):
  the binding's status becomes ``paused`` with the plain-words error; its admins are told
  (``calendars.alerts``).
- A person's own token refused (personal mode): the ``UserToken`` becomes ``revoked`` or
  ``expired``; the person is told and sees a banner in the portal.
- A person's address with no mailbox (Exchange Server, personal mode by impersonation): that
  booking's link only; the admins are told once per person (``mailbox_missing``).

In both cases the links stay ``paused``: nothing is lost, the reservation rows still say
what the calendar should show. One email per pause: the email is sent only by the request
that flips the status (a conditional UPDATE), so a hundred failing pushes send one email.
Resuming (``resume_binding``, ``resume_user``) returns the paused, failed and behind links
of that binding or person, oldest reservation first, for the tasks to push again.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F, Q

from integrations.base import ProviderError, TokenRevoked
from reservations.models import Reservation, SyncMailbox

from .. import alerts
from ..models import BindingStatus, LinkState, SpaceCalendar, SyncLink, TokenStatus, UserToken
from .followups import PushReservations

log = logging.getLogger(__name__)

USABLE_TOKEN = (TokenStatus.VALID, TokenStatus.EXPIRING)


def pause_binding(binding_id: int, message: str) -> bool:
    """Pause a binding; True when this call paused it (and so sent the one alert)."""
    flipped = (
        SpaceCalendar.objects.filter(pk=binding_id)
        .exclude(status=BindingStatus.PAUSED)
        .update(status=BindingStatus.PAUSED, last_error=message[:2000])
    )
    if flipped:
        binding = SpaceCalendar.objects.select_related("space", "provider").get(pk=binding_id)
        log.warning("Sync paused for binding %s: %s", binding_id, message)
        transaction.on_commit(lambda: alerts.binding_paused(binding, message), robust=True)
    return bool(flipped)


def pause_token(token_id: int, error: ProviderError | str) -> bool:
    """Mark a person's token unusable; True when this call did it (and so sent the alert)."""
    revoked = isinstance(error, TokenRevoked)
    status = TokenStatus.REVOKED if revoked else TokenStatus.EXPIRED
    flipped = UserToken.objects.filter(pk=token_id, status__in=USABLE_TOKEN).update(status=status)
    if flipped:
        token = UserToken.objects.select_related("user", "provider").get(pk=token_id)
        log.warning("Sync paused for user token %s (%s)", token_id, status)
        transaction.on_commit(lambda: alerts.token_unusable(token), robust=True)
    return bool(flipped)


def push_gave_up(link_id: int, message: str) -> None:
    """A failed push was retried by beat for ``SYNC_PUSH_GIVE_UP_HOURS`` and stopped: tell the
    admins once (the caller is the one update that cleared the link's next attempt)."""
    link = SyncLink.objects.select_related("reservation__space", "binding").get(pk=link_id)
    log.warning("Push of reservation %s given up: %s", link.reservation_id, message)
    transaction.on_commit(lambda: alerts.push_gave_up(link, message), robust=True)


def mailbox_missing(link: SyncLink, reservation: Reservation, message: str) -> bool:
    """A person's address names no mailbox to write their booking in (Exchange Server,
    personal mode by impersonation): the caller pauses this link only, and the admins are
    told once per person and provider, by the push that pauses the first such link (not by
    one that finds it paused already, e.g. after "Resume sync"). True when they were told.
    Two first pushes at once may both tell: two e-mails, never none."""
    if link.state == LinkState.PAUSED:
        return False
    paused_before = (
        SyncLink.objects.filter(
            provider_id=link.provider_id,
            state=LinkState.PAUSED,
            reservation__requested_for_id=reservation.requested_for_id,
            reservation__sync_mailbox=SyncMailbox.USER,
        )
        .exclude(pk=link.pk)
        .exists()
    )
    if paused_before:
        return False
    log.warning("No mailbox for reservation %s's person: %s", reservation.pk, message)
    transaction.on_commit(lambda: alerts.mailbox_missing(link, reservation, message), robust=True)
    return True


def _to_push(link_ids: list[int]) -> PushReservations:
    """The links' reservations, oldest first, for the tasks to push in that order."""
    # Someone acted (reconnected, resumed): pushes that gave up get a new day of retries.
    SyncLink.objects.filter(pk__in=link_ids, state=LinkState.FAILED).update(
        failing_since=None, next_attempt_at=None
    )
    return PushReservations(
        tuple(
            SyncLink.objects.filter(pk__in=link_ids)
            .order_by("reservation__start", "reservation_id")
            .values_list("reservation_id", flat=True)
        )
    )


def _waiting(links) -> list[int]:
    """Links whose remote event is behind: paused, failed, or older than the reservation."""
    return list(
        links.filter(
            Q(state__in=(LinkState.PAUSED, LinkState.FAILED, LinkState.PENDING))
            | Q(pushed_version__lt=F("reservation__version"))
        ).values_list("pk", flat=True)
    )


def resume_binding(binding_id: int) -> PushReservations:
    """Mark the binding ok again; its waiting links' reservations, to push in order."""
    with transaction.atomic():
        updated = SpaceCalendar.objects.filter(pk=binding_id, enabled=True).update(
            status=BindingStatus.OK, last_error=""
        )
        if not updated:
            return PushReservations(())
        links = SyncLink.objects.filter(binding_id=binding_id)
        return _to_push(_waiting(links))


def resume_user(user_id: int, provider_id: int) -> PushReservations:
    """After the person reconnected: their paused links of that provider, to push in order.

    The caller (the Connect page's callback) has stored the new token as ``valid``.
    """
    with transaction.atomic():
        if not UserToken.objects.filter(
            user_id=user_id, provider_id=provider_id, status__in=USABLE_TOKEN
        ).exists():
            return PushReservations(())
        links = SyncLink.objects.filter(
            reservation__requested_for_id=user_id,
            reservation__sync_mailbox=SyncMailbox.USER,
            provider_id=provider_id,
        )
        return _to_push(_waiting(links))
