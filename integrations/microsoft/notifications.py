"""Parse and verify Microsoft Graph change and lifecycle notifications.

Plain values in, dataclasses out, no ORM: ``calendars/webhooks.py`` looks the subscription up
and passes the stored clientState to :func:`client_state_matches`.

A notification POST is ``{"value": [item, ...]}``; an item names its ``subscriptionId``, the
``clientState`` given at creation, and either a ``changeType`` (created/updated/deleted) or,
for lifecycle notifications, a ``lifecycleEvent`` (reauthorizationRequired, missed,
subscriptionRemoved). Anything else is malformed and refused whole.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

MAX_ITEMS = 100  # Graph batches notifications, but never this many in one POST
MAX_TOKEN_LENGTH = 2048
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "missed", "subscriptionRemoved"})


class MalformedNotification(ValueError):
    """The body is not a Graph notification; the message is safe to log (no values)."""


@dataclass(frozen=True)
class GraphNotification:
    subscription_id: str
    client_state: str
    change_type: str = ""  # change notifications
    lifecycle_event: str = ""  # lifecycle notifications
    resource: str = ""


def validation_token(query: dict[str, str] | None) -> str | None:
    """The handshake token Graph sends when it creates a subscription, or None.

    Too long a token is treated as absent (the caller then refuses a bodiless POST)."""
    token = (query or {}).get("validationToken")
    if token is None or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def _text(item: dict, key: str, *, required: bool = True, limit: int = 1024) -> str:
    value = item.get(key)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise MalformedNotification(f"notification item without a usable {key}")
    return value


def parse(body: bytes) -> list[GraphNotification]:
    """The items of a notification POST; raises :class:`MalformedNotification`."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedNotification("body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
        raise MalformedNotification("body has no value list")
    items = payload["value"]
    if not items or len(items) > MAX_ITEMS:
        raise MalformedNotification("empty or oversized value list")
    parsed: list[GraphNotification] = []
    for item in items:
        if not isinstance(item, dict):
            raise MalformedNotification("notification item is not an object")
        lifecycle = _text(item, "lifecycleEvent", required=False, limit=64)
        change = (
            _text(item, "changeType", required=not lifecycle, limit=64) if not lifecycle else ""
        )
        if lifecycle and lifecycle not in LIFECYCLE_EVENTS:
            raise MalformedNotification("unknown lifecycle event")
        if change and not set(change.split(",")) <= CHANGE_TYPES:
            raise MalformedNotification("unknown change type")
        parsed.append(
            GraphNotification(
                subscription_id=_text(item, "subscriptionId", limit=200),
                # Missing clientState is not malformed: it simply cannot match ours.
                client_state=_text(item, "clientState", required=False, limit=256),
                change_type=change,
                lifecycle_event=lifecycle,
                resource=_text(item, "resource", required=False, limit=2048),
            )
        )
    return parsed


def client_state_matches(expected: str, given: str) -> bool:
    """Constant-time comparison, so timing says nothing about the stored secret."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
