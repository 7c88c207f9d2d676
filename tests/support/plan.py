"""Building blocks of the pull planner's tests: remote events, reservations and links as
the pure planner sees them, and ``bucket`` to read a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calendars.sync.pull import KnownLink, KnownReservation
from integrations.base import RemoteEvent

T = datetime(2030, 1, 7, 9, tzinfo=UTC)


H = timedelta(hours=1)


WINDOW = (T - timedelta(days=7), T + timedelta(days=180))


def ev(id="e1", start=T, end=T + H, **kw) -> RemoteEvent:
    kw.setdefault("version", "v2")
    kw.setdefault("subject", "Board")
    return RemoteEvent(id=id, start=start, end=end, **kw)


def res(id=1, start=T, end=T + H, status="confirmed", source="exchange", title="Board", **kw):
    return KnownReservation(id, start, end, status, title, source, **kw)


def link(rid=1, external_id="e1", ical_uid="", version="v1", push_owed=False):
    return KnownLink(rid, external_id, ical_uid, version, push_owed)


def bucket(plan) -> dict[str, list]:
    return {
        name: [(c.event.id, c.reservation_id) for c in getattr(plan, name)]
        for name in ("create", "update", "cancel", "conflicts", "ignore", "touch", "restore")
        if getattr(plan, name)
    }
