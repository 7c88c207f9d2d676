"""The pure pull planner: ``plan_pull(remote_events, links, reservations, ...) -> PullPlan``.

It compares the remote events of one pull with the links and reservations Reserva knows and
answers what to create, update, cancel, record as a conflict, restore, touch and ignore (the
rules are in the package's docstring, ``calendars/sync/pull/__init__.py``). No I/O, no ORM:
same inputs, same plan. One function per phase, in the order ``plan_pull`` runs them:

1. ``match``: each event to the link and reservation it belongs to (by event id, iCalUId,
   our tag, a deleted recurring master's instances), or to nothing (new);
2. ``resolve``: each matched event to a cancel, an ignore, a touch, a restore, or a move;
3. ``place_moves``: the moves against the slots as they will be (update, conflict, restore);
4. ``new_events``: the unmatched events, in time order (create, conflict, ignore);
5. ``full_resync_sweep``: after a full read, the remote-made bookings whose event is gone.

The daily reconciliation (``calendars/sync/reconcile.py``) matches events the same way
(``index_links``) and reads their times with ``event_times``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from integrations.base import RemoteEvent
from reservations.models import (
    ENDED_STATUSES,
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    ReservationStatus,
)

UTC_ZONE = ZoneInfo("UTC")
L = TypeVar("L")  # a link as a planner sees it: pull's KnownLink, reconcile's LinkFacts


@dataclass(frozen=True)
class KnownLink:
    """What a ``SyncLink`` tells the planner."""

    reservation_id: int
    external_id: str = ""
    ical_uid: str = ""
    remote_version: str = ""
    # A change made in Reserva is not in the event yet (its push waits for a retry): the
    # event's times and title are older than the reservation's, not a remote edit.
    push_owed: bool = False


@dataclass(frozen=True)
class KnownReservation:
    """What a reservation tells the planner (linked ones, and every slot-holding one of the
    space in the window, for the clash check)."""

    id: int
    start: datetime
    end: datetime
    status: str
    title: str = ""
    source: str = ""
    # A Reserva booking whose event is written in the room's calendar: the subject Reserva
    # gives that event (``remote.event_title``; None: not compared), and whether it is the
    # booking's own name (the location shows the public nickname), so a rename can be taken.
    subject: str | None = None
    subject_is_nickname: bool = False
    # The range the booking holds, its setup and cleanup buffers included (None: no buffers).
    buffered_start: datetime | None = None
    buffered_end: datetime | None = None

    @property
    def held(self) -> tuple[datetime, datetime]:
        return (self.buffered_start or self.start, self.buffered_end or self.end)

    @property
    def holds_slot(self) -> bool:
        return self.status in SLOT_HOLDING_STATUSES

    @property
    def remote_made(self) -> bool:
        return self.source in REMOTE_SOURCES


@dataclass(frozen=True)
class Change:
    """One step of the plan. ``reservation_id`` is None for a new reservation; ``clashes``
    names the reservations a conflict collides with."""

    event: RemoteEvent
    start: datetime | None = None
    end: datetime | None = None
    reservation_id: int | None = None
    title: str | None = None  # None: leave the title alone
    clashes: tuple[int, ...] = ()
    reason: str = ""
    # Part of a remote edit of a Reserva booking that cannot be taken (a new subject where the
    # room shows the person's name): once the rest is applied, the event is written back.
    undo: str = ""


@dataclass
class PullPlan:
    create: list[Change] = field(default_factory=list)
    update: list[Change] = field(default_factory=list)
    cancel: list[Change] = field(default_factory=list)
    conflicts: list[Change] = field(default_factory=list)
    ignore: list[Change] = field(default_factory=list)
    # Matched events whose change key / etag moved without anything Reserva shows changing
    # (the room's answer, a description edit): only the link's remote version is recorded.
    touch: list[Change] = field(default_factory=list)
    # Reserva bookings whose remote move or rename cannot be taken (onto a taken slot, a
    # subject that shows the person's name): the event is written back by a push, and the
    # person told why. Moves the booking rules refuse join them when applied (``apply``).
    restore: list[Change] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.create) + len(self.update) + len(self.cancel) + len(self.conflicts)


def event_times(event: RemoteEvent, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The event's [start, end) as Reserva stores it; all-day events run midnight to midnight
    in the location's zone. The clients give an all-day event's bounds as midnights of the
    zone it was written in, converted to UTC; the nominal date is recovered as the UTC date of
    the bound plus 12 hours (right for every zone within UTC-12..UTC+12)."""
    if event.start is None or event.end is None:
        return None, None
    if not event.is_all_day:
        return event.start, event.end
    first = (event.start.astimezone(UTC) + timedelta(hours=12)).date()
    last = (event.end.astimezone(UTC) + timedelta(hours=12)).date()
    if last <= first:
        last = first + timedelta(days=1)
    return (
        datetime.combine(first, datetime.min.time(), tzinfo=zone),
        datetime.combine(last, datetime.min.time(), tzinfo=zone),
    )


def _gone(event: RemoteEvent) -> bool:
    return event.removed or event.status == "cancelled" or event.resource_response == "declined"


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _made_here(reservation: KnownReservation) -> bool:
    """A booking made in Reserva (portal, API, admin) that still holds its slot: its remote
    changes are requests, checked by the booking rules, not facts."""
    return not reservation.remote_made and reservation.holds_slot


NAME_SHOWN = (
    "the room's calendar shows the name of the person the booking is for, so its subject "
    "cannot be changed there"
)


def _retitle(event: RemoteEvent, current: KnownReservation) -> tuple[str | None, str]:
    """A remote rename: (the new title, or None to leave it) and why it is undone, if it is.

    Made in the provider: the subject is the title. Made in Reserva: the subject is derived
    from the booking (``Location.event_title``); when it is the public nickname, the new
    subject becomes the booking's title and nickname; when it is the person's name (and
    email), there is nothing to rename: the subject is written back."""
    if current.remote_made:
        return (event.subject if event.subject != current.title else None), ""
    subject = (event.subject or "").strip()
    if current.subject is None or subject == current.subject.strip():
        return None, ""
    if not current.subject_is_nickname:
        return None, NAME_SHOWN
    if not subject:
        return None, "an event without a subject cannot be taken"
    return subject, ""


def index_links(links: Sequence[L]) -> tuple[dict[str, L], dict[str, L], dict[int, L]]:
    """Links by event id, by iCalUId (only the iCalUIds one link alone has: a recurring
    series' occurrences share theirs) and by reservation id: how an event is matched, here
    and in the daily reconciliation (``calendars/sync/reconcile.py``)."""
    by_id = {link.external_id: link for link in links if link.external_id}
    uid_count = Counter(link.ical_uid for link in links if link.ical_uid)
    by_uid = {
        link.ical_uid: link for link in links if link.ical_uid and uid_count[link.ical_uid] == 1
    }
    by_reservation = {link.reservation_id: link for link in links}
    return by_id, by_uid, by_reservation


Match = tuple[RemoteEvent, int, "KnownLink | None"]  # an event, its reservation, its link


def plan_pull(
    remote_events: Iterable[RemoteEvent],
    links: Iterable[KnownLink],
    reservations: Iterable[KnownReservation],
    *,
    zone: ZoneInfo = UTC_ZONE,
    window: tuple[datetime, datetime] | None = None,
    full: bool = False,
    setup: timedelta = timedelta(),
    cleanup: timedelta = timedelta(),
) -> PullPlan:
    """Decide what one pull changes. Pure: same inputs, same plan.

    ``setup`` and ``cleanup``: the space's buffers (``reservations.buffers``). An event
    collides when its times widened by them meet a booking's buffered range (``held``), so
    an event that leaves the room no time to be cleaned up becomes a conflict too.

    ``full``: the events are everything in ``window`` (a full read), so a remote-made,
    linked, slot-holding reservation in the window whose event is absent was deleted while
    the cursor was lost: it is cancelled.
    """
    links = list(links)
    known = {r.id: r for r in reservations}
    # The last word per event id wins (a page may report an event twice).
    latest: dict[str, RemoteEvent] = {}
    for event in remote_events:
        latest[event.id] = event

    plan = PullPlan()
    matched, new = match(latest.values(), links, known)
    slots = Slots(known, setup, cleanup)
    moves = resolve(matched, known, plan, slots, zone)
    place_moves(moves, known, plan, slots)
    new_events(new, plan, slots, zone, window)
    if full and window is not None:
        full_resync_sweep(links, known, {rid for _, rid, _ in matched}, window, plan)
    return plan


class Slots:
    """Slots as they will be after this pull: start from the slot holders, release what is
    cancelled or moved, then take the new slots one by one (conflicts take none). Keyed by
    reservation id; a new booking takes one under a negative placeholder key."""

    def __init__(
        self, known: dict[int, KnownReservation], setup: timedelta, cleanup: timedelta
    ) -> None:
        self.busy = {r.id: r.held for r in known.values() if r.holds_slot}
        self.setup, self.cleanup = setup, cleanup

    def clashes(self, start: datetime, end: datetime, own: int | None) -> tuple[int, ...]:
        """The holders (other than ``own``) of the slot [start, end) widened by the buffers."""
        start, end = start - self.setup, end + self.cleanup
        return tuple(
            sorted(
                rid
                for rid, (s, e) in self.busy.items()
                if rid != own and _overlaps(start, end, s, e)
            )
        )

    def take(self, key: int, start: datetime, end: datetime) -> None:
        self.busy[key] = (start - self.setup, end + self.cleanup)

    def keep(self, reservation: KnownReservation) -> None:
        self.busy[reservation.id] = reservation.held

    def free(self, key: int) -> None:
        self.busy.pop(key, None)


# -- 1. match


def match(
    events: Iterable[RemoteEvent], links: Sequence[KnownLink], known: dict[int, KnownReservation]
) -> tuple[list[Match], list[RemoteEvent]]:
    """Each event to its reservation and link: by event id, then (outside recurring series,
    whose occurrences share it) by iCalUId, then by our tag; a removed event nothing names
    may be a deleted recurring master, which stands for its instances. The rest are new."""
    by_id, by_uid, by_reservation = index_links(links)
    matched: list[Match] = []
    new: list[RemoteEvent] = []
    for event in events:
        link = by_id.get(event.id)
        if link is None and event.ical_uid and not event.series_id:
            link = by_uid.get(event.ical_uid)
        reservation_id = link.reservation_id if link else None
        if reservation_id is None and event.reservation_id in known:
            reservation_id = event.reservation_id  # ours, though the link lost its event id
            link = by_reservation.get(reservation_id)
        if reservation_id is None and event.removed:
            instances = _instances_of_deleted_master(event, links, known)
            matched.extend(instances)
            if instances:
                continue
        if reservation_id is None or reservation_id not in known:
            new.append(event)
        else:
            matched.append((event, reservation_id, link))
    return matched, new


def _instances_of_deleted_master(
    event: RemoteEvent, links: Sequence[KnownLink], known: dict[int, KnownReservation]
) -> list[Match]:
    """A deleted recurring master (Google): its instances' ids are "<master id>_<time>"."""
    return [
        (
            RemoteEvent(id=other.external_id, removed=True, status="cancelled"),
            other.reservation_id,
            other,
        )
        for other in links
        if other.external_id.startswith(f"{event.id}_") and other.reservation_id in known
    ]


# -- 2. resolve


def resolve(
    matched: Sequence[Match],
    known: dict[int, KnownReservation],
    plan: PullPlan,
    slots: Slots,
    zone: ZoneInfo,
) -> list[Change]:
    """Each matched event to a cancel, an ignore, a touch or a restore (added to ``plan``),
    or to a move or rename, returned to be placed once every slot it frees is free."""
    moves: list[Change] = []
    for event, reservation_id, link in matched:
        move = _resolve_one(event, known[reservation_id], link, plan, slots, zone)
        if move is not None:
            moves.append(move)
    return moves


def _resolve_one(
    event: RemoteEvent,
    current: KnownReservation,
    link: KnownLink | None,
    plan: PullPlan,
    slots: Slots,
    zone: ZoneInfo,
) -> Change | None:
    reservation_id = current.id
    if _gone(event):
        _resolve_removal(event, current, link, plan, slots)
        return None
    ignored = _ignored_because(event, current, link)
    if ignored:
        plan.ignore.append(Change(event, reservation_id=reservation_id, reason=ignored))
        return None
    if link is not None and link.push_owed and current.holds_slot:
        # Reserva's reservation is the truth while its push is owed (as when a push meets
        # a remote edit): the push overwrites the event, whose new change key is noted.
        plan.touch.append(Change(event, reservation_id=reservation_id, reason="a push is owed"))
        return None
    start, end = event_times(event, zone)
    if start is None or end is None:
        plan.ignore.append(Change(event, reservation_id=reservation_id, reason="no times"))
        return None
    title, undo = _retitle(event, current)
    moved = (start, end) != (current.start, current.end)
    retry = current.status == ReservationStatus.CONFLICTED
    if not moved and title is None and not retry:
        if undo:
            plan.restore.append(Change(event, start, end, reservation_id, reason=undo))
        else:
            plan.touch.append(
                Change(event, start, end, reservation_id, reason="nothing shown changed")
            )
        return None
    if moved or retry:
        slots.free(reservation_id)
    return Change(event, start, end, reservation_id, title, reason="changed remotely", undo=undo)


def _resolve_removal(
    event: RemoteEvent,
    current: KnownReservation,
    link: KnownLink | None,
    plan: PullPlan,
    slots: Slots,
) -> None:
    """A removed, cancelled or declined event: its booking is cancelled (and its slot freed)
    unless the event is an earlier one of the booking, or the booking is already over."""
    reservation_id = current.id
    if link is not None and link.external_id and link.external_id != event.id:
        # Found by our tag or id, but the booking's event is another one now: a push
        # made it anew after this one was deleted (Google's next generation of our
        # id). Cancelling on this removal left the new event behind for good.
        plan.ignore.append(Change(event, reservation_id=reservation_id, reason="an earlier event"))
    elif current.holds_slot or current.status == ReservationStatus.CONFLICTED:
        reason = (
            "declined by the room"
            if event.resource_response == "declined"
            else ("deleted in the remote calendar")
        )
        plan.cancel.append(Change(event, reservation_id=reservation_id, reason=reason))
        slots.free(reservation_id)
    else:
        plan.ignore.append(Change(event, reservation_id=reservation_id, reason="already cancelled"))


def _ignored_because(event: RemoteEvent, current: KnownReservation, link: KnownLink | None) -> str:
    """Why a matched, present event changes nothing (our own push coming back, a booking
    over here), or ""."""
    if (
        link is not None
        and link.external_id == event.id
        and event.version
        and (event.version == link.remote_version)
    ):
        return "our own push"
    if current.status in ENDED_STATUSES:  # cancelled, or released as a no-show
        return f"{current.status} here"
    return ""


# -- 3. place moves


def place_moves(
    moves: Sequence[Change], known: dict[int, KnownReservation], plan: PullPlan, slots: Slots
) -> None:
    """Each move onto its new slot, in order: an update when the slot is free; onto a taken
    slot, a Reserva booking keeps its slot and its event goes back there (restore: never
    "conflicted", which would drop the booking's slot for a move nobody could make in the
    portal), and a booking made in the provider becomes a conflict."""
    for change in moves:
        found = slots.clashes(change.start, change.end, change.reservation_id)
        current = known[change.reservation_id]
        if found and _made_here(current):
            slots.keep(current)
            plan.restore.append(replace(change, clashes=found, reason="moved onto a taken slot"))
        elif found:
            plan.conflicts.append(
                Change(
                    change.event,
                    change.start,
                    change.end,
                    change.reservation_id,
                    change.title,
                    found,
                    "moved onto a taken slot",
                )
            )
        else:
            slots.take(change.reservation_id, change.start, change.end)
            plan.update.append(change)


# -- 4. new events


def new_events(
    new: Sequence[RemoteEvent],
    plan: PullPlan,
    slots: Slots,
    zone: ZoneInfo,
    window: tuple[datetime, datetime] | None,
) -> None:
    """The events nothing matched, earliest first: a new booking on a free slot (which it
    takes), a conflict on a taken one; ignored when removed, without times, or outside the
    window."""
    for event in sorted(new, key=lambda e: (e.start or datetime.max.replace(tzinfo=UTC), e.id)):
        if _gone(event) or event.status == "cancelled":
            plan.ignore.append(Change(event, reason="removed, never known"))
            continue
        start, end = event_times(event, zone)
        if start is None or end is None or end <= start:
            plan.ignore.append(Change(event, reason="no times"))
            continue
        if window is not None and not _overlaps(start, end, *window):
            plan.ignore.append(Change(event, start, end, reason="outside the sync window"))
            continue
        found = slots.clashes(start, end, None)
        if found:
            plan.conflicts.append(
                Change(event, start, end, None, event.subject, found, "collides with a booking")
            )
            continue
        # A new slot, under a placeholder key.
        slots.take(-(len(plan.create) + 1), start, end)
        plan.create.append(Change(event, start, end, None, event.subject, reason="new"))


# -- 5. full-resync sweep


def full_resync_sweep(
    links: Sequence[KnownLink],
    known: dict[int, KnownReservation],
    seen: set[int],
    window: tuple[datetime, datetime],
    plan: PullPlan,
) -> None:
    """After a full read of the window: a remote-made booking in the window, linked to an
    event, that still holds its slot (or is conflicted) and whose event the read did not
    return (``seen``) was deleted while the cursor was lost: it is cancelled."""
    for link in links:
        current = known.get(link.reservation_id)
        if (
            current is None
            or link.reservation_id in seen
            or not link.external_id
            or not current.remote_made
            or not (current.holds_slot or current.status == ReservationStatus.CONFLICTED)
            or not _overlaps(current.start, current.end, *window)
        ):
            continue
        gone = RemoteEvent(id=link.external_id, removed=True, status="cancelled")
        plan.cancel.append(
            Change(gone, reservation_id=link.reservation_id, reason="gone from the calendar")
        )
