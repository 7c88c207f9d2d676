"""Celery tasks of the calendars app: thin wrappers that take ids, call the sync engine and
queue what it says should happen next (``dispatch``, ``calendars/sync/followups.py``). The
engine never imports this module."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .locks import Busy
from .sync.followups import CheckRoom, FollowUp, PushReservations, RequestPull, RunExport

if TYPE_CHECKING:
    from .models import SpaceCalendar, SyncJob

# The queue of the tasks that talk to calendar providers (pushes, pulls, webhooks,
# reconciliation): a burst of them (a provider slow to answer) never holds up booking emails,
# which stay on the default queue. Every worker (make run: -Q default,sync) consumes both.
# Named on each task's decorator (``queue_name``, read by the router in config/celery.py).
SYNC = "sync"


def retry_countdown(seconds: float) -> float:
    """A retry's wait, kept under the broker's visibility timeout: with Redis, a message whose
    ETA lies beyond it is handed to a second worker while the first still holds it, and again
    every timeout after that (duplicates multiplying). Longer waits (a large Retry-After) are
    left to the beat (``retry_failed_pushes``, the next poll)."""
    return max(1.0, min(float(seconds), float(settings.SYNC_TASK_MAX_COUNTDOWN_SECONDS)))


def dispatch(follow_ups: Iterable[FollowUp | None]) -> int:
    """Queue the tasks the engine asked for, once the current transaction commits (at once
    outside one): a worker must find the rows they are about. Returns how many."""
    count = 0
    for follow_up in follow_ups:
        match follow_up:
            case PushReservations(reservation_ids=ids):
                for pk in ids:  # one callback each, in order, so one failure stops no other
                    transaction.on_commit(lambda r=pk: push_reservation.delay(r), robust=True)
                count += len(ids)
            case CheckRoom(reservation_id=pk, attempt=attempt, after_seconds=wait):
                transaction.on_commit(
                    lambda r=pk, a=attempt, w=wait: check_room_response.apply_async(
                        (r, a), countdown=w or None
                    )
                )
                count += 1
            case RunExport(job_id=job_id, claim=claim):
                transaction.on_commit(lambda j=job_id, c=claim: run_export.delay(j, c))
                count += 1
            case RequestPull(binding_id=binding_id):
                count += request_pull(binding_id)
    return count


# -- bulk export (calendars/sync/export.py) ---------------------------------------------------


def start_export(binding: SpaceCalendar, requested_by: Any, dry_run: bool = False) -> SyncJob:
    """Queue an export of ``binding`` and hand it to a worker after commit; the queued job.
    Raises ``export.ExportRefused`` (see ``open_export``)."""
    from .sync import export

    job = export.open_export(binding, requested_by, dry_run=dry_run)
    dispatch([RunExport(job.pk)])
    return job


@shared_task(ignore_result=True, acks_late=False)
def run_export(job_id: int, claim: str = "") -> None:
    """Run or finish one export job; without the job's current claim it does nothing.

    Acknowledged early: an export may run longer than the broker's visibility timeout, and a
    redelivered copy would carry the live run's claim. A killed run is resumed by beat."""
    from .sync import export

    export.run_export_job(job_id, claim)


@shared_task(ignore_result=True)
def resume_stale_exports() -> int:
    """Beat, every 30 s: hand exports whose worker stopped to a new run.

    The claim is taken with an atomic UPDATE on the stale heartbeat, so two beats (or a beat
    and a slow worker) never both own a job; the old worker stops at its next heartbeat.
    """
    from .sync import export

    return dispatch(export.claim_stale_exports())


# -- personal tokens (calendars/tokens.py) ----------------------------------------------------


@shared_task(ignore_result=True)
def check_user_tokens() -> dict[str, int]:
    """Beat, daily: silently refresh every stored personal token and record its status
    (valid, expiring when idle near the provider's limit, expired or revoked when refused).
    Idempotent; logs token ids and outcomes only, never token material."""
    from . import tokens

    return tokens.check_all()


# -- push (calendars/sync/push.py, rooms.py, trouble.py) ---------------------------------------

PUSH_MAX_RETRIES = 6


@shared_task(
    bind=True, ignore_result=True, max_retries=PUSH_MAX_RETRIES, acks_late=True, queue_name=SYNC
)
def push_reservation(self, reservation_id: int) -> str:
    """Bring one reservation's remote event in step (create, update, delete, move or nothing).

    Idempotent: a duplicate or an older queued run is a no-op. Transient provider errors are
    retried with exponential backoff, or after the provider's Retry-After when it gave one;
    once these retries are spent (or lost with a worker), beat retries the failed link
    (``retry_failed_pushes``).
    """
    from integrations.base import TransientError

    from .sync import push

    try:
        result = push.push_reservation(reservation_id)
    except TransientError as exc:
        if exc.retry_after and exc.retry_after > settings.SYNC_TASK_MAX_COUNTDOWN_SECONDS:
            # Too long to wait in the broker (see retry_countdown): the link's next attempt
            # (after the Retry-After) is the beat's.
            return push.PushOutcome.FAILED
        countdown = retry_countdown(exc.retry_after or 5 * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from None
    dispatch(result.next)
    return result.op


@shared_task(ignore_result=True)
def reclaim_lost_pushes() -> int:
    """Beat, every 30 s: pushes whose worker died (a running job gone quiet, a waiting link
    nobody pushes) are recorded as failed and queued again. Returns how many."""
    from .sync import recovery

    return _queue_pushes(recovery.reclaim_lost_pushes())


@shared_task(ignore_result=True)
def retry_failed_pushes() -> int:
    """Beat, every minute: failed pushes whose next attempt has come (capped backoff, for
    ``SYNC_PUSH_GIVE_UP_HOURS``; then the admins are alerted once). Returns how many."""
    from .sync import recovery

    return _queue_pushes(recovery.retry_failed_pushes())


def _queue_pushes(reservation_ids: Iterable[int]) -> int:
    return dispatch([PushReservations(tuple(reservation_ids))])


@shared_task(ignore_result=True, queue_name=SYNC)
def check_room_response(reservation_id: int, attempt: int = 1) -> str:
    """Personal mode: the invited room's answer -> confirmed / cancelled; asks again later
    (a few times, further apart each time: ``rooms.ask_again``) while it has not answered."""
    from integrations.base import TransientError

    from .sync import rooms

    try:
        outcome = rooms.check_room_response(reservation_id)
    except TransientError:
        outcome = rooms.RoomAnswer.WAITING
    dispatch([rooms.ask_again(reservation_id, outcome, attempt)])
    return outcome


@shared_task(ignore_result=True, queue_name=SYNC)
def resume_binding(binding_id: int) -> int:
    """A binding works again (re-authorized, "Resume sync"): status ok, waiting pushes queued
    in order. Returns how many pushes were queued."""
    from .sync import trouble

    return dispatch([trouble.resume_binding(binding_id)])


@shared_task(ignore_result=True, queue_name=SYNC)
def resume_user(user_id: int, provider_id: int) -> int:
    """A person reconnected their calendar: their paused pushes are queued again, in order."""
    from .sync import trouble

    return dispatch([trouble.resume_user(user_id, provider_id)])


# -- webhooks (calendars/subscriptions.py, calendars/webhooks.py) -----------------------------


# Another worker holds the binding's webhook lock (calendars/locks.py): try again shortly.
WEBHOOK_TASK = {
    "bind": True,
    "ignore_result": True,
    "autoretry_for": (Busy,),
    "retry_kwargs": {"countdown": 15, "max_retries": 8},
    "queue_name": SYNC,
}


@shared_task(**WEBHOOK_TASK)
def ensure_subscription(self, binding_id: int, replace: bool = False) -> str:
    """The binding (enabled, authorized) gets a Graph subscription / Google channel; a
    disabled one loses it; ``replace`` (its room or calendar changed) swaps it for a new one.
    Idempotent: a live subscription is left alone."""
    from . import subscriptions

    outcome = subscriptions.ensure(binding_id, replace=replace)
    if outcome == "failed" and not self.request.is_eager and self.request.retries < 5:
        # Recorded on the binding (polling goes on). Often passing: Graph could not reach the
        # webhook address while the web server was starting. Again in 30 s, 1, 2, 4, 8 min;
        # after that the hourly renewal keeps trying. (An eager run would retry at once.)
        raise self.retry(countdown=30 * 2**self.request.retries, max_retries=5)
    return outcome


@shared_task(**WEBHOOK_TASK)
def remove_subscriptions(self, binding_id: int) -> int:
    """Authorization removed / sync switched off: delete the subscription, stop the channel."""
    from . import subscriptions

    return subscriptions.remove(binding_id)


@shared_task(ignore_result=True, queue_name=SYNC)
def renew_subscriptions() -> dict[str, int]:
    """Beat, hourly: renew webhooks expiring within a day (a failure alerts the admins once;
    polling covers the binding meanwhile) and create the missing ones."""
    from . import subscriptions

    return subscriptions.renew_due()


@shared_task(**WEBHOOK_TASK)
def webhook_lifecycle(self, subscription_id: int, event: str) -> str:
    """A verified Graph lifecycle notification: reauthorize (renew) or recreate."""
    from . import subscriptions

    return subscriptions.handle_lifecycle(subscription_id, event)


# -- pull (calendars/sync/pull/) ---------------------------------------------------------------


def request_pull(binding_id: int) -> bool:
    """Ask for a pull of this binding soon: the webhook endpoints' entry point.

    Coalesces: while a requested pull is queued, further requests do nothing; once it has
    started (the pull clears ``pull_requested_at`` when it takes the binding's lock), one more
    request queues exactly one more pull, which waits for the running one. Returns True when
    a pull was queued now. A request older than ``request_stale_after()`` whose task never ran
    (lost with its worker) is replaced."""
    from .models import SpaceCalendar
    from .sync.pull import request_stale_after

    now = timezone.now()
    queued = (
        SpaceCalendar.objects.filter(pk=binding_id, enabled=True)
        .filter(
            Q(pull_requested_at__isnull=True) | Q(pull_requested_at__lt=now - request_stale_after())
        )
        .update(pull_requested_at=now)
    )
    if queued:
        transaction.on_commit(lambda: pull_binding.delay(binding_id), robust=True)
    return bool(queued)


PULL_MAX_FAILURES = 6  # transient provider errors in a row; the next beat pull tries again
PULL_BUSY_SECONDS = 3  # a run owed a pull looks again this often while another pull runs


@shared_task(bind=True, ignore_result=True, max_retries=None, queue_name=SYNC)
def pull_binding(self, binding_id: int, failures: int = 0) -> str:
    """Pull one binding's remote changes (``request_pull`` queues this; never call ``delay``
    directly, or duplicates will not coalesce). While another pull of the binding runs, it
    waits (retries) only if a request is still owed a pull; a duplicate simply ends.

    Waiting has no retry limit: the other pull's lock lives only while its worker's heartbeat
    renews it (a killed worker's expires within ``SYNC_LOCK_TTL_SECONDS``), so an owed request
    is never dropped. Transient errors count separately (``failures``), and their wait stays
    under the broker's visibility timeout (``retry_countdown``)."""
    from integrations.base import TransientError

    from .sync import pull

    try:
        result = pull.pull_binding(binding_id)
    except TransientError as exc:
        if failures + 1 >= PULL_MAX_FAILURES:
            raise
        countdown = retry_countdown(exc.retry_after or 10 * 2 ** min(failures, 5))
        raise self.retry(
            exc=exc, countdown=countdown, args=(binding_id,), kwargs={"failures": failures + 1}
        ) from None
    dispatch(result.next)
    if result.status == pull.PullStatus.BUSY and pull.pull_owed(binding_id):
        raise self.retry(
            countdown=PULL_BUSY_SECONDS, args=(binding_id,), kwargs={"failures": failures}
        )
    if result.status == pull.PullStatus.SUCCEEDED:
        from .sync import recovery

        _queue_pushes(recovery.retry_after_success(binding_id))  # the calendar answers again
    return result.status


@shared_task(ignore_result=True, queue_name=SYNC)
def pull_due_bindings() -> int:
    """Beat, every minute: request a pull of each binding whose next pull time has come (the
    interval from SyncSettings, with jitter). Returns how many pulls were queued."""
    return queue_due_pulls()


def queue_due_pulls(now: datetime | None = None) -> int:
    """Request a pull of every due binding (``pull.due_bindings``) and set its next pull time
    (the interval from SyncSettings, with jitter); how many pulls were queued."""
    from .models import SpaceCalendar, SyncSettings
    from .sync import pull

    now = now or timezone.now()
    interval = SyncSettings.load().pull_interval_minutes
    count = 0
    for binding_id in pull.due_bindings(now):
        SpaceCalendar.objects.filter(pk=binding_id).update(
            next_pull_at=pull.next_pull_time(interval, now)
        )
        count += request_pull(binding_id)
    return count


# -- reconciliation (calendars/sync/reconcile.py) ----------------------------------------------

RECONCILE_MAX_RETRIES = 12  # a pull holding the binding's lock, or a transient error


@shared_task(
    bind=True,
    ignore_result=True,
    max_retries=RECONCILE_MAX_RETRIES,
    acks_late=True,
    queue_name=SYNC,
)
def reconcile_binding(self, binding_id: int, slot: str = "") -> str:
    """Compare one binding's sync window with its calendar and repair the drift; queue the
    pushes it asks for. While a pull of the binding runs it tries again a minute later.
    ``slot`` (ISO time, from the beat's tick): nothing to do if a run started since.
    Idempotent: a second run finds nothing left to repair."""
    from datetime import datetime

    from integrations.base import TransientError

    from .sync import reconcile

    if slot and reconcile.reconciled_since(binding_id, datetime.fromisoformat(slot)):
        return "done"
    try:
        result = reconcile.reconcile_binding(binding_id)
    except TransientError as exc:
        countdown = retry_countdown(exc.retry_after or 60 * 2 ** min(self.request.retries, 4))
        raise self.retry(exc=exc, countdown=countdown) from None
    if result.status == "busy":
        raise self.retry(countdown=60)
    _queue_pushes(result.push)
    return result.status


@shared_task(ignore_result=True, queue_name=SYNC)
def reconcile_bindings() -> int:
    """Beat, every few minutes: a reconciliation of each syncing binding whose daily slot
    (``RECONCILE_HOUR`` plus its offset within ``RECONCILE_SPREAD_MINUTES``) has come and
    that has none since. Returns how many were queued."""
    from .sync import reconcile

    due = reconcile.due_for_reconcile()
    for binding_id, slot in due:
        reconcile_binding.delay(binding_id, slot.isoformat())
    return len(due)


@shared_task(ignore_result=True)
def prune_sync_jobs() -> int:
    """Beat, hourly: delete the sync job records past their keeping time."""
    from . import retention

    return retention.prune_jobs()
