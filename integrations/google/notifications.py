"""Parse and verify Google Calendar push notifications (``events.watch`` channels).

Plain values in, dataclasses out, no ORM. A push is a bodiless POST whose ``X-Goog-*`` headers
say everything: the channel id and the token we gave it, the resource state (``sync`` right
after ``watch``; ``exists`` / ``not_exists`` after a change) and a message number that grows
with every message on the channel (so a number already seen is a replay).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

STATES = frozenset({"sync", "exists", "not_exists"})
MAX_HEADER = 512


class MalformedNotification(ValueError):
    """Not a Google push notification; the message is safe to log (no values)."""


@dataclass(frozen=True)
class PushNotification:
    channel_id: str
    token: str
    resource_state: str
    message_number: int
    resource_id: str

    @property
    def is_sync(self) -> bool:
        """The handshake message: the channel works, nothing changed."""
        return self.resource_state == "sync"


def _header(headers: Mapping[str, str], name: str, *, required: bool = True) -> str:
    value = headers.get(name) or ""
    if len(value) > MAX_HEADER or (required and not value):
        raise MalformedNotification(f"missing or oversized {name}")
    return value


def parse(headers: Mapping[str, str]) -> PushNotification:
    """Read a push from its headers (case-insensitive mapping, e.g. Django's
    ``request.headers``); raises :class:`MalformedNotification`."""
    state = _header(headers, "X-Goog-Resource-State")
    if state not in STATES:
        raise MalformedNotification("unknown resource state")
    raw_number = _header(headers, "X-Goog-Message-Number")
    if not raw_number.isascii() or not raw_number.isdigit() or len(raw_number) > 18:
        raise MalformedNotification("message number is not a number")
    return PushNotification(
        channel_id=_header(headers, "X-Goog-Channel-ID"),
        # Missing token is not malformed: it simply cannot match ours.
        token=_header(headers, "X-Goog-Channel-Token", required=False),
        resource_state=state,
        message_number=int(raw_number),
        resource_id=_header(headers, "X-Goog-Resource-ID", required=False),
    )


def token_matches(expected: str, given: str) -> bool:
    """Constant-time comparison, so timing says nothing about the stored token."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
