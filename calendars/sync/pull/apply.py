"""Applying a pull's plan: ``apply_plan`` reads what Reserva knows of the events, plans
(``plan.plan_pull``) and applies the plan in one transaction with the new cursor, one
function per change kind (``Applier``: ``cancel``, ``update``, ``create``, ``touch``,
``restore_planned``; conflicts in ``conflicts.record_conflicts``), through the booking
service: ``reservations.batch`` for bookings made in the provider for nobody in Reserva,
``reservations.services`` one by one for the rest, so every rule holds for pulled bookings
too. After the commit the people concerned are told (``calendars.alerts.notify_pull``) and
the pushes that write refused edits back are queued."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from integrations.base import RemoteEvent
from reservations import batch, services
from reservations.models import REMOTE_SOURCES, Reservation, ReservationStatus, SyncMailbox

from ... import alerts, remote
from ...models import SpaceCalendar
from ..followups import PushReservations
from . import conflicts
from .fields import booking_fields, new_booking, source_of
from .known import read_known
from .links import CROSSED, Links, owe_push, push_landed
from .plan import Change, PullPlan, plan_pull
from .result import PullResult, PullStatus

log = logging.getLogger(__name__)


def apply_plan(
    binding: SpaceCalendar,
    events: list[RemoteEvent],
    cursor: str,
    *,
    full: bool,
    window: tuple[datetime, datetime],
) -> PullResult:
    """Plan and apply in one transaction, storing the new cursor with the changes."""
    result = PullResult(PullStatus.SUCCEEDED, events=len(events), full=full)
    if not events and not full:
        result.cursor = cursor  # saved with the lock's release: one query fewer
        return result
    space, location = binding.space, binding.space.location
    links, reservations = read_known(binding, events, window, full)
    plan = plan_pull(
        events, links, reservations, zone=location.zone, window=window, full=full,
        setup=space.setup, cleanup=space.cleanup,
    )  # fmt: skip
    _log_plan(binding.pk, plan)
    with transaction.atomic():
        run = Applier(binding, plan, result)
        run.cancel()
        run.update()
        conflicts.record_conflicts(run)
        run.create()
        run.writes.flush()  # before the touched links are read (``push_landed``)
        run.touch({link.reservation_id for link in links if link.push_owed})
        run.restore_planned()
        result.ignored += len(plan.ignore)
        run.writes.flush()
        SpaceCalendar.objects.filter(pk=binding.pk).update(sync_token=cursor)
        notices, restores = run.notices, run.restores
        if notices:
            transaction.on_commit(lambda: alerts.notify_pull(binding.pk, notices), robust=True)
        if restores:  # the tasks queue them once this commits
            result.next = (*result.next, PushReservations(tuple(restores)))
    return result


def _batch_outcomes(changes: Sequence, outcomes_of) -> dict[int, batch.Outcome]:
    """A batch write's outcome per change (by the change's identity); no call for none."""
    if not changes:
        return {}
    return dict(zip([id(c) for c in changes], outcomes_of(changes), strict=True))


class Applier:
    """One pull's plan applied, phase by phase, inside the pull's transaction: what it wrote
    is counted in ``result``, who must be told in ``notices``, the pushes owed after the
    commit in ``restores``, and the links it records go through ``writes`` (``Links``)."""

    def __init__(self, binding: SpaceCalendar, plan: PullPlan, result: PullResult) -> None:
        self.binding, self.plan, self.result = binding, plan, result
        self.space = binding.space
        self.source = source_of(binding.provider.kind)
        self.provider = binding.provider.get_kind_display()
        self.notices: list[tuple] = []  # (kind, reservation id, clash ids[, detail])
        self.restores: list[int] = []
        self.people: dict = {}
        self.writes = Links(binding)
        named = (*plan.cancel, *plan.update, *plan.conflicts, *plan.touch, *plan.restore)
        self.rows = Reservation.objects.select_related("space__location", "requested_for").in_bulk(
            [c.reservation_id for c in named if c.reservation_id]
        )
        self.times = {pk: (row.start, row.end) for pk, row in self.rows.items()}

    def restore(self, change: Change, why: str, *, tell: bool = True) -> None:
        """The remote edit of a Reserva booking is not taken: the event is written back (the
        link is put behind the reservation and a push queued after the commit) and the
        person is told why. The pull never leaves the two disagreeing."""
        row = self.rows[change.reservation_id]
        if tell:
            self.notices.append(("restored", row.pk, (), _undone(change, row, self.provider, why)))
            self.result.restored += 1
        log.info(
            "Pull of binding %s: remote change of reservation %s undone: %s",
            self.binding.pk, row.pk, why,
        )  # fmt: skip
        owe_push(self.writes, row, change.event)
        self.restores.append(row.pk)

    def refused(self, change: Change, exc: services.BookingError) -> None:
        """A change the booking service refused outright (not a taken slot)."""
        row = self.rows[change.reservation_id]
        if _made_in_reserva(row):
            self.restore(change, exc.message)
            return
        # Made in the provider, whose calendar is the truth: nothing to write back; the event
        # is noted so the next pull does not try again, and the refusal is logged.
        log.info(
            "Pull of binding %s: remote change of reservation %s not applied: %s",
            self.binding.pk, row.pk, exc.message,
        )  # fmt: skip
        self.writes.add(row, change.event, before=row.version)
        self.result.ignored += 1

    # -- cancellations

    def cancel(self) -> None:
        """Slot holders through the booking service's batch (one lock, one re-read, one
        update); conflicted bookings one by one (they hold no slot: ``cancel_conflict``)."""
        rows = self.rows

        def reason_of(change: Change) -> str:
            return f"{change.reason.capitalize()} ({self.provider})."

        outcomes = _batch_outcomes(
            [c for c in self.plan.cancel if rows[c.reservation_id].holds_slot],
            lambda changes: batch.cancel_remote(
                self.space, [rows[c.reservation_id] for c in changes], source=self.source,
                reasons=[reason_of(c) for c in changes],
            ),
        )  # fmt: skip
        for change in self.plan.cancel:
            row = rows[change.reservation_id]
            done = outcomes.get(id(change))
            if id(change) not in outcomes:
                done = None
                if row.status == ReservationStatus.CONFLICTED:
                    done = services.cancel_conflict(reservation=row, reason=reason_of(change))
            elif isinstance(done, services.BookingError):
                if _made_in_reserva(row):  # the booking stands: its event comes back
                    self.restore(change, done.message)
                done = None
            if done is not None:
                self.writes.add(done, change.event)
                self.result.cancelled += 1
                self.notices.append(("cancelled", done.pk, ()))

    # -- moves and renames

    def update(self) -> None:
        """Several events moved at once may each land where another one still is: an update
        whose slot is taken waits for the others, round after round while some progress."""
        pending, failures = list(self.plan.update), {}
        waiting: list[Change] = []
        while pending:
            waiting = []
            # Made in the provider for nobody in Reserva: the booking service's batch, in
            # order (each sees the ones before it, as one call after another would).
            outcomes = _batch_outcomes(
                [c for c in pending if _batchable(self.rows[c.reservation_id])],
                lambda changes: batch.change_remote(
                    self.space, [self._move_of(c) for c in changes], source=self.source
                ),
            )
            for change in pending:
                failure = self._update_one(change, outcomes)
                if failure is not None:
                    waiting.append(change)
                    failures[change.reservation_id] = failure
            if len(waiting) == len(pending):
                break
            pending = waiting
        else:
            waiting = []
        for change in waiting:
            if _made_in_reserva(self.rows[change.reservation_id]):
                self.restore(change, failures[change.reservation_id].message)
                continue
            conflicts.keep_conflicted(self, change, failures[change.reservation_id])

    def _move_of(self, change: Change) -> batch.Move:
        title = change.title[:255] if change.title is not None else None
        return batch.Move(self.rows[change.reservation_id], change.start, change.end, title)

    def _update_one(self, change: Change, outcomes: dict) -> services.Conflict | None:
        """Apply one update (its batch outcome, or ``move``); the Conflict when its slot is
        taken now (it waits for the others), else None (applied, refused or conflicted)."""
        rows = self.rows
        before = rows[change.reservation_id].version
        try:
            if id(change) in outcomes:
                row = outcomes[id(change)]
                if isinstance(row, services.BookingError):
                    raise row
                if (change.start, change.end) != self.times[row.pk]:
                    self.notices.append(("changed", row.pk, ()))
            else:
                row = self.move(change)
        except services.Conflict as exc:
            if not exc.clashes and _made_in_reserva(rows[change.reservation_id]):
                self.refused(change, exc)  # a rule (opening hours...), not a taken slot
                return None
            return exc
        except services.LimitExceeded as exc:  # waiting for others cannot help
            if _made_in_reserva(rows[change.reservation_id]):
                self.refused(change, exc)
            else:  # made in the provider: kept, holding no slot, with the limit's words
                conflicts.keep_conflicted(self, change, exc)
            return None
        except services.BookingError as exc:  # not allowed, over, not reservable
            self.refused(change, exc)
            return None
        rows[row.pk] = row
        self.times[row.pk] = (row.start, row.end)
        self.writes.add(row, change.event, before=before)
        self.result.updated += 1
        if change.undo:
            self.restore(change, change.undo)
        elif _made_in_reserva(row) and _shows_other_subject(row, change.event):
            self.restore(change, "its subject is Reserva's (shortened)", tell=False)
        return None

    def move(self, change: Change) -> Reservation:
        """Apply one update through ``services``; raises services.Conflict when its new slot
        is taken."""
        source = self.source
        row = self.rows[change.reservation_id]
        details = {"title": change.title[:255]} if change.title is not None else {}
        if row.status == ReservationStatus.CONFLICTED:
            return conflicts.move_conflicted(self, row, change)
        moved = (change.start, change.end) != (row.start, row.end)
        if _made_in_reserva(row):
            # The person's change, made in the calendar: checked as theirs (policies, opening
            # hours, horizon, maximum length), recorded with the provider as source.
            if row.requested_for is None:
                raise services.NotAllowed("the booking is not made for anyone in Reserva")
            if change.title is not None:  # the location shows the booking's nickname
                details["public_nickname"] = change.title[:100]
            row = services.change(
                actor=row.requested_for, reservation=row, start=change.start,
                end=change.end, source=source, **details,
            )[0]  # fmt: skip
        else:
            row = services.change(
                actor=None, reservation=row, start=change.start, end=change.end,
                source=source, **details,
            )[0]  # fmt: skip
        if moved:
            self.notices.append(("changed", row.pk, ()))
        return row

    # -- new bookings

    def booking_fields(self, change: Change) -> dict:
        return booking_fields(
            self.binding, change.event, change.start, change.end, change.title or "", self.people
        )

    def create(self) -> None:
        """New bookings for nobody in Reserva through the booking service's batch; a
        person's one by one (``services.book`` counts their limits one booking at a time)."""
        creates = [(change, self.booking_fields(change)) for change in self.plan.create]
        fields_of = {id(change): fields for change, fields in creates}
        booked = _batch_outcomes(
            [change for change, fields in creates if fields["requested_for"] is None],
            lambda changes: batch.book_remote(
                self.space, [new_booking(fields_of[id(c)]) for c in changes], source=self.source
            ),
        )
        for change, kwargs in creates:
            try:
                row = booked.get(id(change))
                if row is None:
                    row = services.book_from_calendar(**kwargs).reservations[0]
                elif isinstance(row, services.BookingError):
                    raise row
                self.result.created += 1
            except services.KEPT_AS_CONFLICT as exc:
                # The same fields, holding no slot, with the rule's words (a closure, a
                # buffer, a taken slot, a limit of the organizer's).
                row = services.record_conflict(**kwargs, reason=exc.message)
                self.notices.append(conflicts.conflict_notice(row.pk, exc))
                self.result.conflicts += 1
            except services.BookingError as exc:
                log.info("Pull of binding %s: event not booked: %s", self.binding.pk, exc.message)
                self.result.ignored += 1
                continue
            self.writes.add(row, change.event)

    # -- nothing shown changed

    def touch(self, owed_when_read: set[int]) -> None:
        for change in self.plan.touch:
            row = self.rows[change.reservation_id]
            if row.pk in owed_when_read and _made_in_reserva(row) and push_landed(row, change):
                self.restore(change, CROSSED)
                continue
            self.writes.add(row, change.event, before=row.version)

    # -- Reserva bookings whose remote edit is not taken

    def restore_planned(self) -> None:
        """The planned restores: moves onto a taken slot, renames that cannot be taken."""
        for change in self.plan.restore:
            why = change.reason
            if change.clashes:
                why = f"{self.space.name} is booked by someone else at that time"
            self.restore(change, why)


def _log_plan(binding_id: int, plan: PullPlan) -> None:
    """Each remote change the plan takes, refuses or skips, with its reason (what the
    convergence run's failures need to be explained; skips at debug level). The whole event
    id: EWS ids end in the mailbox's encoded address, so any tail is the same for a room's
    every event, and the portal's support reference shows the id's start."""
    for bucket in ("create", "update", "cancel", "conflicts", "restore", "touch", "ignore"):
        level = logging.DEBUG if bucket in ("touch", "ignore") else logging.INFO
        if not log.isEnabledFor(level):
            continue
        for change in getattr(plan, bucket):
            log.log(
                level,
                "Pull of binding %s: event %s (reservation %s) -> %s: %s",
                binding_id, change.event.id, change.reservation_id, bucket, change.reason,
            )  # fmt: skip


def _batchable(row: Reservation) -> bool:
    """An update the booking service's batch applies (``reservations.batch``): a booking made
    in the provider, holding its slot, for nobody in Reserva (no limits to count)."""
    return row.source in REMOTE_SOURCES and row.holds_slot and row.requested_for_id is None


def _made_in_reserva(row: Reservation) -> bool:
    """A Reserva booking holding its slot (the planner's ``_made_here``, on a row)."""
    return row.source not in REMOTE_SOURCES and row.holds_slot


def _shows_other_subject(row: Reservation, event: RemoteEvent) -> bool:
    """The room's event of this Reserva booking does not carry the subject Reserva gives it
    (a taken rename Reserva shortened to its nickname's length)."""
    if row.sync_mailbox != SyncMailbox.ROOM:
        return False
    return (event.subject or "").strip() != remote.event_title(row).strip()


def _undone(change: Change, row: Reservation, provider: str, why: str) -> str:
    """What the person did in the calendar, and why Reserva did not take it (for the email)."""
    zone = row.space.location.zone
    done = []
    if change.event.removed or change.start is None or change.end is None:
        done.append("deleted")
    elif (change.start, change.end) != (row.start, row.end):
        start, end = change.start.astimezone(zone), change.end.astimezone(zone)
        done.append(f"moved to {start:%a %d %b %Y %H:%M}-{end:%H:%M}")
    subject = (change.event.subject or "").strip()
    if not change.event.removed and _shows_other_subject(row, change.event):
        done.append(f"renamed to {subject!r}" if subject else "left without a subject")
    what, why = " and ".join(done) or "changed", why.rstrip(".")
    return f"It was {what} in {provider}, but Reserva could not take that change: {why}."
