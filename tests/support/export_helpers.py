"""Helpers for the bulk-export tests (fixtures come from ``tests/calendars/conftest.py``).

Reservations made in bulk (they exist before the export, as when a space is bound after
months of bookings), a binding with a chosen secret, and readers of the room's events by our
tag: through the sandbox's control API, or straight from its state (times in UTC).
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests

from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
    SpaceCalendar,
)
from integrations.sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    default_config,
    merge,
)
from integrations.sandbox.testing import SandboxHandle
from reservations.models import Reservation

ROOM = "atlas@contoso.test"
TAG = "reservareservationid"
_names = itertools.count(1)


def sandbox_config(per_item: float = 0.0, per_request: float = 0.0) -> dict:
    """The default configuration (start_sandbox takes a whole one) with this latency."""
    latency = {"per_request": per_request, "per_item": per_item, "services": {}}
    return merge(default_config(), {"sandbox": {"latency": latency}})


def control(handle: SandboxHandle) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_file)
    return session


def api(handle: SandboxHandle, method: str, path: str, **kwargs):
    response = control(handle).request(
        method, f"{handle.base_url}/_sandbox/api/{path}", timeout=30, **kwargs
    )
    response.raise_for_status()
    return response.json() if response.content else None


def make_binding(handle: SandboxHandle, space, *, secret: str = DEMO_CLIENT_SECRET, room=ROOM):
    n = next(_names)
    connection = ConnectionAlias.objects.create(
        name=f"Sandbox {n}",
        kind=ProviderKind.MICROSOFT,
        authority_url=handle.base_url,
        authorization_url=handle.base_url,
        api_base_url=f"{handle.base_url}/v1.0",
        ca_bundle=str(handle.ca_file),
        timeout_seconds=10,
    )
    credential = CredentialAlias.objects.create(
        name=f"Sandbox app {n}",
        kind=ProviderKind.MICROSOFT,
        tenant_id=DEMO_TENANT_ID,
        client_id=DEMO_CLIENT_ID,
        client_secret=secret,
    )
    provider = CalendarProvider.objects.create(
        name=f"M365 {n}",
        kind=ProviderKind.MICROSOFT,
        connection=connection,
        credential=credential,
        delegated_user_email="reserva-blocker@contoso.test",
    )
    return SpaceCalendar.objects.create(space=space, provider=provider, resource_email=room)


def bulk_reservations(space, user, count: int, *, first: datetime | None = None, **fields):
    """``count`` back-to-back 30-minute reservations from tomorrow, made in one query."""
    start = first or (datetime.now(ZoneInfo("UTC")) + timedelta(days=1)).replace(
        minute=0, second=0, microsecond=0
    )
    rows = [
        Reservation(
            space=space,
            requested_for=user,
            booked_by=user,
            start=start + timedelta(minutes=30 * i),
            end=start + timedelta(minutes=30 * i + 30),
            title=f"Export {i}",
            **fields,
        )
        for i in range(count)
    ]
    for row in rows:  # bulk_create skips save(), which stamps the buffered range
        row.stamp_buffers()
    Reservation.objects.bulk_create(rows, batch_size=1000)
    return list(Reservation.objects.filter(space=space).order_by("start"))


def room_events(handle: SandboxHandle, mailbox: str = ROOM) -> list[dict]:
    return api(handle, "GET", f"microsoft/mailboxes/{mailbox}/events")["value"]


def tag_of(event: dict) -> int | None:
    for prop in event.get("singleValueExtendedProperties") or []:
        if TAG in str(prop.get("id", "")).lower():
            return int(prop["value"])
    return None


def events_by_tag(handle: SandboxHandle, mailbox: str = ROOM) -> Counter:
    return Counter(tag_of(e) for e in room_events(handle, mailbox))


def graph_requests(handle: SandboxHandle) -> dict:
    """The sandbox's counters: per endpoint, status and service."""
    return api(handle, "GET", "counters")


def state_events(handle: SandboxHandle, mailbox: str = ROOM) -> list[dict]:
    """The room's live events straight from the sandbox's state: tag, subject, UTC times."""
    state = handle.sandbox.services["microsoft"]
    with state.lock:
        box = state.mailbox(mailbox)
        events = list(box.live_events())
    rows = []
    for event in events:
        tag = next(
            (int(value) for pid, value in event["_ext"].values() if TAG in str(pid).lower()),
            None,
        )
        rows.append(
            {
                "tag": tag,
                "subject": event.get("subject"),
                "start": event["_start"],
                "end": event["_end"],
                "id": event["id"],
            }
        )
    return rows
