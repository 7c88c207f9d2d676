"""Google Calendar push channels: ``events.watch`` and ``channels.stop``.

A mixin for :class:`~integrations.google.client.GoogleClient`, so these calls go through the
same ``_send`` plumbing (token, 403 rate-limit backoff, limiter, CA bundle).

Channels cannot be renewed: before one expires, watch again with a new channel id and stop the
old one. Google sends a ``sync`` message as soon as the channel exists (possibly before
``watch`` answers), so the receiver must already know the channel id and token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..base import EventGone

MAX_TTL_SECONDS = 604800  # Google's default (and usual maximum) for calendar channels


@dataclass(frozen=True)
class ChannelInfo:
    """What Google answered about a channel (never its token)."""

    id: str
    resource_id: str
    expires_at: datetime | None


def _expiry(raw: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(raw)) / 1000, UTC)
    except (TypeError, ValueError):
        return None


class ChannelsMixin:
    """``events.watch`` / ``channels.stop`` for a calendar, acting as the configured user."""

    def watch(
        self, calendar_id: str, channel_id: str, address: str, token: str, ttl: int
    ) -> ChannelInfo:
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(min(int(ttl), MAX_TTL_SECONDS))},
        }
        path = f"{self._calendar(calendar_id)}/events/watch"  # type: ignore[attr-defined]
        response = self._send("POST", path, json=body)  # type: ignore[attr-defined]
        payload = self._check(response, calendar_id, None)  # type: ignore[attr-defined]
        return ChannelInfo(
            id=str(payload.get("id") or channel_id),
            resource_id=str(payload.get("resourceId") or ""),
            expires_at=_expiry(payload.get("expiration")),
        )

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Stop; a channel Google no longer knows (expired, stopped) is success."""
        response = self._send(  # type: ignore[attr-defined]
            "POST", "/channels/stop", json={"id": channel_id, "resourceId": resource_id}
        )
        try:
            self._check(response, "", None, event=True)  # type: ignore[attr-defined]
        except EventGone:
            return
