"""A pull's claim on its binding, and what the scheduling of pulls asks about bindings.

One binding is never pulled (or reconciled) by two workers at once: ``acquire`` takes the
binding's lock ``pull:<id>`` from ``calendars.locks`` (Redis ``SET NX PX`` when
``REDIS_URL`` is set, else a ``SyncLock`` row), the holder's heartbeat ``renew``s it and
``release`` gives it back; it lives ``locks.ttl_seconds()`` past the last heartbeat, so a
killed pull stops blocking the room within a minute.

Queuing pulls is the tasks' job (``calendars.tasks.request_pull``, ``pull_due_bindings``);
they ask this module when a request is stale, which bindings are due and when next.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ... import locks
from ...models import BindingStatus, SpaceCalendar


def request_stale_after() -> timedelta:
    """A queued request older than this whose pull never started was lost with its task (a
    killed worker held the message): the next request, or the beat, queues another."""
    return timedelta(seconds=settings.SYNC_PULL_REQUEST_STALE_SECONDS)


def lock_name(binding_id: int) -> str:
    """The name of a binding's pull lock in ``calendars.locks`` (pulls and reconciliations)."""
    return f"pull:{binding_id}"


def acquire(binding_id: int, *, takes_request: bool = True) -> str | None:
    """Take the binding's pull lock (``calendars.locks``: Redis with ``REDIS_URL``, else a
    ``SyncLock`` row); the claim to renew and release it with, or None when another run holds
    it. The lock lives ``locks.ttl_seconds()`` past its holder's last heartbeat (``renew``),
    so a killed pull blocks the next one for less than a minute.

    A pull (``takes_request``) also clears the queued-request flag: requests arriving from
    now on cause one more pull. A reconciliation leaves it, so a pull requested meanwhile
    still runs once the lock is free (its task waits while a request is owed)."""
    claim = locks.acquire(lock_name(binding_id))
    if claim is not None and takes_request:
        SpaceCalendar.objects.filter(pk=binding_id).update(pull_requested_at=None)
    return claim


def renew(binding_id: int, claim: str) -> bool:
    """The holder's heartbeat: our lock lives another TTL; False when it is not ours."""
    return locks.renew(lock_name(binding_id), claim)


def release(binding_id: int, claim: str, **fields) -> None:
    """Give the lock back (only our own claim), then save ``fields`` on the binding."""
    locks.release(lock_name(binding_id), claim)
    if fields:
        SpaceCalendar.objects.filter(pk=binding_id).update(**fields)


def pull_owed(binding_id: int) -> bool:
    """A request is waiting for a pull that has not started (a busy run should retry)."""
    return SpaceCalendar.objects.filter(pk=binding_id, pull_requested_at__isnull=False).exists()


def next_pull_time(interval_minutes: int, now: datetime | None = None) -> datetime:
    """Now plus the interval, +/- 20% jitter: rooms bound together drift apart instead of
    being polled in the same minute for ever."""
    now = now or timezone.now()
    seconds = max(60, interval_minutes * 60)
    jitter = secrets.SystemRandom().uniform(-0.2, 0.2) * seconds
    return now + timedelta(seconds=seconds + jitter)


def due_bindings(now: datetime | None = None) -> list[int]:
    """Bindings whose next pull time has come (or that were never pulled)."""
    now = now or timezone.now()
    return list(
        SpaceCalendar.objects.filter(enabled=True, provider__is_active=True)
        .exclude(status=BindingStatus.PAUSED)
        .filter(
            Q(next_pull_at__isnull=True)
            | Q(next_pull_at__lte=now)
            # A request whose task was lost (its worker killed) is owed a pull now.
            | Q(pull_requested_at__lt=now - request_stale_after())
        )
        .order_by("next_pull_at", "pk")
        .values_list("pk", flat=True)
    )
