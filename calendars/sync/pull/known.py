"""What Reserva knows of the events of one pull: the planner's links and reservations, read
from the database (``read_known``), each reservation as the planner sees it (``snapshot``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import BooleanField, ExpressionWrapper, F, Q

from integrations.base import RemoteEvent
from reservations.models import (
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    EventTitle,
    Reservation,
    SyncMailbox,
)

from ... import remote
from ...models import SpaceCalendar, SyncLink
from .plan import KnownLink, KnownReservation


def read_known(
    binding: SpaceCalendar,
    events: Sequence[RemoteEvent],
    window: tuple[datetime, datetime],
    full: bool,
) -> tuple[list[KnownLink], list[KnownReservation]]:
    """The links and reservations the plan needs: every link of the binding whose event is
    named in the pull (or all of them in a full resync), the reservations our tag names, and
    the slot holders of the space around the events' times."""
    ids = {e.id for e in events}
    uids = {e.ical_uid for e in events if e.ical_uid}
    tags = {e.reservation_id for e in events if e.reservation_id}
    links_qs = SyncLink.objects.filter(binding=binding)
    if not full:
        named = Q(external_id__in=ids) | Q(ical_uid__in=uids) | Q(reservation_id__in=tags)
        for event in events:
            if event.removed:  # a deleted recurring master names its instances by prefix
                named |= Q(external_id__startswith=f"{event.id}_")
        links_qs = links_qs.filter(named)
    # Only for events in the room's calendar, the very event the owed push writes (in
    # personal and strict mode the room's copy follows another event, and the pull keeps
    # applying its changes).
    owed = Q(pushed_version__lt=F("reservation__version"), mailbox__iexact=binding.resource_email)
    links = [
        KnownLink(row.reservation_id, row.external_id, row.ical_uid, row.remote_version, row.owed)
        for row in links_qs.annotate(owed=ExpressionWrapper(owed, BooleanField())).only(
            "reservation_id", "external_id", "ical_uid", "remote_version"
        )
    ]
    times = [t for e in events for t in (e.start, e.end) if t is not None]
    around = Q(pk__in=[link.reservation_id for link in links]) | Q(pk__in=tags)
    if times:
        low, high = min(times) - timedelta(days=1), max(times) + timedelta(days=1)
        around |= Q(status__in=SLOT_HOLDING_STATUSES, start__lt=high, end__gt=low)
    if full:
        around |= Q(status__in=SLOT_HOLDING_STATUSES, start__lt=window[1], end__gt=window[0])
    rows = Reservation.objects.filter(space_id=binding.space_id).filter(around)
    rows = rows.select_related("space__location", "requested_for")
    return links, [snapshot(r) for r in rows]


def snapshot(row: Reservation) -> KnownReservation:
    """What the planner needs of a reservation. For a Reserva booking written in the room's
    calendar, the subject its event has (a different one is a remote rename); the room's
    copy of an event in a person's or the delegated calendar gets its subject from there (an
    Exchange room may even prefix the organizer's name), so it is not compared."""
    ours = row.source not in REMOTE_SOURCES and row.sync_mailbox == SyncMailbox.ROOM
    return KnownReservation(
        row.pk, row.start, row.end, row.status, row.title, row.source,
        subject=remote.event_title(row) if ours else None,
        subject_is_nickname=row.space.location.event_title == EventTitle.PUBLIC_NICKNAME,
        buffered_start=row.buffered_start, buffered_end=row.buffered_end,
    )  # fmt: skip
