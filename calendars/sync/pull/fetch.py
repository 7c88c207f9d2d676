"""What a pull reads of the remote calendar: every page of changes since the cursor
(``read_changes``), and what a delta or a full read leaves out: the events of Reserva
bookings a full read did not return (``missing_from_full_read``) and the removed ones that
were only moved out of view (``moved_out_of_view``). ``read_events`` puts them together for
one pull; ``load_binding`` and ``sync_window`` are what the pull (and the daily
reconciliation) read first."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F

from integrations.base import RemoteEvent, SyncTokenExpired, TransientError
from reservations.models import REMOTE_SOURCES, SLOT_HOLDING_STATUSES

from ... import remote
from ...models import SpaceCalendar, SyncLink, SyncSettings
from .. import attribution

log = logging.getLogger(__name__)

MAX_PAGES = 1000  # a runaway nextLink loop stops here rather than never
MAX_MOVED_LOOKUPS = 20  # removed events of Reserva bookings looked up per pull (Graph), see below


def read_changes(
    calendar: remote.RemoteCalendar, token: str | None, start: datetime, end: datetime
) -> tuple[list[RemoteEvent], str, int]:
    """Every page from ``token`` (None: a full read of [start, end)) to the last one; the
    events, the next cursor (the last page's delta link / sync token) and the page count."""
    events: list[RemoteEvent] = []
    for pages in range(1, MAX_PAGES + 1):
        page = calendar.changes(token, start, end)
        events.extend(page.events)
        if not page.next_page:
            return events, page.sync_token or "", pages
        token = page.next_page
    raise TransientError("Too many pages of changes; the next pull starts over.")


def load_binding(binding_id: int) -> SpaceCalendar | None:
    """The binding with what a pull (or the daily reconciliation) reads of it."""
    return (
        SpaceCalendar.objects.select_related(
            "space__location", "provider__connection", "provider__credential"
        )
        .filter(pk=binding_id)
        .first()
    )


def sync_window(now: datetime) -> tuple[datetime, datetime]:
    """The sync window around ``now`` (``SyncSettings`` past and future days)."""
    sync = SyncSettings.load()
    return (
        now - timedelta(days=sync.sync_past_days),
        now + timedelta(days=sync.sync_future_days),
    )


def read_events(
    binding: SpaceCalendar,
    calendar: remote.RemoteCalendar,
    window: tuple[datetime, datetime],
    *,
    full: bool,
) -> tuple[list[RemoteEvent], str, int, bool]:
    """The events of one pull, the next cursor, the page count, and whether the read was
    full: from the stored cursor, or (``full``, no cursor, or one the provider rejected) ONE
    full read of the window; in-flight creates attributed (``attribution.attribute``), and
    the events a read leaves out added."""
    token = None if full else (binding.sync_token or None)
    try:
        events, cursor, pages = read_changes(calendar, token, *window)
    except SyncTokenExpired:
        log.info("Pull of binding %s: cursor rejected, one full resync", binding.pk)
        token = None
        events, cursor, pages = read_changes(calendar, None, *window)
    events = attribution.attribute(binding, calendar, events)
    absent = missing_from_full_read(binding, events, window) if token is None else []
    events = moved_out_of_view(binding, calendar, [*events, *absent], absent)
    return events, cursor, pages, token is None


def missing_from_full_read(
    binding: SpaceCalendar, events: list[RemoteEvent], window: tuple[datetime, datetime]
) -> list[RemoteEvent]:
    """A full read (no cursor, or one the provider rejected) reports what is in the window,
    never what was deleted: a Reserva booking whose event was deleted (or moved out of the
    window) in Outlook or Google while the cursor was lost would stay confirmed with no
    event, its link claiming the two agree, and nobody would ever push it again. So the
    linked events of the room's Reserva bookings in the window that the read did not return
    are reported removed here; ``moved_out_of_view`` then looks each up by our tag, and one
    that still exists is planned as the move it is, the rest as deleted (cancelled, as an
    incremental pull would). Links with a push owed or a create in flight are left to their
    push. At most ``MAX_MOVED_LOOKUPS`` per pull; the rest wait for the next full read or the
    daily reconciliation (``calendars/sync/reconcile.py``)."""
    present = {event.id for event in events}
    linked = (
        SyncLink.objects.filter(
            binding=binding,
            mailbox__iexact=binding.resource_email,
            creating_at__isnull=True,
            pushed_version__gte=F("reservation__version"),
            reservation__space_id=binding.space_id,
            reservation__status__in=SLOT_HOLDING_STATUSES,
            reservation__start__lt=window[1],
            reservation__end__gt=window[0],
        )
        .exclude(external_id="")
        .exclude(reservation__source__in=REMOTE_SOURCES)
        .order_by("reservation__start", "pk")
        .values_list("external_id", flat=True)
    )
    missing = [external_id for external_id in linked if external_id not in present]
    if len(missing) > MAX_MOVED_LOOKUPS:
        log.info(
            "Pull of binding %s: %s linked events absent from the full read; %s looked at now",
            binding.pk, len(missing), MAX_MOVED_LOOKUPS,
        )  # fmt: skip
    return [
        RemoteEvent(id=external_id, removed=True, status="cancelled")
        for external_id in missing[:MAX_MOVED_LOOKUPS]
    ]


def moved_out_of_view(
    binding: SpaceCalendar,
    calendar: remote.RemoteCalendar,
    events: list[RemoteEvent],
    absent: list[RemoteEvent],
) -> list[RemoteEvent]:
    """Graph's delta reports an event moved out of the sync window as ``@removed``, like a
    deleted one. For a Reserva booking that would cancel the booking its person only moved
    (and leave the event behind). So the removed events of Reserva bookings that hold their
    slot (usually none; at most ``MAX_MOVED_LOOKUPS`` per pull) are looked up by our tag: one
    still there was moved, and is planned as a move (checked by the booking rules, so past
    the horizon it is written back). Google's incremental sync reports such a move as a move,
    so there only the events ``absent`` from a full read are looked up (no request is spent
    on every deletion)."""
    removed = [
        event.id
        for event in events
        if event.removed and (calendar.window_moves_look_removed or event in absent)
    ]
    if not removed:
        return events
    ours = (
        SyncLink.objects.filter(
            binding=binding,
            external_id__in=removed,
            mailbox__iexact=binding.resource_email,
            reservation__status__in=SLOT_HOLDING_STATUSES,
        )
        .exclude(reservation__source__in=REMOTE_SOURCES)
        .values_list("external_id", "reservation_id")[:MAX_MOVED_LOOKUPS]
    )
    found: dict[str, RemoteEvent] = {}
    for external_id, reservation_id in ours:
        event = calendar.find(reservation_id)
        if event is not None and not event.removed and event.id == external_id:
            found[external_id] = event
    if not found:
        return events
    return [found.get(event.id, event) if event.removed else event for event in events]
