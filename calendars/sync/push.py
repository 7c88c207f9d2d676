"""Push one reservation to its remote event: build the snapshots, plan, apply, record.

``push_reservation(reservation_id)`` is what the ``calendars.push_reservation`` task runs:

1. re-read the reservation (a task may run long after it was queued); a space without an
   enabled binding and no earlier link is not pushed at all;
2. make sure a ``SyncLink`` row exists (its own short transaction), then lock it
   (``select_for_update``) for the rest of the push, so pushes of one reservation are applied
   one at a time, in order; re-read the reservation under the lock: a newer change supersedes
   an older queued one, because the plan compares versions (``pushed_version``);
3. before a create is sent, mark the link "creating" in a commit of its own
   (``announce_create``), so a concurrent pull recognises the new event as ours
   (``calendars.sync.attribution``); the save that records the event id clears the mark;
4. ``plan`` (pure, ``calendars.sync.plan``) and apply: create (idempotent in the clients:
   Graph ``transactionId``, Google client-chosen id; when an earlier attempt's outcome is
   unknown, look up our tagged event first), update with the remote version (If-Match; on a
   conflict re-read and retry once), delete, or move (delete where it is, create where it
   belongs);
5. record the outcome on the link and in a ``SyncJob`` row (kind push).

Errors say what happens next: a permanent one pauses the binding or the person's token
(``calendars.sync.trouble``) and leaves the link ``paused``; a transient one marks it
``failed`` and is re-raised so the task retries with backoff; after the task's retries the
beat retries it (``next_attempt_at``, ``calendars.sync.recovery``) for a day, then alerts.
The job row's heartbeat is renewed while the push runs, so a push whose worker was killed is
found by beat and queued again.

On SQLite the locked section holds the database's write lock during the provider calls (tens
of milliseconds per push): acceptable for the embedded default; on PostgreSQL only this one
``SyncLink`` row is locked.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.base import (
    CalendarGone,
    EndpointRefused,
    EventGone,
    PermanentError,
    ProviderError,
    RemoteEvent,
    TlsError,
    TransientError,
    VersionConflict,
)
from integrations.registry import spec
from reservations.models import Reservation, ReservationStatus, SyncMailbox

from .. import remote
from ..locks import Heartbeat
from ..models import (
    BindingStatus,
    JobKind,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    UserToken,
)
from ..policies import binding_for
from . import recovery, trouble
from .followups import CheckRoom
from .plan import LinkSnapshot, Op, Place, PushAction, ReservationState, plan

log = logging.getLogger(__name__)


class PushOutcome(enum.StrEnum):
    """A push that wrote nothing because it could not: what stopped it."""

    PAUSED = "paused"  # the binding or the person's token needs someone to act
    FAILED = "failed"  # retried (by the task, else by beat)
    GONE = "gone"  # the reservation no longer exists


@dataclass(frozen=True)
class PushResult:
    op: Op | PushOutcome  # what was planned and done, or why nothing was
    detail: str = ""
    next: tuple[CheckRoom, ...] = ()  # for the task to queue (calendars/sync/followups.py)


# -- snapshots -------------------------------------------------------------------------------


def reservation_state(
    reservation: Reservation, location: remote.Location | None
) -> ReservationState:
    return ReservationState(
        version=reservation.version,
        active=reservation.holds_slot,
        space_id=reservation.space_id,
        target=location.place if location is not None else None,
    )


def link_state(link: SyncLink | None, *, fresh: bool = False) -> LinkSnapshot:
    """``fresh``: the row was made by this very push, so no earlier attempt can have created
    an event; otherwise a link without an event id may hide one (``uncertain``)."""
    if link is None:
        return LinkSnapshot()
    binding = link.binding
    return LinkSnapshot(
        external_id=link.external_id,
        place=Place(link.provider_id, link.mailbox, link.calendar_id) if link.mailbox else None,
        pushed_version=link.pushed_version,
        binding_space_id=binding.space_id if binding else None,
        binding_enabled=bool(binding and binding.enabled and binding.provider.is_active),
        uncertain=not link.external_id and not fresh,
    )


# -- recording (public: the bulk export records its results the same way) --------------------


def apply_remote_result(
    link: SyncLink, event: RemoteEvent, version: int, *, place: Place | None = None
) -> None:
    """Record that the remote event ``event`` now shows ``version`` of the reservation.

    Saves the link: event id, iCalUId, change key / etag, pushed version, state synced, and
    (when given) the place the event now lives in; a new event id, when it was made.
    """
    if place is not None:
        link.provider_id, link.mailbox, link.calendar_id = (
            place.provider_id,
            place.mailbox,
            place.calendar_id,
        )
    if event.id != link.external_id:  # an event made (a create, or a move's new event)
        link.event_made_at = timezone.now()
    link.external_id = event.id
    link.ical_uid = event.ical_uid or link.ical_uid
    link.remote_version = event.version
    link.pushed_version = max(version, link.pushed_version)
    link.state = LinkState.SYNCED
    link.last_error = ""
    link.attempts = 0
    link.creating_at = None  # in the same commit as the event id
    link.next_attempt_at = link.failing_since = None
    link.save()


def record_removed(link: SyncLink, version: int) -> None:
    """Record that our event was deleted (the reservation was cancelled or moved away)."""
    link.remote_version = ""
    link.pushed_version = max(version, link.pushed_version)
    link.state = LinkState.SYNCED
    link.last_error = ""
    link.attempts = 0
    link.creating_at = None
    link.next_attempt_at = link.failing_since = None
    link.save()


def record_failure(
    link_id: int, state: str, message: str, *, retry_after: float | None = None
) -> None:
    """A push of this link failed (``failed``: retried; ``paused``: waits for a reconnect).

    A failed link gets its next beat retry (``recovery.retry_delay``: after the task's own
    quick retries, never before the provider's ``retry_after``), until it has failed for
    ``SYNC_PUSH_GIVE_UP_HOURS`` since ``failing_since``; then it gives up and the admins are
    told, once."""
    link = SyncLink.objects.filter(pk=link_id).first()
    if link is None:
        return
    now = timezone.now()
    link.state, link.last_error, link.attempts = state, message[:2000], link.attempts + 1
    fields = ["state", "last_error", "attempts", "next_attempt_at", "failing_since", "updated"]
    if state != LinkState.FAILED:
        link.next_attempt_at = link.failing_since = None
        link.save(update_fields=fields)
        return
    if link.failing_since is None:
        link.failing_since = now  # a new run of failures (cleared by a success or an admin)
    if now - link.failing_since < recovery.give_up_after():
        link.next_attempt_at = now + recovery.retry_delay(link.attempts, retry_after)
        link.save(update_fields=fields)
        return
    # Given up: beat retries no more (a new change, "Retry failed pushes" or "Resume sync"
    # still push it). Only the one call that clears a pending retry alerts, so the task's own
    # retries, or two failing pushes at once, send no second email.
    link.next_attempt_at = None
    link.save(update_fields=[f for f in fields if f != "next_attempt_at"])
    if SyncLink.objects.filter(pk=link_id, next_attempt_at__isnull=False).update(
        next_attempt_at=None
    ):
        trouble.push_gave_up(link_id, message)


def ensure_link(
    reservation: Reservation, binding: SpaceCalendar, location: remote.Location | None = None
) -> tuple[SyncLink, bool]:
    """The reservation's link, made (state pending) if missing; True when made now.
    ``location``: the push's own answer to where the event lives, when it has one."""
    link = SyncLink.objects.filter(reservation=reservation).first()
    if link is not None:
        return link, False
    place = (location or remote.locate(reservation, binding)).place
    try:
        with transaction.atomic():
            link = SyncLink.objects.create(
                reservation=reservation,
                binding=binding,
                provider_id=place.provider_id,
                mailbox=place.mailbox,
                calendar_id=place.calendar_id,
            )
        return link, True
    except IntegrityError:  # a concurrent push made it first
        return SyncLink.objects.get(reservation=reservation), False


# -- announcing a create ----------------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    """A create announced by ``announce_create``: the mark this push wrote, and the one it
    replaced (another push's create in flight, or none)."""

    mark: datetime
    previous: datetime | None


def announce_create(
    link: SyncLink,
    reservation: Reservation,
    binding: SpaceCalendar | None,
    fresh: bool,
    *,
    location: remote.Location | None = None,
) -> Announcement | None:
    """Mark the link "creating" (the time) and commit it, before the push sends a create (or
    a move's create), so a pull on another worker that reads the new event before this push
    has saved its id recognises it as Reserva's own
    (``calendars.sync.attribution``). Planned here without the lock; the locked plan decides,
    and ``withdraw_create`` undoes the mark when it sends nothing. The mark it replaces is read
    in the same transaction (the row's lock waits for a push saving its event), never from
    ``link``, which may predate that push's save."""
    if binding is None:
        return None
    location = location or remote.locate(reservation, binding)
    action = plan(reservation_state(reservation, location), link_state(link, fresh=fresh))
    if action.op not in (Op.CREATE, Op.MOVE):
        return None
    mark = timezone.now()
    with transaction.atomic():  # its own commit, outside the push's locked transaction
        previous = (
            SyncLink.objects.select_for_update()
            .filter(pk=link.pk)
            .values_list("creating_at", flat=True)
            .first()
        )
        SyncLink.objects.filter(pk=link.pk).update(creating_at=mark)
    return Announcement(mark=mark, previous=previous)


def withdraw_create(link_id: int, announced: Announcement) -> None:
    """Put back the mark ``announce_create`` replaced (the locked plan sent no create), only
    while our mark is still there: a push that saved its event meanwhile cleared it, and a
    mark put back on a saved link would hide the event from the full read's check
    (``pull.fetch.missing_from_full_read``) for good."""
    SyncLink.objects.filter(pk=link_id, creating_at=announced.mark).update(
        creating_at=announced.previous
    )


# -- applying --------------------------------------------------------------------------------


def _calendar_at(link: SyncLink, reservation: Reservation) -> remote.RemoteCalendar:
    """The calendar the link's event lives in, with the credentials that write there."""
    if reservation.sync_mailbox == SyncMailbox.USER and reservation.requested_for is not None:
        return remote.user_calendar(link.provider, reservation.requested_for)
    return remote.link_calendar(link)


def _find(calendar: remote.RemoteCalendar, reservation_id: int) -> RemoteEvent | None:
    found = calendar.find(reservation_id)
    return None if found is None or found.removed else found


def _create(calendar, reservation, binding, lookup: bool) -> RemoteEvent:
    data = remote.event_data(reservation, binding)
    existing = _find(calendar, reservation.pk) if lookup else None
    if existing is not None:  # created by an attempt whose answer was lost
        return calendar.update(existing.id, data)
    return calendar.create(data)


class EventToRecreate(TransientError):
    """The event an update meant to write is gone (deleted remotely while the booking holds
    its slot): it is made anew, but not by this push. A create is announced (committed)
    before it is sent, so a pull does not take the new event for someone else's booking;
    this push already holds its lock, so it forgets the event id and the next attempt, a
    second later, plans the create and announces it."""

    def __init__(self) -> None:
        super().__init__(
            "The event was deleted in the calendar; it is made anew.",
            code="event_to_recreate",
            retry_after=1,
        )


def _update(calendar, link: SyncLink, reservation, binding) -> RemoteEvent:
    data = remote.event_data(reservation, binding)
    try:
        return calendar.update(link.external_id, data, version=link.remote_version)
    except VersionConflict:
        # Changed remotely since our last write (a room's answer, someone in Outlook): re-read
        # the current version and write ours once more; Reserva's reservation is the truth.
        current = _find(calendar, reservation.pk)
        if current is None:
            raise EventToRecreate() from None
        return calendar.update(current.id, data, version=current.version)
    except EventGone:
        raise EventToRecreate() from None


def _delete(calendar, link: SyncLink, reservation, lookup: bool) -> None:
    event_id, version = link.external_id, link.remote_version
    if lookup:
        found = _find(calendar, reservation.pk)
        if found is None:
            return
        event_id, version = found.id, ""
    try:
        calendar.delete(event_id, version=version)
    except VersionConflict:
        calendar.delete(event_id)  # cancelled here: the booking no longer exists either way


def _apply(
    action: PushAction, link: SyncLink, reservation, location: remote.Location | None
) -> str:
    """Carry out the planned action; returns what was done (counted in the SyncJob)."""
    if action.op is Op.NOOP:
        return "noop"
    if action.op is Op.DELETE:
        calendar = _calendar_at(link, reservation)
        _delete(calendar, link, reservation, action.lookup)
        calendar.save_token()
        record_removed(link, reservation.version)
        return "deleted"
    binding = location.binding  # a create, move or update has somewhere to go
    target = location.calendar()
    if action.op is Op.MOVE:
        old = _calendar_at(link, reservation)
        _delete(old, link, reservation, action.lookup)
        old.save_token()
        event = _create(target, reservation, binding, lookup=True)
    elif action.op is Op.CREATE:
        event = _create(target, reservation, binding, action.lookup)
    else:
        event = _update(target, link, reservation, binding)
    target.save_token()
    link.binding = binding
    apply_remote_result(link, event, reservation.version, place=location.place)
    return "updated" if action.op is Op.UPDATE else "created"


def _awaits_room(reservation: Reservation, done: str) -> bool:
    return (
        done == "created"
        and reservation.sync_mailbox == SyncMailbox.USER
        and reservation.status == ReservationStatus.PENDING
    )


def _paused_reason(reservation: Reservation, binding: SpaceCalendar | None) -> str:
    if binding is not None and binding.status == BindingStatus.PAUSED:
        return f"Sync is paused for this room: {binding.last_error}"
    if (
        reservation.sync_mailbox == SyncMailbox.USER
        and reservation.requested_for_id
        and not (binding and spec(binding.provider.kind).personal_by_impersonation)
    ):
        provider_id = binding.provider_id if binding else None
        token = UserToken.objects.filter(
            user_id=reservation.requested_for_id, provider_id=provider_id
        ).first()
        if token is None or token.status not in trouble.USABLE_TOKEN:
            return "The person's calendar connection has expired or was revoked."
    return ""


def _load(reservation_id: int) -> Reservation | None:
    return (
        Reservation.objects.select_related("space__location", "requested_for")
        .filter(pk=reservation_id)
        .first()
    )


def push_reservation(reservation_id: int) -> PushResult:
    """Bring the reservation's remote event in step with the reservation (see the module
    docstring). Raises TransientError (after recording it) so the task retries."""
    reservation = _load(reservation_id)
    if reservation is None:
        return PushResult(PushOutcome.GONE, "the reservation no longer exists")
    binding = binding_for(reservation)
    found = _link_to_push(reservation, binding)
    if found is None:
        return PushResult(Op.NOOP, "the space does not sync")
    link, fresh, location = found
    announced = announce_create(link, reservation, binding, fresh, location=location)
    job = _start_job(reservation, binding or link.binding)
    push = _Push(reservation_id, reservation, link, fresh, announced, job)
    # While the worker lives the job's heartbeat stays fresh; a job gone quiet is reclaimed
    # by beat (recovery.reclaim_lost_pushes) and the push queued again.
    heartbeat = Heartbeat(lambda: _beat(job.pk)).start()
    try:
        with transaction.atomic():
            applied = _push_locked(push)
    except remote.NotConnected as exc:
        if announced:  # raised before anything was sent
            withdraw_create(push.link.pk, announced)
        return _failed(job, push.link, LinkState.PAUSED, str(exc), JobStatus.PAUSED)
    except PermanentError as exc:
        _pause_for(exc, push.reservation, push.link)
        return _failed(job, push.link, LinkState.PAUSED, exc.message, JobStatus.PAUSED)
    except TransientError as exc:
        if isinstance(exc, EventToRecreate):
            SyncLink.objects.filter(pk=push.link.pk).update(external_id="", remote_version="")
        _failed(job, push.link, LinkState.FAILED, exc.message, JobStatus.FAILED, exc.retry_after)
        raise
    except ProviderError as exc:
        # VersionConflict twice in a row, or EventGone where it cannot be: retried later.
        _failed(job, push.link, LinkState.FAILED, exc.message, JobStatus.FAILED)
        raise TransientError(exc.message, status=exc.status, code=exc.code) from exc
    except Exception:
        # A bug or a lost database: the outcome of a create is unknown, and the link (not made
        # by this attempt any more) makes the next attempt look the event up first.
        message = "Unexpected error (see the worker log)."
        _failed(job, push.link, LinkState.FAILED, message, "failed")
        raise
    finally:
        heartbeat.stop()
    if isinstance(applied, PushResult):  # paused: nothing was sent
        return applied
    return _succeeded(push, applied)


@dataclass
class _Push:
    """One push's working state. ``link`` and ``reservation`` are replaced by the rows re-read
    under the lock as soon as they are read, so an error is recorded against the newest ones."""

    reservation_id: int
    reservation: Reservation | None
    link: SyncLink
    fresh: bool  # the link was made by this push
    announced: Announcement | None
    job: SyncJob


@dataclass(frozen=True)
class _Applied:
    """What the locked section did, recorded once its transaction has committed."""

    action: PushAction
    done: str  # "noop", "created", "updated" or "deleted"
    awaits_room: bool


def _link_to_push(
    reservation: Reservation, binding: SpaceCalendar | None
) -> tuple[SyncLink, bool, remote.Location | None] | None:
    """The link to push through (made now if missing: True), and where the event lives by the
    unlocked look; None when the space does not sync and the reservation has no link."""
    if binding is None:
        link = SyncLink.objects.filter(reservation=reservation).first()
        return None if link is None else (link, False, None)
    location = remote.locate(reservation, binding)  # the unlocked look's answer
    link, fresh = ensure_link(reservation, binding, location)
    return link, fresh, location


def _start_job(reservation: Reservation, binding: SpaceCalendar | None) -> SyncJob:
    return SyncJob.objects.create(
        kind=JobKind.PUSH,
        binding=binding,
        reservation=reservation,
        status=JobStatus.RUNNING,
        total=1,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def _push_locked(push: _Push) -> _Applied | PushResult:
    """Lock the link, re-read, plan and apply; runs inside the caller's transaction, which
    holds the lock until it commits. A PushResult when the push is paused."""
    push.link = (
        SyncLink.objects.select_for_update(of=("self",))
        .select_related("provider", "binding__provider")
        .get(pk=push.link.pk)
    )
    push.reservation = reservation = _load(push.reservation_id)  # the newest version wins
    binding = binding_for(reservation)
    # Where the event lives, worked out once for the plan and the write.
    location = remote.locate(reservation, binding) if binding is not None else None
    action = plan(reservation_state(reservation, location), link_state(push.link, fresh=push.fresh))
    paused = action.op is not Op.NOOP and _paused_reason(reservation, binding)
    if paused:
        return _pause_locked(push, paused)
    _settle_announcement(push, action)
    done = _apply(action, push.link, reservation, location)
    if binding is not None and done != "noop":
        SpaceCalendar.objects.filter(pk=binding.pk).update(last_synced_at=timezone.now())
    return _Applied(action, done, _awaits_room(reservation, done))


def _pause_locked(push: _Push, reason: str) -> PushResult:
    """The binding or the person's token is paused: the link waits, nothing is sent."""
    link = push.link
    link.state, link.last_error = LinkState.PAUSED, reason
    link.save(update_fields=["state", "last_error", "updated"])
    if push.announced:
        withdraw_create(link.pk, push.announced)
    _finish(push.job, JobStatus.PAUSED, error=reason)
    return PushResult(PushOutcome.PAUSED, reason)


def _settle_announcement(push: _Push, action: PushAction) -> None:
    """Withdraw an announced create the locked plan does not send; refuse to send one that
    was not announced."""
    if push.announced and action.op not in (Op.CREATE, Op.MOVE, Op.UPDATE):
        withdraw_create(push.link.pk, push.announced)  # (an update's save clears it)
    if action.op in (Op.CREATE, Op.MOVE) and not push.announced:
        # A change committed between the unlocked look and the lock made this a
        # create: it must be announced (committed) before it is sent, so not now.
        raise TransientError(
            "The push became a create while it waited for the lock; it runs again.",
            code="create_unannounced",
            retry_after=1,
        )


def _succeeded(push: _Push, applied: _Applied) -> PushResult:
    """Record a push whose locked section committed."""
    counts = {"created": "created_count", "updated": "updated_count", "deleted": "deleted_count"}
    _finish(
        push.job, JobStatus.SUCCEEDED, count=counts.get(applied.done), note=applied.action.reason
    )
    # Personal mode: the invited room answers a little later; ask it once the push is in.
    follow_up = (CheckRoom(push.reservation_id),) if applied.awaits_room else ()
    return PushResult(applied.action.op, applied.action.reason, follow_up)


def _pause_for(exc: PermanentError, reservation: Reservation, link: SyncLink) -> None:
    """Who must fix it: the person (their own token failed) or an administrator."""
    # A distrusted certificate or a refused endpoint is the connection alias's fault, not the
    # person's token's.
    personal = reservation.sync_mailbox == SyncMailbox.USER and not isinstance(
        exc, (TlsError, EndpointRefused)
    )
    token = (
        UserToken.objects.filter(
            user_id=reservation.requested_for_id, provider_id=link.provider_id
        ).first()
        if personal
        else None
    )
    if token is not None:
        trouble.pause_token(token.pk, exc)
    elif personal and isinstance(exc, CalendarGone) and _acts_in_mailboxes(link):
        # One person's address names no mailbox (Exchange Server, impersonation): their
        # booking's link is paused with why; the room still syncs everyone else's.
        trouble.mailbox_missing(link, reservation, exc.message)
    elif link.binding_id is not None:
        trouble.pause_binding(link.binding_id, exc.message)


def _acts_in_mailboxes(link: SyncLink) -> bool:
    return spec(link.provider.kind).personal_by_impersonation


def _beat(job_id: int) -> bool:
    return bool(
        SyncJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


def _failed(
    job: SyncJob,
    link: SyncLink,
    state: str,
    message: str,
    status: str,
    retry_after: float | None = None,
) -> PushResult:
    record_failure(link.pk, state, message, retry_after=retry_after)
    _finish(job, status, error=message)
    log.info("Push of reservation %s: %s (%s)", link.reservation_id, status, message)
    return PushResult(PushOutcome(status), message)


def _finish(
    job: SyncJob, status: str, *, count: str | None = None, error: str = "", note: str = ""
) -> None:
    job.status, job.done, job.finished_at = status, 1, timezone.now()
    job.heartbeat_at = job.finished_at
    if count:
        setattr(job, count, 1)
    if error:
        job.failed_count = 1
        job.errors = [{"reservation": job.reservation_id, "error": error[:500]}]
    elif note:
        job.errors = []
    job.save()
