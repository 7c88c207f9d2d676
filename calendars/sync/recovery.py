"""Recovery without an administrator: pushes whose worker died, and failed pushes retried.

A worker may die at any instruction (SIGKILL, OOM, a deploy). What it held expires by itself
(``calendars/locks.py``: locks and claims with a heartbeat); what it was doing is found here by
beat and queued again. Every push is idempotent (``push.py``), so queuing one twice costs a
second look, never a second event. Each function returns the reservation ids to push; the
task module queues them.

- ``reclaim_lost_pushes``: a push job still ``running`` whose heartbeat stopped (its worker
  is gone) is marked failed with the reason, and the push queued again; a waiting link
  (pending, or behind its reservation) untouched for ``SYNC_PUSH_LOST_SECONDS`` with no push
  running had its task message lost with a worker: queued again.
- ``retry_failed_pushes``: a ``failed`` link whose ``next_attempt_at`` has come is queued
  again. ``push.record_failure`` sets that time with capped exponential backoff
  (``retry_delay``) and gives up after ``SYNC_PUSH_GIVE_UP_HOURS`` of failures in a row,
  alerting the admins once (``trouble.push_gave_up``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from reservations.models import SLOT_HOLDING_STATUSES, Reservation

from ..locks import ttl_seconds
from ..models import BindingStatus, JobKind, JobStatus, LinkState, SyncJob, SyncLink

log = logging.getLogger(__name__)

BATCH = 500  # links per beat run: a large backlog is worked off over a few runs
LOST_WORKER = "The worker stopped during this push (killed or restarted); it was queued again."


def give_up_after() -> timedelta:
    return timedelta(hours=float(settings.SYNC_PUSH_GIVE_UP_HOURS))


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """How long after its ``attempts``-th failure in a row a link is retried by beat: 60 s
    doubling to the cap (30 min), never sooner than the provider's Retry-After. The first
    delays are longer than the task's own retries (5 s to 160 s), so beat does not race them;
    it takes over when they are spent, or lost with a worker."""
    base = float(settings.SYNC_PUSH_RETRY_BASE_SECONDS)
    cap = float(settings.SYNC_PUSH_RETRY_CAP_SECONDS)
    seconds = min(cap, base * 2 ** min(max(attempts - 1, 0), 20))
    return timedelta(seconds=max(seconds, retry_after or 0))


def reclaim_lost_pushes(now: datetime | None = None) -> list[int]:
    """Reservation ids whose push was lost with its worker (see the module docstring)."""
    now = now or timezone.now()
    quiet = now - timedelta(seconds=ttl_seconds())
    stale_jobs = SyncJob.objects.filter(kind=JobKind.PUSH, status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=quiet) | Q(heartbeat_at__isnull=True, started_at__lt=quiet)
    )
    reclaimed: list[int] = []
    for job_id, reservation_id in stale_jobs.values_list("pk", "reservation_id")[:BATCH]:
        # Conditional: a job that finished (or beat) meanwhile is left as it is.
        taken = (
            SyncJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)
            .filter(Q(heartbeat_at__lt=quiet) | Q(heartbeat_at__isnull=True))
            .update(
                status=JobStatus.FAILED,
                finished_at=now,
                failed_count=1,
                errors=[{"reservation": reservation_id, "error": LOST_WORKER}],
            )
        )
        if taken and reservation_id is not None:
            reclaimed.append(reservation_id)
    if reclaimed:
        log.warning("Pushes lost with their worker, queued again: %s", reclaimed)
    return sorted(set(reclaimed) | set(_lost_waiting_links(now)))


def _lost_waiting_links(now: datetime) -> list[int]:
    """Links waiting for a push that nobody is doing: not touched (nor their reservation)
    for ``SYNC_PUSH_LOST_SECONDS``, no push job running, no export running for the binding
    (an export sends its own pending links). Touching the link marks it handled for as long
    again, so one lost push is queued once per period, not once per beat."""
    cutoff = now - timedelta(seconds=settings.SYNC_PUSH_LOST_SECONDS)
    exporting = SyncJob.objects.filter(
        kind=JobKind.EXPORT, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    ).values("binding_id")
    waiting = (
        SyncLink.objects.filter(
            Q(state=LinkState.PENDING)
            | Q(state=LinkState.SYNCED, pushed_version__lt=F("reservation__version"))
        )
        .filter(
            updated__lt=cutoff,
            reservation__updated__lt=cutoff,
            binding__enabled=True,
            binding__provider__is_active=True,
        )
        .exclude(binding__status=BindingStatus.PAUSED)
        .exclude(binding_id__in=exporting)
        .exclude(
            reservation_id__in=SyncJob.objects.filter(
                kind=JobKind.PUSH, status=JobStatus.RUNNING
            ).values("reservation_id")
        )
    )
    found = list(waiting.order_by("updated").values_list("pk", "reservation_id")[:BATCH])
    if found:
        SyncLink.objects.filter(pk__in=[pk for pk, _ in found]).update(updated=now)
        log.warning("Pushes whose task was lost, queued again: %s", [r for _, r in found])
    return [reservation_id for _, reservation_id in found] + _unlinked(now, cutoff, exporting)


def _unlinked(now: datetime, cutoff: datetime, exporting) -> list[int]:
    """Bookings of a synced space whose first push never ran (no link yet): each gets its
    pending link now (so it is handled like the others from here on) and is queued."""
    from .push import ensure_link

    rows = (
        Reservation.objects.filter(
            status__in=SLOT_HOLDING_STATUSES,
            sync_link__isnull=True,
            end__gt=now,
            updated__lt=cutoff,
            space__calendar__enabled=True,
            space__calendar__provider__is_active=True,
        )
        .exclude(space__calendar__status=BindingStatus.PAUSED)
        .exclude(space__calendar__pk__in=exporting)
        .select_related("space__location", "space__calendar__provider", "requested_for")
        .order_by("updated")[:BATCH]
    )
    queued = []
    for reservation in rows:
        ensure_link(reservation, reservation.space.calendar)
        queued.append(reservation.pk)
    if queued:
        log.warning("First pushes whose task was lost, queued again: %s", queued)
    return queued


def retry_failed_pushes(now: datetime | None = None) -> list[int]:
    """Reservation ids of failed links whose next attempt has come."""
    now = now or timezone.now()
    due = SyncLink.objects.filter(state=LinkState.FAILED, next_attempt_at__lte=now).exclude(
        binding__status=BindingStatus.PAUSED
    )
    return _claim_attempts(due, now)


def retry_after_success(binding_id: int, now: datetime | None = None) -> list[int]:
    """Reservation ids of the binding's failed pushes that wait on their backoff, once a pull
    of it has just succeeded: the calendar answers again, so they are retried now instead of
    up to half an hour later (a flapping provider's failures had kept a room apart long after
    it recovered)."""
    now = now or timezone.now()
    waiting = SyncLink.objects.filter(
        binding_id=binding_id, state=LinkState.FAILED, next_attempt_at__gt=now
    )
    return _claim_attempts(waiting, now)


def _claim_attempts(links, now: datetime) -> list[int]:
    """Give each link its next attempt time first (a conditional UPDATE, so two beats or
    pulls never queue one twice, and a push lost again is retried again later; the push's
    own outcome then sets or clears it); the reservation ids of those claimed here."""
    rows = links.order_by("next_attempt_at").values_list(
        "pk", "reservation_id", "attempts", "next_attempt_at"
    )[:BATCH]
    queued = []
    for link_id, reservation_id, attempts, when in rows:
        if SyncLink.objects.filter(pk=link_id, next_attempt_at=when).update(
            next_attempt_at=now + retry_delay(attempts + 1)
        ):
            queued.append(reservation_id)
    return queued
