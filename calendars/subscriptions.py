"""Webhook subscriptions per binding: create, renew, remove, and alert when renewal fails.

One Graph change-notification subscription (room mailbox events) or one Google push channel
(the resource calendar) per enabled binding, pointing at ``PUBLIC_BASE_URL`` + the endpoints in
``calendars/webhooks.py``. Webhooks only make pulls prompt: when a subscription cannot be made
or renewed, the binding's scheduled pull still runs, so the failure is recorded and the admins
are told once, and nothing else stops.

- ``ensure(binding_id)``: the binding should have a live subscription; make one if not (or
  remove them when the binding is disabled or paused).
- ``renew_due()``: beat; renews what expires within ``RENEW_BEFORE`` (Graph: PATCH the expiry;
  Google: a new channel, then the old one stopped) and creates missing ones.
- ``remove(binding_id)``: delete the subscription / stop the channel (authorization removed).

One binding's subscriptions are changed by one worker at a time (``calendars/locks.py``): two
workers that both found none would otherwise both create one, and the room would notify twice
for ever. A worker that finds the lock taken waits a little, then raises ``Busy`` (the tasks
retry).

Secrets (clientState, channel token) are made here, stored encrypted, and never logged.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from integrations.base import EventGone, ProviderError
from integrations.google.channels import MAX_TTL_SECONDS
from integrations.microsoft.subscriptions import capped_expiry
from integrations.registry import PROVIDERS, spec

from . import alerts, locks, remote
from .models import (
    BindingStatus,
    ProviderKind,
    SpaceCalendar,
    WebhookStatus,
    WebhookSubscription,
)

log = logging.getLogger(__name__)

# Graph allows 10,080 minutes for events; three days leaves room for two renewals to fail
# before notifications stop, while a lost subscription does not linger for a week.
GRAPH_MINUTES = 3 * 24 * 60
GOOGLE_TTL_SECONDS = MAX_TTL_SECONDS
RENEW_BEFORE = timedelta(hours=24)  # beat runs hourly: many chances before expiry
LIVE = (WebhookStatus.PENDING, WebhookStatus.ACTIVE, WebhookStatus.FAILING)
LOCK_WAIT_SECONDS = 10.0


Busy = locks.Busy  # another worker is changing this binding's subscriptions


def _locked(binding_id: int) -> AbstractContextManager[None]:
    return locks.hold(f"webhook:{binding_id}", wait=LOCK_WAIT_SECONDS)  # heartbeat-renewed TTL


def enabled() -> bool:
    return bool(getattr(settings, "CALENDAR_WEBHOOKS", True))


def endpoint(name: str) -> str:
    """An absolute webhook address (the provider must reach it from the internet)."""
    return settings.PUBLIC_BASE_URL + reverse(f"calendars:{name}")


def webhook_kinds() -> list[str]:
    """The provider kinds with webhooks; other kinds' rows (Exchange Server's streaming
    subscriptions, ``calendars/streams.py``) are not this module's."""
    return [kind for kind, provider in PROVIDERS.items() if provider.webhook_kind]


def _wanted(binding: SpaceCalendar | None) -> bool:
    return (
        enabled()
        and binding is not None
        and binding.enabled
        and binding.provider.is_active
        and binding.status != BindingStatus.PAUSED
        # A kind without webhooks (Exchange Server: its streams are calendars/streams.py's)
        # has no webhook to create.
        and bool(spec(binding.provider.kind).webhook_kind)
    )


def _binding(binding_id: int) -> SpaceCalendar | None:
    return SpaceCalendar.objects.select_related("provider").filter(pk=binding_id).first()


def ensure(binding_id: int, *, replace: bool = False) -> str:
    """Make sure the binding has a live subscription (or none, when it does not sync). With
    ``replace`` (its room or calendar changed), live ones are removed first: they watch the
    old calendar. Returns what was done; raises ``Busy``."""
    with _locked(binding_id):
        return _ensure(binding_id, replace=replace)


def _ensure(binding_id: int, *, replace: bool) -> str:
    binding = _binding(binding_id)
    if not _wanted(binding):
        return "removed" if _remove(binding_id) else "not wanted"
    assert binding is not None
    if replace:
        _remove(binding_id)
    live = list(binding.webhook_subscriptions.filter(status__in=LIVE, kind__in=webhook_kinds()))
    soon = timezone.now() + RENEW_BEFORE
    if any(s.status == WebhookStatus.ACTIVE and s.expires_at and s.expires_at > soon for s in live):
        return "exists"
    if live:
        return _renew(live[0])
    try:
        create(binding)
    except ProviderError as exc:
        record_binding_error(binding, f"Webhook could not be created: {exc.message}")
        return "failed"
    recovered(binding)
    return "created"


def create(binding: SpaceCalendar) -> WebhookSubscription:
    """A new subscription / channel for the binding; raises ProviderError."""
    calendar = remote.room_calendar(binding)
    secret = secrets.token_urlsafe(32)
    if binding.provider.kind == ProviderKind.MICROSOFT:
        # Graph validates both URLs during this call; the row is saved when the id is known.
        info = calendar.client.create_subscription(
            calendar.ref.mailbox,
            endpoint("webhook_microsoft"),
            secret,
            capped_expiry(timezone.now(), GRAPH_MINUTES),
            lifecycle_url=endpoint("webhook_microsoft_lifecycle"),
        )
        sub = WebhookSubscription.objects.create(
            binding=binding,
            kind=ProviderKind.MICROSOFT,
            remote_id=info.id,
            secret=secret,
            status=WebhookStatus.ACTIVE,
            expires_at=info.expires_at,
        )
    else:
        # Google's sync message may arrive before watch answers: the row exists first.
        sub = WebhookSubscription.objects.create(
            binding=binding,
            kind=ProviderKind.GOOGLE,
            remote_id=f"reserva-{binding.pk}-{uuid.uuid4().hex}",
            secret=secret,
            status=WebhookStatus.PENDING,
        )
        try:
            info = calendar.client.watch(
                calendar.ref.calendar_id,
                sub.remote_id,
                endpoint("webhook_google"),
                secret,
                GOOGLE_TTL_SECONDS,
            )
        except ProviderError as exc:
            sub.status, sub.last_error = WebhookStatus.STOPPED, exc.message
            sub.save(update_fields=["status", "last_error"])
            raise
        sub.resource_id = info.resource_id
        sub.expires_at = info.expires_at
        sub.status = WebhookStatus.ACTIVE
        sub.save(update_fields=["resource_id", "expires_at", "status"])
    log.info("Webhook %s created for binding %s", sub.pk, binding.pk)
    return sub


def renew(subscription_id: int) -> str:
    """Extend one subscription (Graph) or replace its channel (Google); alert on failure.
    Raises ``Busy``."""
    binding_id = (
        WebhookSubscription.objects.filter(pk=subscription_id)
        .values_list("binding_id", flat=True)
        .first()
    )
    if binding_id is None:
        return "gone"
    with _locked(binding_id):
        sub = (
            WebhookSubscription.objects.select_related("binding__provider")
            .filter(pk=subscription_id, status__in=LIVE)
            .first()
        )
        return _renew(sub) if sub is not None else "gone"


def _renew(sub: WebhookSubscription) -> str:
    binding = sub.binding
    if not _wanted(binding):
        _remove(binding.pk)
        return "removed"
    try:
        if sub.kind == ProviderKind.MICROSOFT:
            client = remote.room_calendar(binding).client
            try:
                info = client.renew_subscription(
                    sub.remote_id,
                    capped_expiry(timezone.now(), GRAPH_MINUTES),
                    mailbox=binding.resource_email,
                )
            except EventGone:
                # Expired or removed at Graph: a PATCH cannot bring it back; make a new one.
                _stop_row(sub, "Gone at the provider; replaced.")
                create(binding)
                recovered(binding)
                return "recreated"
            sub.expires_at = info.expires_at or sub.expires_at
        else:
            create(binding)  # the new channel first, so no change goes unnoticed
            _stop_remote(sub)
            recovered(binding)
            return "replaced"
    except ProviderError as exc:
        _renewal_failed(sub, exc)
        return "failed"
    sub.status, sub.last_error, sub.alerted_at = WebhookStatus.ACTIVE, "", None
    sub.renewed_at = timezone.now()
    sub.save(update_fields=["expires_at", "status", "last_error", "alerted_at", "renewed_at"])
    recovered(binding)
    return "renewed"


def renew_due(now: datetime | None = None) -> dict[str, int]:
    """Beat: renew what expires soon, retry failing ones, create missing ones."""
    now = now or timezone.now()
    outcomes: dict[str, int] = {}
    ours = WebhookSubscription.objects.filter(status__in=LIVE, kind__in=webhook_kinds())
    due = ours.filter(Q(expires_at__lte=now + RENEW_BEFORE) | Q(status=WebhookStatus.FAILING))
    off = ours.filter(Q(binding__enabled=False) | Q(binding__provider__is_active=False))

    def count(outcome: str, n: int = 1) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + n

    for binding_id in set(off.values_list("binding_id", flat=True)):
        try:
            count("removed", remove(binding_id))
        except Busy:
            count("busy")  # another worker has it in hand; the next beat looks again
    for pk in list(due.values_list("pk", flat=True)):
        try:
            count(renew(pk))
        except Busy:
            count("busy")
    if enabled():
        missing = (
            SpaceCalendar.objects.filter(
                enabled=True, provider__is_active=True, provider__kind__in=webhook_kinds()
            )
            .exclude(status=BindingStatus.PAUSED)
            .exclude(webhook_subscriptions__status__in=LIVE)
        )
        for pk in list(missing.values_list("pk", flat=True)):
            try:
                count(ensure(pk))
            except Busy:
                count("busy")
    return outcomes


def remove(binding_id: int) -> int:
    """Delete every live subscription of the binding at the provider; returns how many.
    Raises ``Busy``."""
    with _locked(binding_id):
        return _remove(binding_id)


def _remove(binding_id: int) -> int:
    subs = list(
        WebhookSubscription.objects.select_related("binding__provider").filter(
            binding_id=binding_id, status__in=LIVE, kind__in=webhook_kinds()
        )
    )
    for sub in subs:
        _stop_remote(sub)
    return len(subs)


def handle_lifecycle(subscription_id: int, event: str) -> str:
    """A Graph lifecycle notification, after verification (``calendars/webhooks.py``)."""
    sub = WebhookSubscription.objects.filter(pk=subscription_id).first()
    if sub is None:
        return "gone"
    if event == "reauthorizationRequired":
        return renew(sub.pk)  # a renewing PATCH also reauthorizes
    if event == "subscriptionRemoved":
        _stop_row(sub, "Removed by the provider; replaced.")
        return ensure(sub.binding_id)
    return "ignored"


# -- helpers ---------------------------------------------------------------------------------


def _stop_row(sub: WebhookSubscription, note: str = "") -> None:
    sub.status = WebhookStatus.STOPPED
    sub.last_error = note
    sub.save(update_fields=["status", "last_error"])


def _stop_remote(sub: WebhookSubscription) -> None:
    """Delete / stop at the provider, best effort: a subscription that cannot be deleted
    expires by itself, and its notifications are refused once the row is stopped."""
    note = ""
    try:
        client = remote.room_calendar(sub.binding).client
        if sub.kind == ProviderKind.MICROSOFT:
            client.delete_subscription(sub.remote_id, mailbox=sub.binding.resource_email)
        elif sub.resource_id:
            client.stop_channel(sub.remote_id, sub.resource_id)
    except ProviderError as exc:
        note = f"Could not be deleted at the provider ({exc.message}); it will expire."
        log.warning("Webhook %s could not be deleted remotely", sub.pk)
    _stop_row(sub, note)


def record_binding_error(binding: SpaceCalendar, message: str, *, source: str = "Webhook") -> None:
    """``message`` (which starts with ``source``: "Webhook", "Streaming") as the binding's
    last error: the room is still polled, and the next success clears it."""
    text = f"{message} Polling continues."
    SpaceCalendar.objects.filter(pk=binding.pk).update(last_error=text)
    log.warning("%s trouble for binding %s", source, binding.pk)


def recovered(binding: SpaceCalendar, *, source: str = "Webhook") -> None:
    """Clear a notification error of ``source`` on the binding (and only that error)."""
    SpaceCalendar.objects.filter(pk=binding.pk, last_error__startswith=source).update(last_error="")


def _renewal_failed(sub: WebhookSubscription, exc: ProviderError) -> None:
    message = f"Webhook renewal failed: {exc.message}"
    sub.status, sub.last_error = WebhookStatus.FAILING, exc.message
    first = sub.alerted_at is None
    if first:
        sub.alerted_at = timezone.now()
    sub.save(update_fields=["status", "last_error", "alerted_at"])
    record_binding_error(sub.binding, message)
    if first:
        alerts.webhook_failing(sub.binding, message)
