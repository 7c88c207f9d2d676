"""Graph change-notification subscriptions for a room mailbox's events.

A mixin for :class:`~integrations.microsoft.client.MicrosoftClient`, so subscription calls go
through the same ``_send`` plumbing (token, limiter, retries, CA bundle) as event calls.

Graph validates ``notificationUrl`` (and ``lifecycleNotificationUrl``) while it creates the
subscription: it POSTs ``?validationToken=...`` there and needs the token echoed within 10
seconds, so the receiving endpoint must be reachable before ``create_subscription`` is called.
Outlook event subscriptions live at most 10,080 minutes; ``renew_subscription`` PATCHes the
expiry (which also reauthorizes a paused subscription).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from ..base import EventGone
from .timezones import parse_graph_time

MAX_MINUTES = 10080  # Outlook events: the longest lifetime Graph accepts
CHANGE_TYPES = "created,updated,deleted"


@dataclass(frozen=True)
class SubscriptionInfo:
    """What Graph answered about a subscription (never the clientState)."""

    id: str
    resource: str
    expires_at: datetime | None


def graph_expiry(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def capped_expiry(now: datetime, minutes: int) -> datetime:
    """``now + minutes``, never past Graph's maximum (a minute short of it, for clock skew)."""
    return now + timedelta(minutes=min(minutes, MAX_MINUTES - 1))


def _parse_expiry(raw: object) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return parse_graph_time({"dateTime": str(raw), "timeZone": "UTC"})


def _info(payload: dict) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=str(payload.get("id") or ""),
        resource=str(payload.get("resource") or ""),
        expires_at=_parse_expiry(payload.get("expirationDateTime")),
    )


class SubscriptionsMixin:
    """``/subscriptions`` calls; the mailbox names the limiter bucket."""

    def create_subscription(
        self,
        mailbox: str,
        notification_url: str,
        client_state: str,
        expiration: datetime,
        lifecycle_url: str | None = None,
    ) -> SubscriptionInfo:
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": notification_url,
            "resource": f"users/{quote(mailbox, safe='@')}/events",
            "expirationDateTime": graph_expiry(expiration),
            "clientState": client_state,
        }
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        # Not idempotent: a replayed POST would make a second subscription.
        response = self._send("POST", "/subscriptions", mailbox=mailbox, json=body)  # type: ignore[attr-defined]
        return _info(self._check(response, mailbox))  # type: ignore[attr-defined]

    def renew_subscription(
        self, subscription_id: str, expiration: datetime, mailbox: str = ""
    ) -> SubscriptionInfo:
        response = self._send(  # type: ignore[attr-defined]
            "PATCH",
            f"/subscriptions/{quote(subscription_id, safe='')}",
            mailbox=mailbox,
            json={"expirationDateTime": graph_expiry(expiration)},
            idempotent=True,
        )
        return _info(self._check(response, mailbox, event=True))  # type: ignore[attr-defined]

    def reauthorize_subscription(self, subscription_id: str, mailbox: str = "") -> None:
        response = self._send(  # type: ignore[attr-defined]
            "POST",
            f"/subscriptions/{quote(subscription_id, safe='')}/reauthorize",
            mailbox=mailbox,
            idempotent=True,
        )
        self._check(response, mailbox, event=True)  # type: ignore[attr-defined]

    def delete_subscription(self, subscription_id: str, mailbox: str = "") -> None:
        """Delete; a subscription already gone (expired, removed) is success."""
        response = self._send(  # type: ignore[attr-defined]
            "DELETE", f"/subscriptions/{quote(subscription_id, safe='')}", mailbox=mailbox
        )
        try:
            self._check(response, mailbox, event=True)  # type: ignore[attr-defined]
        except EventGone:
            return
