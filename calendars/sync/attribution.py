"""Attribution: before a pull plans, make sure no event of Reserva's own is taken for a new
remote booking (DESIGN.md: "a pull never takes Reserva's own event for a new remote booking").

The race it closes: a push's create lands in the room's calendar, and a pull (a webhook, on
another worker) reads the new event before the push has saved the event's id on its
``SyncLink``. Graph's ``calendarView/delta`` carries no extended properties, so the event
has no tag either: the plan would file it as a new "Exchange" booking clashing with our own
(a false "Booking conflict" email, later a remote event linked to two reservations).

How it is closed:

- a push (and the bulk export) marks the link ``creating_at`` in a committed transaction of
  its own, *before* sending the create (whose idempotency key the client derives from the
  reservation id, ``creation_key``, so it is not stored), and clears the mark in
  the same save that records the event's id (``calendars.sync.push``). So when a pull has
  read an event, one query (a single statement, so it cannot fall between the two commits)
  sees either the link with the event's id or the mark;
- ``attribute`` then looks at the events the pull cannot attribute (no link by id or
  iCalUId, no tag, no id a create of ours chooses), and only when the room has a create in
  progress or one whose outcome is unknown (a failed push without an event id): Graph's
  events are read by id with our tag expanded, in ``$batch`` GETs of 20. Nothing is read in
  the steady state, and a bulk export's many pending links cost nothing until their batch
  is sent;
- an event a create in flight made (found by its tag or its client-chosen id) is left out
  of this pull: the push records it (the pull must not write that link under the push);
  one whose create failed or whose push died is given its reservation, and the plan links it;
- an untagged event that matches a create in flight elsewhere (personal or strict mode: the
  room's copy of an invitation, which does not carry the organizer's tag) by its times, or
  whose read failed, cannot be told apart yet: the pull is deferred (``CreateInFlight``, a
  transient error: nothing is applied, the cursor stays, the task retries shortly).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from integrations.base import RemoteEvent, TransientError

from .. import locks, remote
from ..models import LinkState, SpaceCalendar, SyncLink


def in_flight_seconds() -> float:
    """A create marked longer ago than this belongs to a push that died (or hangs): its event
    is given to the plan, which links it, instead of being left to that push, and a removal
    no longer waits for it. The locks' TTL: a live push's own job heartbeat and lock are
    renewed within it, and a pull must not wait longer on a dead one than on its lock (a
    300 s window let one killed create defer every pull of its room for five minutes)."""
    return locks.ttl_seconds()


DEFER_SECONDS = 5.0  # how soon a deferred pull runs again
# A removal a pull cannot attribute waits only for creates sent this recently: a live create
# records its event within a second or two. Waiting for every create in flight (the locks'
# TTL) starved a busy room's pulls: Graph reports the removal of any event it never showed.
REMOVAL_WAIT_SECONDS = 10.0


class CreateInFlight(TransientError):
    """An event may be the one a create still in flight is making, and reading it could not
    tell: the pull is retried once the push has recorded it."""


@dataclass(frozen=True)
class PendingCreate:
    """A link whose create was sent (or is being sent) and whose event id is not saved."""

    reservation_id: int
    in_flight: bool  # sent recently by a push that has not failed: it records the event
    in_room: bool  # written in the room's own calendar (so the event carries our tag there)
    start: datetime
    end: datetime
    marked_at: datetime | None = None  # when the create was last sent


def attribute(
    binding: SpaceCalendar, calendar: remote.RemoteCalendar, events: list[RemoteEvent]
) -> list[RemoteEvent]:
    """The pull's events with Reserva's own made recognisable (see the module docstring):
    events of creates in flight left out, those of failed creates tagged. Raises
    ``CreateInFlight`` (transient) when an event cannot be attributed yet, and the read's
    own ProviderError when reading failed."""
    if not events:
        return events
    known_ids, known_uids, pending = _links(binding, events)
    if not pending:
        return events
    in_flight = {rid for rid, p in pending.items() if p.in_flight}
    keys = {calendar.creation_key(rid): rid for rid in pending}
    _defer_removals_of_creates_in_flight(
        binding, calendar, events, known_ids, in_flight, keys, pending
    )

    kept: list[RemoteEvent] = []
    unread: list[RemoteEvent] = []
    for event in events:
        if event.removed or event.id in known_ids or event.ical_uid in known_uids:
            kept.append(event)
            continue
        tag = event.reservation_id
        if tag is None:
            tag = next((rid for key, rid in keys.items() if calendar.made_by_create(event.id, key)),
                       None)  # fmt: skip
        if tag is None:
            unread.append(event)
        elif tag in in_flight:
            continue  # our create in flight made it: its push records the event id
        else:
            kept.append(replace(event, reservation_id=tag))

    read: dict[str, RemoteEvent | None] = {}
    if unread and calendar.reads_tags_by_id:
        read = calendar.read_events([event.id for event in unread])
    for event in unread:
        if calendar.reads_tags_by_id:
            found = read.get(event.id)
            if found is None:
                continue  # deleted since the delta was read: its removal comes next time
            if found.reservation_id is not None:
                if found.reservation_id not in in_flight:
                    kept.append(replace(event, reservation_id=found.reservation_id))
                continue
        clash = _copy_of_create_in_flight(event, pending)
        if clash is not None:
            raise CreateInFlight(
                f"An event in {binding.resource_email} has the times of reservation {clash}, "
                "whose create is in flight; the pull waits for it.",
                code="create_in_flight",
                retry_after=DEFER_SECONDS,
            )
        kept.append(event)
    return kept


def _defer_removals_of_creates_in_flight(
    binding: SpaceCalendar,
    calendar: remote.RemoteCalendar,
    events: list[RemoteEvent],
    known_ids: set[str],
    in_flight: set[int],
    keys: dict[str, int],
    pending: dict[int, PendingCreate],
) -> None:
    """An event of ours deleted remotely before its push saved the event's id comes back as a
    removal of an id nobody knows yet: taken as "removed, never known", it would be skipped
    for good (the cursor moves past it), and the push would then record an event that no
    longer exists: a booking confirmed with no event (found by the convergence run). So a
    removal that may be a create in flight's (Graph: any unknown id, its ids are the server's;
    Google: an id that create chooses) defers the pull until the push has saved the id; the
    next pull then matches it and cancels the booking as for any removal. Only creates sent
    within ``REMOVAL_WAIT_SECONDS`` are waited for; a create's push that died meanwhile makes
    its retry look the event up by tag, and one deleted since is made anew."""
    recent = timezone.now() - timedelta(seconds=REMOVAL_WAIT_SECONDS)
    in_flight = {
        rid for rid in in_flight if (marked := pending[rid].marked_at) and marked >= recent
    }
    if not in_flight:
        return
    for event in events:
        if not event.removed or event.id in known_ids:
            continue
        ours = next((rid for key, rid in keys.items() if calendar.made_by_create(event.id, key)),
                    None)  # fmt: skip
        if ours in in_flight or (ours is None and calendar.reads_tags_by_id):
            raise CreateInFlight(
                f"An event removed from {binding.resource_email} may be the one a create in "
                "flight made; the pull waits for its push to record it.",
                code="create_in_flight",
                retry_after=DEFER_SECONDS,
            )


def _links(
    binding: SpaceCalendar, events: list[RemoteEvent]
) -> tuple[set[str], set[str], dict[int, PendingCreate]]:
    """One query (one statement: a push's commit cannot fall between two reads of it): the
    event ids and iCalUIds the binding's links know, and the creates pending for its space."""
    ids = {event.id for event in events}
    uids = {event.ical_uid for event in events if event.ical_uid and not event.removed}
    room = binding.resource_email.lower()
    rows = SyncLink.objects.filter(
        Q(binding=binding, external_id__in=ids)
        | Q(binding=binding, ical_uid__in=uids)
        | Q(reservation__space_id=binding.space_id, creating_at__isnull=False)
        | Q(binding=binding, external_id="", state=LinkState.FAILED, mailbox__iexact=room)
    ).values_list(
        "reservation_id", "external_id", "ical_uid", "creating_at", "state", "mailbox",
        "reservation__start", "reservation__end", "updated",
    )  # fmt: skip
    fresh = timezone.now() - timedelta(seconds=in_flight_seconds())
    known_ids: set[str] = set()
    known_uids: set[str] = set()
    pending: dict[int, PendingCreate] = {}
    for rid, external_id, ical_uid, creating_at, state, mailbox, start, end, saved in rows:
        if external_id in ids:
            known_ids.add(external_id)
        if ical_uid in uids:
            known_uids.add(ical_uid)
        unsaved = creating_at is not None or (not external_id and state == LinkState.FAILED)
        if not unsaved:
            continue
        pending[rid] = PendingCreate(
            reservation_id=rid,
            in_flight=_in_flight(creating_at, state, saved, fresh),
            in_room=mailbox.lower() == room,
            start=start,
            end=end,
            marked_at=creating_at,
        )
    return known_ids, known_uids, pending


def _in_flight(creating_at: datetime | None, state: str, saved: datetime, fresh: datetime) -> bool:
    """A create sent recently whose push has not failed since. A failed link's retry marks
    it anew without saving the row (so its mark is newer than the failure's save): in flight
    again, and its push, not the pull, records the event."""
    if creating_at is None or creating_at <= fresh:
        return False
    return state != LinkState.FAILED or creating_at > saved


def _copy_of_create_in_flight(event: RemoteEvent, pending: dict[int, PendingCreate]) -> int | None:
    """The reservation whose create in flight elsewhere (a person's or the delegated
    calendar, inviting the room) this untagged event has the times of, if any."""
    for p in pending.values():
        if p.in_flight and not p.in_room and (event.start, event.end) == (p.start, p.end):
            return p.reservation_id
    return None
