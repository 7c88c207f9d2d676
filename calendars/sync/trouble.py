"""Token trouble: pausing a binding's or a person's pushes on a permanent error, alerting once,
and resuming in order once someone reconnects.

- Application credentials refused (secret revoked, consent withdrawn, room calendar gone):
  the binding's status becomes ``paused`` with the plain-words error; its admins are told.
- A person's own token refused (personal mode): the ``UserToken`` becomes ``revoked`` or
  ``expired``; the person is told and sees a banner in the portal.

In both cases the links stay ``paused``: nothing is lost, the reservation rows still say
what the calendar should show. One email per pause: the email is sent only by the request
that flips the status (a conditional UPDATE), so a hundred failing pushes send one email.
Resuming (``resume_binding``, ``resume_user``) returns the paused, failed and behind links
of that binding or person, oldest reservation first, for the tasks to push again.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse

from integrations.base import ProviderError, TokenRevoked
from reservations.models import SyncMailbox

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
        transaction.on_commit(lambda: _alert_admins(binding, message), robust=True)
    return bool(flipped)


def pause_token(token_id: int, error: ProviderError | str) -> bool:
    """Mark a person's token unusable; True when this call did it (and so sent the alert)."""
    revoked = isinstance(error, TokenRevoked)
    status = TokenStatus.REVOKED if revoked else TokenStatus.EXPIRED
    flipped = UserToken.objects.filter(pk=token_id, status__in=USABLE_TOKEN).update(status=status)
    if flipped:
        token = UserToken.objects.select_related("user", "provider").get(pk=token_id)
        log.warning("Sync paused for user token %s (%s)", token_id, status)
        transaction.on_commit(lambda: _alert_user(token), robust=True)
    return bool(flipped)


def _admin_emails() -> list[str]:
    people = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    return sorted({p.email for p in people} | {email for _, email in settings.ADMINS})


def email_admins(subject: str, body: str) -> bool:
    """Email the active superusers and ``ADMINS`` (the one way sync alerts reach them);
    False when there is nobody to tell."""
    recipients = _admin_emails()
    if recipients:
        send_mail(f"[Reserva] {subject}", body, None, recipients, fail_silently=True)
    return bool(recipients)


def absolute_url(name: str, *args) -> str:
    """The absolute address of a page (the admin's, the portal's), for an email."""
    try:
        return settings.PUBLIC_BASE_URL + reverse(name, args=args)
    except NoReverseMatch:
        return settings.PUBLIC_BASE_URL + "/"


def _alert_admins(binding: SpaceCalendar, message: str) -> None:
    link = absolute_url("admin:calendars_spacecalendar_change", binding.pk)
    email_admins(
        f"Calendar sync paused: {binding.space.name}",
        "Reserva stopped writing to the calendar of "
        f"{binding.space.name} ({binding.resource_email}, {binding.provider}).\n\n"
        f"Reason: {message}\n\n"
        "Nothing is lost: the changes wait and are sent once the connection works again. "
        "Fix the connection (re-authorize the space, or correct the credential alias), then "
        f'use "Resume sync" on the space calendar:\n{link}\n',
    )


def push_gave_up(link_id: int, message: str) -> None:
    """A failed push was retried by beat for ``SYNC_PUSH_GIVE_UP_HOURS`` and stopped: tell the
    admins once (the caller is the one update that cleared the link's next attempt)."""
    link = SyncLink.objects.select_related("reservation__space", "binding").get(pk=link_id)
    log.warning("Push of reservation %s given up: %s", link.reservation_id, message)
    transaction.on_commit(lambda: _alert_gave_up(link, message), robust=True)


def _alert_gave_up(link: SyncLink, message: str) -> None:
    reservation = link.reservation
    hours = settings.SYNC_PUSH_GIVE_UP_HOURS
    admin = absolute_url("admin:calendars_syncjob_changelist")
    email_admins(
        f"Calendar push failing: {reservation.space.name}",
        f"Reserva has tried for {hours:g} hours to write booking #{reservation.pk} "
        f"({reservation.title or 'untitled'}, {reservation.start:%Y-%m-%d %H:%M} UTC) to the "
        f"calendar of {reservation.space.name} and stopped retrying.\n\n"
        f"Last error: {message}\n\n"
        "The booking itself is safe in Reserva. Once the cause is fixed, select its failed "
        f'push in Sync jobs and use "Retry failed pushes":\n{admin}\n',
    )


def _alert_user(token: UserToken) -> None:
    if not token.user.email:
        return
    send_mail(
        f"[Reserva] Reconnect your {token.provider.get_kind_display()} calendar",
        f"Reserva can no longer write to your calendar ({token.account_email}): the "
        "connection has expired or was revoked.\n\n"
        "Your bookings are safe; their calendar entries wait until you reconnect:\n"
        f"{absolute_url('calendars:connect')}\n",
        None,
        [token.user.email],
    )


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
