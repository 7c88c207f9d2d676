"""What a pull reads of the remote calendar: every page of changes since the cursor
(``read_changes``), and what a delta or a full read leaves out: the events of Reserva
bookings a full read did not return (``missing_from_full_read``) and the removed ones that
were only moved out of view (``moved_out_of_view``). ``read_events`` puts them together for
one pull; ``load_binding`` and ``sync_window`` are what the pull (and the daily
reconciliation) read first."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef

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
    """The binding with what a pull (or the daily reconciliation) reads of it, and whether
    a push has made an event in its room since the last pull started (``made_since_pull``,
    read in the same query: see ``unreported_events_of_ours``)."""
    made = SyncLink.objects.filter(
        binding=OuterRef("pk"), event_made_at__gte=OuterRef("last_pulled_at")
    )
    return (
        SpaceCalendar.objects.select_related(
            "space__location", "provider__connection", "provider__credential"
        )
        .annotate(made_since_pull=Exists(made))
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
    events = gone_from_series(binding, calendar, events, window)
    events = attribution.attribute(binding, calendar, events)
    if token is None:
        absent = missing_from_full_read(binding, events, window)
    else:
        absent = unreported_events_of_ours(binding, events)
    events = moved_out_of_view(binding, calendar, [*events, *absent], absent)
    return events, cursor, pages, token is None


def gone_from_series(
    binding: SpaceCalendar,
    calendar: remote.RemoteCalendar,
    events: list[RemoteEvent],
    window: tuple[datetime, datetime],
) -> list[RemoteEvent]:
    """Where the feed reports a recurring series by its master (``series_as_masters``:
    Exchange Server), an occurrence deleted in Outlook, or the whole series, never comes
    as a removal of its own: the master comes changed, with the ids of its occurrences now
    (``occurrence_ids``), or removed. So the linked occurrences of such a master that it no
    longer lists (in the window: one outside it is not listed either), and every linked
    occurrence of a removed master, are reported removed here, and the plan cancels them as
    any removal. The series' states themselves are left out: they are no bookings. One
    query, only when the pull read a master or a removal."""
    if not calendar.series_as_masters:
        return events
    masters = {event.id: event for event in events if event.occurrence_ids is not None}
    removed = {event.id for event in events if event.removed}
    kept = [event for event in events if event.occurrence_ids is None]
    if not masters and not removed:
        return kept
    present = {event.id for event in kept}
    rows = (
        SyncLink.objects.filter(binding=binding, series_id__in=[*masters, *removed])
        .exclude(external_id="")
        .values_list("series_id", "external_id", "reservation__start", "reservation__end")
    )
    gone = []
    for series_id, external_id, start, end in rows:
        if external_id in present:
            continue
        master = masters.get(series_id)
        if master is None or (
            external_id not in (master.occurrence_ids or ())
            and start < window[1]
            and end > window[0]
        ):
            gone.append(RemoteEvent(id=external_id, removed=True, status="cancelled"))
    return [*kept, *gone]


def unreported_events_of_ours(
    binding: SpaceCalendar, events: list[RemoteEvent]
) -> list[RemoteEvent]:
    """An event Reserva made after the last pull started should be in this pull's changes
    (made after the cursor). One that is not may have been deleted before this pull, and a
    feed may say nothing of an item made and deleted between two reads: Exchange's
    SyncFolderItems collapses the pair into nothing (a create in flight deleted in Outlook
    before its push saved the id, which the pull in between could not wait on, or deleted
    any time before the next pull). The booking would stay confirmed with no event. So the
    events of such links that the feed did not report are reported removed here, and
    ``moved_out_of_view`` looks each up by our tag: one still there (its create was read by
    the pull before, which started before the id was saved) is planned as it is, the rest as
    deleted. Only when the binding's row says a push made one (``made_since_pull``), so a
    pull with nothing of the sort costs no query."""
    if not getattr(binding, "made_since_pull", False) or binding.last_pulled_at is None:
        return []
    return _absent_links(
        binding,
        {event.id for event in events},
        "made since the last pull and not in its changes",
        # With a push owed too: a feed that hides the deletion (EWS) leaves nothing else to
        # find it, and an update pushed to a deleted event would fail for good.
        event_made_at__gte=binding.last_pulled_at,
    )


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
    return _absent_links(
        binding,
        {event.id for event in events},
        "absent from the full read",
        pushed_version__gte=F("reservation__version"),  # a push owed: left to the push
        reservation__space_id=binding.space_id,
        reservation__start__lt=window[1],
        reservation__end__gt=window[0],
    )


def _absent_links(
    binding: SpaceCalendar, present: set[str], what: str, **filters: Any
) -> list[RemoteEvent]:
    """The linked events of the room's Reserva bookings (narrowed by ``filters``) that are
    not in ``present``, reported removed for ``moved_out_of_view`` to look up: at most
    ``MAX_MOVED_LOOKUPS``, earliest first. A create in flight is left to its push."""
    linked = (
        SyncLink.objects.filter(
            binding=binding,
            mailbox__iexact=binding.resource_email,
            creating_at__isnull=True,
            reservation__status__in=SLOT_HOLDING_STATUSES,
            **filters,
        )
        .exclude(external_id="")
        .exclude(reservation__source__in=REMOTE_SOURCES)
        .order_by("reservation__start", "pk")
        .values_list("external_id", flat=True)
    )
    missing = [external_id for external_id in linked if external_id not in present]
    if len(missing) > MAX_MOVED_LOOKUPS:
        log.info(
            "Pull of binding %s: %s linked events %s; %s looked at now",
            binding.pk, len(missing), what, MAX_MOVED_LOOKUPS,
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
