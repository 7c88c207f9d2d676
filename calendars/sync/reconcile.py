"""Reconciliation: the daily full comparison of a binding's sync window with Reserva, the safety
net behind webhooks and deltas (DESIGN.md "sync engine").

``plan_reconcile(events, links, reservations, ...) -> ReconcilePlan`` is pure, like
``plan.py``: it compares every live event of the room's calendar in the window with the
links and reservations Reserva knows and answers which repairs to make. Its rules:

- an event is matched by ``SyncLink.external_id``, then (outside recurring series) by
  iCalUId, then by our reservation tag (Google's events carry it; for Microsoft the window
  is read as a calendarView that expands it, ``tagged_events``, instead of the change feed);
- **missing**: a slot-holding reservation of the space whose event belongs in the room's
  calendar, with no event in the window: a Reserva-made one is pushed again (its link is
  reset so the push creates the event, looking for our tagged event first); a provider-made
  one is cancelled (the provider wins: the event was deleted there);
- **extra**: an event tagged as ours (or linked) whose reservation is cancelled, gone, in
  another space, or already shown by another event: deleted; an untagged event Reserva does
  not know: imported as the pull would (a new reservation, or a conflict when its slot is
  taken);
- **divergent**: times or title differ: Reserva wins for Reserva-made bookings (pushed
  again; the title compared is the subject Reserva writes, ``remote.event_title``), the
  provider wins for provider-made ones (its times and title are applied);
- left alone: events of conflicted reservations (an administrator resolves them), copies of
  personal- and strict-mode events (they live in another calendar, which the push owns),
  reservations changed in the last ``RECENT_SECONDS`` or whose push is owed (a push or pull
  is on its way: the next run sees the outcome).

``reconcile_binding(binding_id)`` does the I/O: it holds the binding's pull lock (never runs
beside a pull of the same binding; ``busy`` when one runs, and the task tries later), reads
the window with the pull's full read (``pull.read_changes`` without a cursor), plans, applies
(deletes through the room calendar, imports and provider-wins changes through
``reservations.services``, and "push again" by resetting the link: the task then queues the
push task, which does the provider work), records a ``SyncJob`` of kind ``reconcile`` naming
each repair, and emails the admins once when a run repaired more than
``settings.RECONCILE_ALERT_THRESHOLD``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.base import PermanentError, ProviderError, RemoteEvent, TransientError
from reservations import services
from reservations.models import (
    REMOTE_SOURCES,
    SLOT_HOLDING_STATUSES,
    Reservation,
    ReservationStatus,
    SyncMailbox,
)

from .. import alerts, locks, remote
from ..models import (
    BindingStatus,
    JobKind,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    SyncSettings,
)
from . import pull, trouble
from .push import apply_remote_result, ensure_link, record_removed

log = logging.getLogger(__name__)

RECENT_SECONDS = 600  # a change younger than this still has its push or pull on the way
UTC_ZONE = ZoneInfo("UTC")


# -- the pure part ---------------------------------------------------------------------------


class Drift(enum.StrEnum):
    MISSING = "missing"
    EXTRA = "extra"
    DIVERGENT = "divergent"


class Fix(enum.StrEnum):
    PUSH = "push"  # Reserva wins: push the reservation again
    DELETE = "delete"  # delete the remote event
    IMPORT = "import"  # a new reservation from the event, as the pull makes one
    APPLY = "apply"  # the provider wins: its times and title become the reservation's
    CANCEL = "cancel"  # the provider wins: its event is gone, so is the reservation


@dataclass(frozen=True)
class LinkFacts:
    """What a ``SyncLink`` of the binding tells the comparison."""

    reservation_id: int
    external_id: str = ""
    ical_uid: str = ""
    in_room: bool = True  # its event lives in the room's calendar (else another copy's)
    push_owed: bool = False  # a push of a newer version is on its way


@dataclass(frozen=True)
class ReservationFacts:
    """What a reservation tells the comparison. ``subject``: the event's expected subject
    (Reserva-made: what Reserva writes; provider-made: the reservation's title)."""

    id: int
    start: datetime
    end: datetime
    status: str
    subject: str
    remote_made: bool
    in_space: bool = True  # a reservation of the binding's space
    in_room: bool = True  # its event belongs in the room's calendar (sync mailbox "room")
    recent: bool = False  # changed within RECENT_SECONDS

    @property
    def holds_slot(self) -> bool:
        return self.status in SLOT_HOLDING_STATUSES


@dataclass(frozen=True)
class Repair:
    drift: Drift
    fix: Fix
    reason: str
    reservation_id: int | None = None
    event: RemoteEvent | None = None
    start: datetime | None = None
    end: datetime | None = None

    def note(self) -> dict[str, object]:
        """How the SyncJob names it."""
        return {
            "repair": str(self.drift),
            "fix": str(self.fix),
            "reservation": self.reservation_id,
            "event": self.event.id if self.event else "",
            "reason": self.reason,
        }


@dataclass
class ReconcilePlan:
    repairs: list[Repair] = field(default_factory=list)
    in_step: int = 0  # events found matching their reservation
    left_alone: int = 0  # events or reservations skipped by rule (see the module docstring)


def _live(event: RemoteEvent) -> bool:
    return not (
        event.removed or event.status == "cancelled" or event.resource_response == "declined"
    )


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def plan_reconcile(
    events: Iterable[RemoteEvent],
    links: Iterable[LinkFacts],
    reservations: Iterable[ReservationFacts],
    *,
    window: tuple[datetime, datetime],
    zone: ZoneInfo = UTC_ZONE,
) -> ReconcilePlan:
    """Compare a full read of the window with Reserva (rules in the module docstring).
    Pure: same inputs, same plan."""
    links = list(links)
    known = {r.id: r for r in reservations}
    by_id, by_uid, by_reservation = pull.index_links(links)

    plan = ReconcilePlan()
    shown: set[int] = set()  # reservations whose event was found
    latest = {e.id: e for e in events if _live(e)}
    # The event a link names first: of two events of one reservation, it is the one kept.
    for event in sorted(latest.values(), key=lambda e: (e.id not in by_id, e.id)):
        link = by_id.get(event.id)
        if link is None and event.ical_uid and not event.series_id:
            link = by_uid.get(event.ical_uid)
        reservation_id = link.reservation_id if link else event.reservation_id
        if reservation_id is None:
            _unknown_event(plan, event, window, zone)
            continue
        link = link or by_reservation.get(reservation_id)
        _known_event(plan, event, reservation_id, link, known.get(reservation_id), shown, zone)
    _missing_events(plan, known.values(), by_reservation, shown, window)
    return plan


def _unknown_event(plan: ReconcilePlan, event: RemoteEvent, window, zone: ZoneInfo) -> None:
    """An untagged event no link names: imported when it has times in the window."""
    start, end = pull.event_times(event, zone)
    if start is None or end is None or end <= start or not _overlaps(start, end, *window):
        plan.left_alone += 1
        return
    plan.repairs.append(
        Repair(Drift.EXTRA, Fix.IMPORT, "an event Reserva does not know", None, event, start, end)
    )


def _known_event(
    plan: ReconcilePlan,
    event: RemoteEvent,
    reservation_id: int,
    link: LinkFacts | None,
    current: ReservationFacts | None,
    shown: set[int],
    zone: ZoneInfo,
) -> None:
    """An event linked to, or tagged with, a reservation: extra, divergent or in step."""
    if current is None:
        reason = "its reservation no longer exists"
        plan.repairs.append(Repair(Drift.EXTRA, Fix.DELETE, reason, reservation_id, event))
        return
    in_flight = current.recent or (link is not None and link.push_owed)
    elsewhere = not current.in_room or (link is not None and not link.in_room)
    if in_flight or elsewhere or current.status == ReservationStatus.CONFLICTED:
        plan.left_alone += 1  # a push or pull on its way, another calendar's copy, an admin's
        shown.add(reservation_id)
        return
    reason = ""
    if not current.holds_slot:
        reason = f"its reservation is {current.status}"
    elif not current.in_space:
        reason = "its reservation is in another space now"
    elif reservation_id in shown:
        reason = "a second event of one reservation"
    if reason:
        plan.repairs.append(Repair(Drift.EXTRA, Fix.DELETE, reason, reservation_id, event))
        return
    shown.add(reservation_id)
    start, end = pull.event_times(event, zone)
    if start is None or end is None or end <= start:
        plan.left_alone += 1  # nothing to compare (the pull ignores it too)
        return
    moved = (start, end) != (current.start, current.end)
    renamed = event.subject != current.subject
    relinked = link is None or link.external_id != event.id
    if not (moved or renamed or relinked):
        plan.in_step += 1
        return
    what = ", ".join(
        w for w, on in (("times", moved), ("title", renamed), ("event id", relinked)) if on
    )
    if current.remote_made:  # the provider wins (a lost event id: the link is repaired)
        reason = f"{what} differ; the provider's win"
        plan.repairs.append(
            Repair(Drift.DIVERGENT, Fix.APPLY, reason, reservation_id, event, start, end)
        )
    else:
        reason = f"{what} differ; Reserva's win"
        plan.repairs.append(Repair(Drift.DIVERGENT, Fix.PUSH, reason, reservation_id, event))


def _missing_events(
    plan: ReconcilePlan,
    reservations: Iterable[ReservationFacts],
    by_reservation: dict[int, LinkFacts],
    shown: set[int],
    window: tuple[datetime, datetime],
) -> None:
    """Slot-holding reservations of the room with no event in the window."""
    for current in sorted(reservations, key=lambda r: (r.start, r.id)):
        if (
            current.id in shown
            or not current.holds_slot
            or not current.in_space
            or not current.in_room
            or current.recent
            or not _overlaps(current.start, current.end, *window)
        ):
            continue
        link = by_reservation.get(current.id)
        if link is not None and (link.push_owed or not link.in_room):
            plan.left_alone += 1
            continue
        if not current.remote_made:
            reason = "no event in the room's calendar"
            plan.repairs.append(Repair(Drift.MISSING, Fix.PUSH, reason, current.id))
        elif link is not None and link.external_id:
            reason = "its event was deleted in the calendar"
            plan.repairs.append(Repair(Drift.MISSING, Fix.CANCEL, reason, current.id))
        else:
            plan.left_alone += 1  # never had an event here: nothing says it was deleted


# -- reading ---------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    status: str  # succeeded | partial | busy | skipped | paused | failed
    repairs: list[Repair] = field(default_factory=list)
    notes: list[dict[str, object]] = field(default_factory=list)  # one per repair or failure
    failures: int = 0
    push: list[int] = field(default_factory=list)  # reservations the task must push again
    events: int = 0
    detail: str = ""
    alerted: bool = False

    def count(self, *fixes: Fix) -> int:
        return sum(1 for r in self.repairs if r.fix in fixes)


def _read(calendar: remote.RemoteCalendar, window: tuple[datetime, datetime]) -> list:
    """Every event of the window, with our tag: the pull's full read where the change feed
    carries the tag (Google), else one read that expands it (Graph's calendarView)."""
    tagged = calendar.tagged_events(*window)
    if tagged is not None:
        return tagged
    events, _cursor, _pages = pull.read_changes(calendar, None, *window)
    # A series' state (EWS) is no event: its occurrences are in the read.
    return [event for event in events if event.occurrence_ids is None]


def _facts(binding, events: list[RemoteEvent], window, now: datetime):
    """The snapshots the comparison needs: the binding's links named by the events or
    around the window, and the reservations they, the tags and the window name."""
    ids = {e.id for e in events}
    uids = {e.ical_uid for e in events if e.ical_uid}
    tags = {e.reservation_id for e in events if e.reservation_id}
    room = binding.resource_email
    rows = SyncLink.objects.filter(binding=binding).filter(
        Q(external_id__in=ids)
        | Q(ical_uid__in=uids)
        | Q(reservation_id__in=tags)
        | Q(reservation__start__lt=window[1], reservation__end__gt=window[0])
    )
    links = [
        LinkFacts(
            row.reservation_id,
            row.external_id,
            row.ical_uid,
            in_room=row.mailbox.lower() == room.lower(),
            # A push still owes this link a newer version, or failed and is retried: the
            # push repairs it; doing it here too would race it.
            push_owed=row.pushed_version < row.reservation.version
            or row.state in (LinkState.PENDING, LinkState.FAILED, LinkState.PAUSED),
        )
        for row in rows.select_related("reservation")
    ]
    wanted = Q(pk__in=[link.reservation_id for link in links]) | Q(pk__in=tags)
    wanted |= Q(
        space_id=binding.space_id,
        status__in=SLOT_HOLDING_STATUSES,
        start__lt=window[1],
        end__gt=window[0],
    )
    recent = now - timedelta(seconds=RECENT_SECONDS)
    reservations = []
    for r in Reservation.objects.filter(wanted).select_related("space__location", "requested_for"):
        remote_made = r.source in REMOTE_SOURCES
        reservations.append(
            ReservationFacts(
                r.pk,
                r.start,
                r.end,
                r.status,
                r.title if remote_made else remote.event_title(r),
                remote_made,
                in_space=r.space_id == binding.space_id,
                in_room=r.sync_mailbox == SyncMailbox.ROOM,
                recent=r.updated > recent,
            )
        )
    return links, reservations


# -- applying --------------------------------------------------------------------------------


def _reset_link(reservation_id: int, event: RemoteEvent | None) -> bool:
    """Make the next push write the reservation again: over ``event`` when given (an
    update with its current version), else as a create that first looks for our tag.
    Under the link's row lock, as the push takes it; False when a push became owed since
    the read (it repairs the event itself)."""
    link = SyncLink.objects.select_for_update().filter(reservation_id=reservation_id).first()
    if link is None:
        return True  # the push makes the link and creates the event
    if link.pushed_version < Reservation.objects.get(pk=reservation_id).version:
        return False
    if event is not None:
        link.external_id, link.remote_version = event.id, event.version
        link.ical_uid = event.ical_uid or link.ical_uid
    else:
        link.external_id, link.remote_version = "", ""
    link.pushed_version, link.state = 0, LinkState.PENDING
    link.save()
    return True


def _import(binding, repair: Repair, people: dict) -> str:
    event = repair.event
    kwargs = pull.booking_fields(
        binding, event, repair.start, repair.end, event.subject or "", people
    )
    outcome = "imported"
    try:
        row = services.book_from_calendar(**kwargs).reservations[0]
    except services.KEPT_AS_CONFLICT as exc:
        # The same fields, holding no slot; why, in the rule's words (a buffer, a taken slot,
        # a limit of the organizer's).
        row = services.record_conflict(reason=exc.message, **kwargs)
        outcome = "imported as a conflict"
    link, _made = ensure_link(row, binding)
    apply_remote_result(link, event, row.version)
    return f"{outcome}: reservation {row.pk}"


def _apply_remote(binding, repair: Repair, source: str) -> str:
    row = Reservation.objects.select_related("space__location").get(pk=repair.reservation_id)
    title = (repair.event.subject or "")[:255]
    if repair.fix is Fix.CANCEL:
        row = services.cancel(
            actor=None, reservation=row, source=source,
            reason=f"Deleted in the remote calendar ({binding.provider.get_kind_display()}).",
        )[0]  # fmt: skip
        link = SyncLink.objects.filter(reservation=row).first()
        if link is not None:
            record_removed(link, row.version)
        return "cancelled"
    try:
        with transaction.atomic():
            row = services.change(
                actor=None, reservation=row, start=repair.start, end=repair.end,
                source=source, title=title,
            )[0]  # fmt: skip
        outcome = "took the provider's times and title"
    except services.KEPT_AS_CONFLICT as exc:
        # Moved onto a taken slot (or over its person's limit): a conflict, as the pull
        # records it (holds no slot).
        row = services.record_conflict(
            space=binding.space, start=repair.start, end=repair.end, source=source,
            reservation=row, title=title, reason=exc.message,
        )  # fmt: skip
        outcome = "moved onto a taken slot: now a conflict"
    link, _made = ensure_link(row, binding)
    apply_remote_result(link, repair.event, row.version)
    return outcome


def _apply(binding, plan: ReconcilePlan, calendar: remote.RemoteCalendar, result) -> None:
    source = pull.source_of(binding.provider.kind)
    people: dict = {}
    for repair in plan.repairs:
        try:
            if repair.fix is Fix.DELETE:
                calendar.delete(repair.event.id)
                link = SyncLink.objects.filter(
                    reservation_id=repair.reservation_id, external_id=repair.event.id
                ).first()
                if link is not None:
                    record_removed(link, link.reservation.version)
                outcome = "deleted"
            elif repair.fix is Fix.PUSH:
                with transaction.atomic():
                    if not _reset_link(repair.reservation_id, repair.event):
                        continue  # changed meanwhile: its own push is on the way
                result.push.append(repair.reservation_id)
                outcome = "push queued"
            else:
                with transaction.atomic():
                    if repair.fix is Fix.IMPORT:
                        outcome = _import(binding, repair, people)
                    else:
                        outcome = _apply_remote(binding, repair, source)
        except PermanentError:
            raise
        except (ProviderError, services.BookingError) as exc:
            message = getattr(exc, "message", str(exc))
            result.notes.append({**repair.note(), "error": str(message)[:500]})
            result.failures += 1
            continue
        result.repairs.append(repair)
        result.notes.append({**repair.note(), "done": outcome})


# -- the run ---------------------------------------------------------------------------------


def reconcile_binding(binding_id: int) -> ReconcileResult:
    """Compare and repair one binding (see the module docstring). ``busy`` while a pull of
    the binding runs. Raises TransientError after recording it, so the task may retry."""
    binding = pull.load_binding(binding_id)
    if binding is None or not binding.enabled or not binding.provider.is_active:
        return ReconcileResult("skipped", detail="the binding does not sync")
    if binding.status == BindingStatus.PAUSED:
        return ReconcileResult("skipped", detail="sync is paused for this room")
    # A pull requested meanwhile keeps its request: its task waits for this run's lock.
    claim = pull.acquire(binding_id, takes_request=False)
    if claim is None:
        return ReconcileResult("busy", detail="a pull of this binding is running")
    # The lock's TTL is short (a killed worker frees the room within a minute); a full read
    # and its repairs can take longer, so the lock is renewed while the run lives.
    heartbeat = locks.Heartbeat(lambda: pull.renew(binding_id, claim)).start()
    started = timezone.now()
    result = ReconcileResult("failed")
    try:
        sync = SyncSettings.load()
        window = (
            started - timedelta(days=sync.sync_past_days),
            started + timedelta(days=sync.sync_future_days),
        )
        calendar = remote.room_calendar(binding)
        events = _read(calendar, window)
        links, reservations = _facts(binding, events, window, started)
        plan = plan_reconcile(
            events, links, reservations, window=window, zone=binding.space.location.zone
        )
        result = ReconcileResult("succeeded", events=len(events))
        _apply(binding, plan, calendar, result)
        if result.failures:
            result.status = "partial"
    except PermanentError as exc:
        trouble.pause_binding(binding_id, exc.message)
        result.status, result.detail = "paused", exc.message  # the repairs made are kept
    except TransientError as exc:
        result.status, result.detail = "failed", exc.message
        raise
    except Exception:
        result.status, result.detail = "failed", "Unexpected error (see the worker log)."
        raise
    finally:
        heartbeat.stop()
        pull.release(binding_id, claim)
        _record_job(binding_id, result, started)
    threshold = settings.RECONCILE_ALERT_THRESHOLD
    if len(result.repairs) > threshold:
        result.alerted = alerts.reconcile_repaired(binding, result)
    return result


def _record_job(binding_id: int, result: ReconcileResult, started: datetime) -> None:
    status = {
        "succeeded": JobStatus.SUCCEEDED,
        "partial": JobStatus.PARTIAL,
        "paused": JobStatus.PAUSED,
    }.get(result.status, JobStatus.FAILED)
    notes = list(result.notes)
    if result.detail:
        notes.append({"error": result.detail[:500]})
    SyncJob.objects.create(
        kind=JobKind.RECONCILE,
        binding_id=binding_id,
        status=status,
        total=result.events,
        done=result.events,
        created_count=result.count(Fix.IMPORT)
        + sum(1 for r in result.repairs if r.fix is Fix.PUSH and r.drift is Drift.MISSING),
        updated_count=sum(1 for r in result.repairs if r.drift is Drift.DIVERGENT),
        deleted_count=result.count(Fix.DELETE, Fix.CANCEL),
        failed_count=1 if result.status == "failed" else result.failures,
        errors=notes,
        started_at=started,
        heartbeat_at=timezone.now(),
        finished_at=timezone.now(),
    )


def reconcile_slot(binding_id: int, now: datetime) -> datetime:
    """The binding's latest daily slot at or before ``now``: ``RECONCILE_HOUR`` (UTC) plus
    an offset of its own within ``RECONCILE_SPREAD_MINUTES`` (the golden ratio's fractions
    spread any set of ids evenly, and an id keeps its offset as rooms come and go)."""
    spread = max(60, settings.RECONCILE_SPREAD_MINUTES * 60)
    offset = timedelta(seconds=int((binding_id * 0.6180339887498949) % 1 * spread))
    start = now.astimezone(UTC).replace(
        hour=settings.RECONCILE_HOUR, minute=0, second=0, microsecond=0
    )
    slot = start + offset
    return slot if slot <= now else slot - timedelta(days=1)


def due_for_reconcile(now: datetime | None = None) -> list[tuple[int, datetime]]:
    """Beat's tick (every few minutes): each syncing binding whose daily slot has come and
    that has no reconciliation since, with that slot. No task waits in the broker for its
    turn (a Redis ETA past the visibility timeout is delivered again and again), and a day
    missed while beat was down is made up at the next tick."""
    now = now or timezone.now()
    bindings = (
        SpaceCalendar.objects.filter(enabled=True, provider__is_active=True)
        .exclude(status=BindingStatus.PAUSED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    slots = {pk: reconcile_slot(pk, now) for pk in bindings}
    done = set(
        SyncJob.objects.filter(
            kind=JobKind.RECONCILE,
            binding_id__in=slots,
            started_at__gte=min(slots.values(), default=now),
        ).values_list("binding_id", "started_at")
    )
    latest: dict[int, datetime] = {}
    for pk, started in done:
        latest[pk] = max(started, latest.get(pk, started))
    return [(pk, slot) for pk, slot in slots.items() if pk not in latest or latest[pk] < slot]


def reconciled_since(binding_id: int, slot: datetime) -> bool:
    """A reconciliation of the binding started at or after ``slot`` (a second task queued
    by the next tick while the first waited: it has nothing left to do)."""
    return SyncJob.objects.filter(
        kind=JobKind.RECONCILE, binding_id=binding_id, started_at__gte=slot
    ).exists()
