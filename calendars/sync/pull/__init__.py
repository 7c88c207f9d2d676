"""Pull: bring a bound space's reservations in step with its room calendar (DESIGN.md "sync
engine", STYLE.md habit 7: a set difference computed in a pure function, applied in one
transaction).

``plan_pull(remote_events, links, reservations, ...) -> PullPlan`` is pure: it compares the
remote events of one pull with the links and reservations Reserva knows and answers what to
create, update, cancel, record as a conflict and ignore. ``pull_binding(binding_id)`` does
the I/O around it:

1. take the binding's lock (``acquire``: a Redis lock when ``REDIS_URL`` is set, else an
   atomic claim on the binding row), so one binding is never pulled by two workers at once;
   it has a short TTL that a heartbeat thread renews while the pull runs, so a killed pull
   stops blocking the room within a minute (``calendars/locks.py``);
2. read the changes since the stored cursor (Graph ``calendarView/delta`` link, Google
   ``syncToken``), page after page until the last page, which carries the next cursor. A
   binding without a cursor, or whose cursor the provider rejects (``SyncTokenExpired``),
   gets ONE full read over the sync window (``SyncSettings`` past/future days); events are
   matched to what exists by id, iCalUId and our tag, so a full resync creates no duplicates;
3. plan, then apply the plan and store the new cursor in one transaction, through
   ``reservations.services`` with the provider's source: for bookings made in the provider
   with ``actor=None`` (policies and opening hours skipped, "no overlap" enforced); for
   bookings made in Reserva as their requested-for person (every rule checked, see below);
4. after the commit, tell the people concerned (``notify_pull``), queue the pushes that
   write refused edits back, and record a ``SyncJob``.

Rules of the plan:

- an event is matched by ``SyncLink.external_id``, then (outside recurring series, whose
  occurrences share it) by iCalUId, then by our reservation tag (Google's events carry it;
  Graph's delta cannot expand extended properties, so while a create is in flight or failed
  in the room, the events nothing attributes are read with their tag first, and a create's
  own event is never taken for a new booking: ``calendars.sync.attribution``);
- matched and ``version == link.remote_version``: our own push coming back, ignored;
- matched, but the link is behind its reservation (a Reserva change whose push waits for a
  retry): the event shows the old state, not a remote edit; only its change key is noted and
  the owed push overwrites it (Reserva wins, as when a push meets a remote edit);
- removed (delta ``@removed``, Google ``cancelled``) or declined by the room: cancel;
- moved: new times; renamed: new title, for reservations made in the provider;
- a booking made in Reserva (portal, API, admin) moved or renamed remotely: its person's
  request, applied through ``services.change`` as that person (opening hours, horizon,
  maximum length, policies). Its event's subject is derived from it
  (``remote.event_title``): where the location shows the public nickname, a new subject
  becomes its title and nickname; where it shows the person's name, a rename cannot be taken.
  Whatever cannot be taken (refused by the rules, onto a taken slot, a rename of the name)
  is written back: the link is put behind the reservation (a push is owed) and a push
  queued, and the person is emailed why ("restored"). Such a booking is never made
  ``conflicted``: it keeps its slot. The room's copy of an event kept in a person's or the
  delegated calendar is not compared by subject (the room may rewrite it);
- new: a reservation (source exchange/google), requested for the active user whose email is
  the organizer's, organizer details filled when the location says so;
- new, or made in the provider and moved onto a slot held by another reservation:
  ``conflicted`` (holds no slot, never overwrites the booking; ``services.record_conflict``,
  with why in the booking rules' words). A slot includes the space's setup and cleanup
  buffers (``reservations.buffers``): an event right after a booking in a room that needs
  cleaning collides too; so is one that takes its organizer (a Reserva user) over one of
  their limits (``reservations.limits``: active bookings, hours per week, overlaps), with
  the limit's words;
- all-day events become midnight-to-midnight in the location's zone;
- events outside the window are ignored unless they are linked (Google's incremental sync
  reports the whole calendar);
- a full resync cancels remote-made reservations whose events are gone from the window.

Recurring series: Google is read with ``singleEvents=true`` and Graph's calendarView/delta
returns occurrences and exceptions, so each occurrence is an event with its own id (and
``series_id``) and becomes its own reservation; an exception is an occurrence with other
times, a deleted occurrence comes back removed; a deleted series comes back as its removed
occurrences (or, from Google, possibly as the cancelled master, whose instances are found by
id prefix). Both sandboxes emulate series with exceptions (tests/calendars/
test_pull_recurring_ms.py, test_pull_recurring_google.py).

Pushes made by the pull's own service calls are no-ops: the link is given the reservation's
new version (``pushed_version``) in the same transaction, so the push plan finds the calendar
already showing it (and the receiver does not even queue it: ``calendars.receivers.
shown_already``); unless a push was already owed (``Links.add``'s ``before``), which then
still runs.

Cost: bookings made in the provider for nobody in Reserva are created, moved and cancelled
through the booking service's batch writes (``reservations.batch``: one space lock, one
re-read, checks in order in memory, bulk history rows) and links are written together
(``Links``), so a pull of N changed events costs a few queries per event at most
(``bench/pull.py``, ``tests/calendars/test_pull_cost.py``). Bookings for a Reserva user,
conflicts and undone edits keep the one-by-one path through ``reservations.services``.

Found and pinned by the convergence run (tests/calendars/test_convergence.py: 200 random
portal and calendar edits under ~20% faults on a real worker, then both sides compared).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    F,
    TextField,
    Value,
    When,
)
from django.utils import timezone

from integrations.base import PermanentError, RemoteEvent, TransientError
from integrations.registry import spec
from reservations import batch, services
from reservations.models import (
    REMOTE_SOURCES,
    Reservation,
    ReservationStatus,
    Source,
    SyncMailbox,
)

from ... import locks, remote
from ...models import (
    BindingStatus,
    JobKind,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
)
from .. import trouble
from .claim import (  # noqa: F401 (the tasks', the webhooks', the reconciliation's)
    acquire,
    due_bindings,
    pull_due_bindings,
    pull_owed,
    release,
    renew,
    request_pull,
)
from .fetch import load_binding, read_changes, read_events, sync_window  # noqa: F401
from .known import read_known
from .plan import (
    Change,
    KnownLink,  # noqa: F401 (the tests')
    KnownReservation,  # noqa: F401 (the tests')
    PullPlan,
    event_times,  # noqa: F401 (the reconciliation's)
    index_links,  # noqa: F401 (the reconciliation's)
    plan_pull,
)

log = logging.getLogger(__name__)


def source_of(kind: str) -> Source:
    """The source a booking pulled from this provider carries."""
    return Source(spec(kind).reservation_source)


# -- reading ----------------------------------------------------------------------------------


class PullStatus(enum.StrEnum):
    """How a pull ended (the task decides from it what to queue next)."""

    SUCCEEDED = "succeeded"
    BUSY = "busy"  # another pull of the binding is running
    SKIPPED = "skipped"  # the binding does not sync, or is paused
    PAUSED = "paused"  # a permanent error paused the binding
    FAILED = "failed"


@dataclass
class PullResult:
    status: PullStatus
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    conflicts: int = 0
    ignored: int = 0
    restored: int = 0  # remote edits of Reserva bookings not taken: the events written back
    events: int = 0
    pages: int = 0
    full: bool = False
    detail: str = ""
    cursor: str | None = None  # a new cursor still to be saved (a pull without changes)


def pull_binding(binding_id: int, *, full: bool = False) -> PullResult:
    """Pull one binding's remote changes into its reservations (see the module docstring).
    ``full``: ignore the stored cursor and read the whole window (an administrator's resync).
    Raises TransientError after recording it, so the task may retry."""
    binding = load_binding(binding_id)
    if binding is None or not binding.enabled or not binding.provider.is_active:
        return PullResult(PullStatus.SKIPPED, detail="the binding does not sync")
    if binding.status == BindingStatus.PAUSED:
        return PullResult(PullStatus.SKIPPED, detail="sync is paused for this room")
    claim = acquire(binding_id)
    if claim is None:
        return PullResult(PullStatus.BUSY, detail="another pull of this binding is running")
    heartbeat = locks.Heartbeat(lambda: renew(binding_id, claim)).start()
    started = timezone.now()
    result = PullResult(PullStatus.FAILED)
    fields: dict = {}
    try:
        window = sync_window(started)
        calendar = remote.room_calendar(binding)
        events, cursor, pages, whole = read_events(binding, calendar, window, full=full)
        result = _apply(binding, events, cursor, full=whole, window=window)
        result.pages = pages
        # Back to OK after transient errors, but a binding a push paused meanwhile stays
        # paused with its reason (one UPDATE either way: CASE on the row's own status).
        recovering = When(status=BindingStatus.ERROR, then=Value(BindingStatus.OK))
        fields = {
            **({"sync_token": result.cursor} if result.cursor else {}),
            "last_pulled_at": timezone.now(),
            "last_synced_at": timezone.now(),
            "last_error": Case(
                When(status=BindingStatus.PAUSED, then=F("last_error")),
                default=Value(""),
                output_field=TextField(),
            ),
            "status": Case(recovering, default=F("status"), output_field=CharField()),
        }
    except PermanentError as exc:
        trouble.pause_binding(binding_id, exc.message)
        result = PullResult(PullStatus.PAUSED, detail=exc.message)
    except TransientError as exc:
        result = PullResult(PullStatus.FAILED, detail=exc.message)
        fields = {"last_error": exc.message[:2000], "status": BindingStatus.ERROR}
        raise
    except Exception:
        result = PullResult(PullStatus.FAILED, detail="Unexpected error (see the worker log).")
        raise
    finally:
        heartbeat.stop()
        release(binding_id, claim, **fields)
        _record_job(binding_id, result, started)
    return result


def _record_job(binding_id: int, result: PullResult, started: datetime) -> None:
    status = {
        PullStatus.SUCCEEDED: JobStatus.SUCCEEDED,
        PullStatus.PAUSED: JobStatus.PAUSED,
    }.get(result.status, JobStatus.FAILED)
    errors = [{"error": result.detail[:500]}] if result.status != PullStatus.SUCCEEDED else []
    if result.conflicts:
        errors.append({"conflicts": result.conflicts})
    if result.restored:
        errors.append({"restored": result.restored})
    SyncJob.objects.create(
        kind=JobKind.PULL,
        binding_id=binding_id,
        status=status,
        total=result.events,
        done=result.events,
        created_count=result.created,
        updated_count=result.updated,
        deleted_count=result.cancelled,
        failed_count=0 if result.status == PullStatus.SUCCEEDED else 1,
        errors=errors,
        started_at=started,
        heartbeat_at=timezone.now(),
        finished_at=timezone.now(),
    )


# -- applying ---------------------------------------------------------------------------------


class Links:
    """The links a pull records (``add``), written together (``flush``: one locking read of
    the links, one insert, one update), at the end of the pull's transaction or before
    anything else in it touches a link.

    ``add(reservation, event, before)`` records the remote event on the reservation's link,
    at the reservation's version (so the push its change triggers finds nothing to do).

    ``before``: the reservation's version before this pull changed it (or its version, when
    the pull only records the event's new change key). If the link had not caught up with it,
    a push of a change made in Reserva is still owed (waiting for its retry): the event does
    not show that change, so the pushed version stays where it is and that push still runs,
    writing the reservation as it is now (the remote change included) over the event.

    The rows are locked and read afresh when written: a push of one of these reservations
    finishing on another worker meanwhile (its lock is held from before its write to its
    commit) is seen, never overwritten with what this pull read before (a lost update left
    the link behind with no push to come, or claiming an event state the calendar never
    had)."""

    FIELDS = (
        "external_id", "ical_uid", "remote_version", "state", "pushed_version", "last_error",
        "attempts", "updated",
    )  # fmt: skip

    def __init__(self, binding: SpaceCalendar) -> None:
        self.binding = binding
        self.pending: dict[int, list[tuple[Reservation, RemoteEvent, int | None]]] = {}

    def add(
        self, reservation: Reservation, event: RemoteEvent, *, before: int | None = None
    ) -> None:
        self.pending.setdefault(reservation.pk, []).append((reservation, event, before))

    def flush(self) -> None:
        if not self.pending:
            return
        found = {
            link.reservation_id: link
            for link in SyncLink.objects.select_for_update().filter(
                reservation_id__in=list(self.pending)
            )
        }
        made: dict[int, SyncLink] = {}
        changed: dict[int, SyncLink] = {}
        for reservation_id, intents in self.pending.items():
            link = found.get(reservation_id)
            known = link is not None
            for reservation, event, before in intents:
                if link is None:
                    place = remote.locate(reservation, self.binding).place
                    link = made[reservation_id] = SyncLink(
                        reservation=reservation,
                        binding=self.binding,
                        provider_id=place.provider_id,
                        mailbox=place.mailbox,
                        calendar_id=place.calendar_id,
                    )
                if self._record(link, reservation, event, before, known=known):
                    known = True  # (as if saved: the next intent finds it)
                    if link.pk is not None:
                        changed[reservation_id] = link
        self.pending.clear()
        now = timezone.now()
        for link in changed.values():
            link.updated = now  # (auto_now is not applied by bulk_update)
        if made:
            SyncLink.objects.bulk_create([link for link in made.values() if self._in_room(link)])
        if changed:
            SyncLink.objects.bulk_update(list(changed.values()), self.FIELDS)

    def _in_room(self, link: SyncLink) -> bool:
        return link.mailbox.lower() == self.binding.resource_email.lower()

    def _record(
        self,
        link: SyncLink,
        reservation: Reservation,
        event: RemoteEvent,
        before: int | None,
        *,
        known: bool,
    ) -> bool:
        """Bring one link up to this event; False when it is not the pull's to write."""
        if not self._in_room(link):
            # The event lives elsewhere (the person's own calendar in personal mode, the
            # delegated one in strict mode) and the room's copy was matched by iCalUId / id:
            # the push owns the link's event id and change key, which name the other copy; its
            # version stays behind, so the push brings that copy in step with what the room's
            # copy said.
            return False
        owed = before is not None and known and link.pushed_version < before
        if not event.removed:
            link.external_id = event.id or link.external_id
            link.ical_uid = event.ical_uid or link.ical_uid
            link.remote_version = event.version
        else:
            link.remote_version = ""
        if not owed:  # else the owed push keeps its state, error and attempts
            link.state = LinkState.REMOVED if event.removed else LinkState.SYNCED
            link.pushed_version = max(reservation.version, link.pushed_version)
            link.last_error, link.attempts = "", 0
        return True


def booking_fields(
    binding: SpaceCalendar,
    event: RemoteEvent,
    start: datetime,
    end: datetime,
    title: str,
    people: dict,
) -> dict:
    """The fields of a booking made from a remote event nobody in Reserva made (by a pull, or
    by the daily reconciliation): the provider's source, requested for the active user whose
    email is the organizer's, the organizer's details when the location keeps them.
    ``people`` caches the organizer look-ups of one run."""
    details = binding.space.location.pull_organizer_details
    return {
        "space": binding.space, "start": start, "end": end, "title": title[:255],
        "source": source_of(binding.provider.kind),
        "requested_for": _organizer(binding, event, people),
        "organizer_name": event.organizer_name[:200] if details else "",
        "organizer_email": event.organizer_email if details else "",
    }  # fmt: skip


def _organizer(binding: SpaceCalendar, event: RemoteEvent, cache: dict):
    """The active user whose email is the organizer's, if any (one query per address)."""
    email = (event.organizer_email or "").strip().lower()
    if not email or email == binding.resource_email.lower():
        return None
    if email not in cache:
        cache[email] = (
            get_user_model()
            .objects.filter(email__iexact=email, is_active=True)
            .order_by("pk")
            .first()
        )
    return cache[email]


def _apply(
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
        run = _Applier(binding, plan, result)
        run.cancel()
        run.update()
        run.conflicts()
        run.create()
        run.writes.flush()  # before the touched links are read (``_push_landed``)
        run.touch({link.reservation_id for link in links if link.push_owed})
        for change in plan.restore:
            why = change.reason
            if change.clashes:
                why = f"{space.name} is booked by someone else at that time"
            run.restore(change, why)
        result.ignored += len(plan.ignore)
        run.writes.flush()
        SpaceCalendar.objects.filter(pk=binding.pk).update(sync_token=cursor)
        notices, restores = run.notices, run.restores
        if notices:
            transaction.on_commit(lambda: notify_pull(binding.pk, notices), robust=True)
        if restores:
            transaction.on_commit(lambda: _push_again(restores), robust=True)
    return result


def _batch_outcomes(changes: Sequence, outcomes_of) -> dict[int, batch.Outcome]:
    """A batch write's outcome per change (by the change's identity); no call for none."""
    if not changes:
        return {}
    return dict(zip([id(c) for c in changes], outcomes_of(changes), strict=True))


def _new_booking(fields: dict) -> batch.NewBooking:
    """``booking_fields`` of a booking for nobody in Reserva, for the batch."""
    return batch.NewBooking(
        fields["start"], fields["end"], fields["title"],
        fields["organizer_name"], fields["organizer_email"],
    )  # fmt: skip


class _Applier:
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
        _owe_push(self.writes, row, change.event)
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
            self.keep_conflicted(change, failures[change.reservation_id])

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
                self.keep_conflicted(change, exc)
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
        space, source = self.space, self.source
        row = self.rows[change.reservation_id]
        details = {"title": change.title[:255]} if change.title is not None else {}
        if row.status == ReservationStatus.CONFLICTED:
            # Moved again: the reason follows the new times (a closure there, a limit of its
            # person, or none).
            closed = (
                services.closure_problem(space, change.start, change.end)
                or services.limit_problem(space, change.start, change.end, row.requested_for)
                or ""
            )
            row = services.record_conflict(
                space=space, start=change.start, end=change.end, source=source,
                reservation=row, title=details.get("title", ""), reason=closed,
            )  # fmt: skip
            services.retry_conflict(reservation=row)
            row.refresh_from_db()
            return row
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

    def keep_conflicted(self, change: Change, failure: services.BookingError) -> None:
        """An update made in the provider that cannot be applied: the booking takes the
        event's times and title, holding no slot, with the booking service's words."""
        log.info(
            "Pull of binding %s: #%s not moved to %s-%s (%s): kept as conflicted",
            self.binding.pk, change.reservation_id, change.start, change.end, failure,
        )  # fmt: skip
        row = services.record_conflict(
            space=self.space, start=change.start, end=change.end, source=self.source,
            reservation=self.rows[change.reservation_id],
            title=(change.title or "")[:255], reason=failure.message,
        )  # fmt: skip
        self.rows[row.pk] = row
        self.notices.append(_conflict_notice(row.pk, failure))
        self.result.conflicts += 1
        self.writes.add(row, change.event)

    # -- conflicts and new bookings

    def conflicts(self) -> None:
        for change in self.plan.conflicts:
            row = self.rows.get(change.reservation_id) if change.reservation_id else None
            fields = self._fields(change)
            if row is not None:  # an existing booking keeps its person
                fields["requested_for"] = None
            why = services.collision_reason(self.space, change.start, change.end, change.clashes)
            row = services.record_conflict(reservation=row, reason=why, **fields)
            self.writes.add(row, change.event)
            self.notices.append(("conflict", row.pk, change.clashes, why))
            self.result.conflicts += 1

    def _fields(self, change: Change) -> dict:
        return booking_fields(
            self.binding, change.event, change.start, change.end, change.title or "", self.people
        )

    def create(self) -> None:
        """New bookings for nobody in Reserva through the booking service's batch; a
        person's one by one (``services.book`` counts their limits one booking at a time)."""
        creates = [(change, self._fields(change)) for change in self.plan.create]
        fields_of = {id(change): fields for change, fields in creates}
        booked = _batch_outcomes(
            [change for change, fields in creates if fields["requested_for"] is None],
            lambda changes: batch.book_remote(
                self.space, [_new_booking(fields_of[id(c)]) for c in changes], source=self.source
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
                self.notices.append(_conflict_notice(row.pk, exc))
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
            if row.pk in owed_when_read and _made_in_reserva(row) and _push_landed(row, change):
                self.restore(change, CROSSED)
                continue
            self.writes.add(row, change.event, before=row.version)


def _conflict_notice(pk: int, exc: services.BookingError) -> tuple:
    """The notice of a conflicted event (``services.KEPT_AS_CONFLICT``): colliding with the
    bookings it names ("conflict"), or refused by a rule that no other booking holds (a
    closure, a limit of its person: "refused"); the detail is the booking service's words."""
    if not isinstance(exc, services.Conflict) or isinstance(exc, services.Closed):
        return ("refused", pk, (), exc.message)
    return ("conflict", pk, tuple(c.reservation_id for c in exc.clashes), exc.message)


def _log_plan(binding_id: int, plan: PullPlan) -> None:
    """Each remote change the plan takes, refuses or skips, with its reason (what the
    convergence run's failures need to be explained; skips at debug level)."""
    for bucket in ("create", "update", "cancel", "conflicts", "restore", "touch", "ignore"):
        level = logging.DEBUG if bucket in ("touch", "ignore") else logging.INFO
        if not log.isEnabledFor(level):
            continue
        for change in getattr(plan, bucket):
            log.log(
                level,
                "Pull of binding %s: event %s (reservation %s) -> %s: %s",
                binding_id, change.event.id[-16:], change.reservation_id, bucket, change.reason,
            )  # fmt: skip


CROSSED = "it crossed a change to the booking that Reserva was writing at the same moment"


def _push_landed(row: Reservation, change: Change) -> bool:
    """The push that was owed when this pull read the links has landed since (on another
    worker), and the event read here is not what it wrote: an edit made around that write.
    Left to "the owed push", it would be neither applied nor undone: no push is owed now.
    (Locks the link: a push still writing is waited for.)"""
    link = SyncLink.objects.select_for_update().filter(reservation=row).first()
    return (
        link is not None
        and link.pushed_version >= row.version
        and link.remote_version != change.event.version
    )


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


def _owe_push(writes: Links, reservation: Reservation, event: RemoteEvent) -> None:
    """Record the event (its id and change key, so the push's conditional write meets the
    version read here) and put the link behind the reservation: a push is owed, which writes
    the booking over the event. Owed, not only queued: if that push is lost, "Resume sync"
    and the retries find it, and a pull that sees the event first leaves it to the push."""
    writes.add(reservation, event, before=reservation.version)
    writes.flush()
    SyncLink.objects.filter(
        reservation=reservation, pushed_version__gte=reservation.version
    ).update(pushed_version=reservation.version - 1, state=LinkState.PENDING)


def _push_again(reservation_ids: Sequence[int]) -> None:
    """Queue the pushes that write Reserva's bookings back over refused remote edits."""
    from ...tasks import push_reservation

    for pk in reservation_ids:
        push_reservation.delay(pk)


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


# -- telling people ---------------------------------------------------------------------------

SUBJECTS = {
    "changed": "Moved in {provider}: {space}, {when}",
    "cancelled": "Cancelled in {provider}: {space}, {when}",
    "conflict": "Booking conflict: {space}, {when}",
    "restored": "Change in {provider} undone: {space}, {when}",
}


def _when(reservation: Reservation) -> str:
    return f"{reservation.local_start:%a %d %b %Y %H:%M}-{reservation.local_end:%H:%M}"


def notify_pull(binding_id: int, notices: Sequence[tuple]) -> int:
    """Email the requested-for users of reservations a remote change moved, cancelled or
    conflicted with (not the organizers of remote events without a Reserva owner: their
    calendar already told them), and of Reserva bookings whose remote move or rename was
    undone ("restored": the notice's fourth item says what was done and why it was not
    taken). A notice is ``(kind, reservation id, clash ids[, detail])``. Returns how many
    emails were sent."""
    from reservations import emails

    binding = SpaceCalendar.objects.select_related("provider").filter(pk=binding_id).first()
    provider = binding.provider.get_kind_display() if binding else "the remote calendar"
    wanted = {notice[1] for notice in notices} | {pk for notice in notices for pk in notice[2]}
    rows = Reservation.objects.select_related("space__location", "requested_for").in_bulk(
        list(wanted)
    )
    sent = 0

    def send(kind: str, row: Reservation, lines: list[str]) -> None:
        nonlocal sent
        person = row.requested_for
        if person is None or not person.email:
            return
        subject = SUBJECTS[kind].format(provider=provider, space=row.space.name, when=_when(row))
        email = emails.Email(
            subject=subject,
            headline=subject.split(":", 1)[0] + f": {row.space.name}",
            paragraphs=[line for line in lines if line],
            booking=emails.booking_card([row], emails.reader_zone(person)),
            actions=[emails.Action("View booking", emails.booking_link(row))],
        )
        sent += email.message([person.email]).send()

    for kind, pk, clash_ids, *detail in notices:
        row = rows.get(pk)
        if row is None:
            continue
        if kind == "restored":
            send(
                kind,
                row,
                [
                    *detail,
                    "",
                    f"The event is being put back in {provider} to match your reservation, "
                    "which has not changed (below). To change it, use Reserva, or make a "
                    "change there that its booking rules allow.",
                ],
            )
        elif kind == "changed":
            send(kind, row, [f"Your reservation of {row.space.name} was moved in {provider}."])
        elif kind == "cancelled":
            send(kind, row, [f"Your reservation of {row.space.name} was cancelled in {provider}."])
        elif kind == "refused":  # by a rule (a closure, a limit), not by another booking
            send(
                "conflict",
                row,
                [
                    f"Your booking of {row.space.name} made in {provider} cannot be accepted: "
                    f"{detail[0]} It does not hold the room; an administrator will resolve it."
                ],
            )
        else:
            send(
                kind,
                row,
                [
                    f"Your booking of {row.space.name} made in {provider} collides with another "
                    "booking. It does not hold the room; an administrator will resolve it.",
                    *detail,  # why, in the booking rules' words (a buffer, a taken slot)
                ],
            )
            for clash_id in clash_ids:
                clash = rows.get(clash_id)
                if clash is not None:
                    send(
                        kind,
                        clash,
                        [
                            f"A booking made in {provider} collides with your reservation of "
                            f"{clash.space.name}. Your reservation stands; an administrator "
                            "will resolve the other one.",
                            *detail,
                        ],
                    )
    return sent


# -- resolving conflicts (the admin actions) --------------------------------------------------


def cancel_remote_event(reservation_id: int) -> str:
    """Resolve a conflict by deleting its remote event (in the room's calendar, with the
    application's credentials) and cancelling the conflicted reservation. Returns what
    happened, for the admin's message. Provider errors are returned, not raised."""
    from integrations.base import ProviderError

    link = SyncLink.objects.select_related("provider").filter(reservation_id=reservation_id).first()
    row = Reservation.objects.filter(pk=reservation_id).first()
    if row is None or row.status != ReservationStatus.CONFLICTED:
        return "not a conflict any more"
    if link is not None and link.external_id:
        calendar = remote.RemoteCalendar(
            remote.client_for(link.provider), link.provider.kind, link.mailbox, link.calendar_id
        )
        try:
            calendar.delete(link.external_id)
        except ProviderError as exc:
            return f"the remote event could not be deleted: {exc.message}"
    with transaction.atomic():
        done = services.cancel_conflict(
            reservation=row, reason="The remote event was cancelled by an administrator."
        )
        if done is not None and link is not None:
            link.remote_version, link.state = "", LinkState.REMOVED
            link.pushed_version = max(done.version, link.pushed_version)
            link.save()
    return "cancelled" if done is not None else "not a conflict any more"


def retry_conflict(reservation_id: int) -> bool:
    """Resolve a conflict after one of the two was moved: True when the slot was free and the
    reservation is now confirmed (its link records the new version: nothing to push)."""
    row = Reservation.objects.filter(pk=reservation_id).first()
    if row is None:
        return False
    with transaction.atomic():
        if not services.retry_conflict(reservation=row):
            return False
        row.refresh_from_db()
        SyncLink.objects.filter(reservation=row).update(pushed_version=row.version)
    return True
