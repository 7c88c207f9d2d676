"""A pull's claim on its binding, and the requests for pulls.

One binding is never pulled (or reconciled) by two workers at once: ``acquire`` takes the
binding's pull claim (a Redis lock, ``SET NX PX``, when ``REDIS_URL`` is set, else an
atomic update of ``SpaceCalendar.pull_claim``), the holder's heartbeat ``renew``s it and
``release`` gives it back; it lives ``locks.ttl_seconds()`` past the last heartbeat, so a
killed pull stops blocking the room within a minute.

``request_pull`` (the webhook endpoint's and the beat's entry point) coalesces requests into
one queued ``pull_binding`` task; ``due_bindings`` and ``pull_due_bindings`` are the beat's
polling of the rooms whose next pull time has come.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ... import locks
from ...models import BindingStatus, SpaceCalendar, SyncSettings


def request_stale_after() -> timedelta:
    """A queued request older than this whose pull never started was lost with its task (a
    killed worker held the message): the next request, or the beat, queues another."""
    return timedelta(seconds=settings.SYNC_PULL_REQUEST_STALE_SECONDS)


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def _lock_key(binding_id: int) -> str:
    # The database's name is part of the key: binding ids repeat across databases (tests,
    # benchmarks, a staging copy) that may share one Redis.
    return f"reserva:pull:{settings.DATABASES['default']['NAME']}:{binding_id}"


def acquire(binding_id: int) -> str | None:
    """Take the binding's pull lock; the claim to release it with, or None when another run
    holds it. Redis (``SET NX PX``) when configured, else an atomic UPDATE of the binding row
    (works on SQLite and PostgreSQL alike). Either way the lock lives ``locks.ttl_seconds()``
    past its holder's last heartbeat (``renew``), so a killed pull blocks the next one for
    less than a minute. Taking it also clears the queued-request flag: requests arriving from
    now on cause one more pull."""
    claim = secrets.token_hex(16)
    now = timezone.now()
    ttl = locks.ttl_seconds()
    if settings.REDIS_URL:
        if not _redis().set(_lock_key(binding_id), claim, nx=True, px=int(ttl * 1000)):
            return None
        SpaceCalendar.objects.filter(pk=binding_id).update(pull_requested_at=None)
        return claim
    taken = (
        SpaceCalendar.objects.filter(pk=binding_id)
        .filter(
            Q(pull_claim="")
            | Q(pull_claimed_at__isnull=True)
            | Q(pull_claimed_at__lt=now - timedelta(seconds=ttl))
        )
        .update(pull_claim=claim, pull_claimed_at=now, pull_requested_at=None)
    )
    return claim if taken else None


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def renew(binding_id: int, claim: str) -> bool:
    """The holder's heartbeat: our lock lives another TTL; False when it is not ours."""
    if settings.REDIS_URL:
        ttl_ms = int(locks.ttl_seconds() * 1000)
        return bool(_redis().eval(_RENEW, 1, _lock_key(binding_id), claim, ttl_ms))
    return bool(
        SpaceCalendar.objects.filter(pk=binding_id, pull_claim=claim).update(
            pull_claimed_at=timezone.now()
        )
    )


def release(binding_id: int, claim: str, **fields) -> None:
    """Give the lock back (only our own claim), saving ``fields`` on the binding at once."""
    if settings.REDIS_URL:
        _redis().eval(_RELEASE, 1, _lock_key(binding_id), claim)
        if fields:
            SpaceCalendar.objects.filter(pk=binding_id).update(**fields)
        return
    SpaceCalendar.objects.filter(pk=binding_id, pull_claim=claim).update(
        pull_claim="", pull_claimed_at=None, **fields
    )


def request_pull(binding_id: int) -> bool:
    """Ask for a pull of this binding soon (the webhook endpoint's and the beat's entry point).

    Coalesces: while a requested pull is queued, further requests do nothing; once it has
    started (the flag is cleared when it takes the lock), one more request queues exactly one
    more pull, which waits for the running one. Returns True when a pull was queued now. A
    request older than ``request_stale_after()`` whose task never ran is replaced."""
    now = timezone.now()
    queued = (
        SpaceCalendar.objects.filter(pk=binding_id, enabled=True)
        .filter(
            Q(pull_requested_at__isnull=True) | Q(pull_requested_at__lt=now - request_stale_after())
        )
        .update(pull_requested_at=now)
    )
    if queued:
        from ...tasks import pull_binding as task

        transaction.on_commit(lambda: task.delay(binding_id), robust=True)
    return bool(queued)


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


def pull_due_bindings(now: datetime | None = None) -> int:
    """Beat fan-out: request a pull of every due binding and schedule its next one."""
    now = now or timezone.now()
    interval = SyncSettings.load().pull_interval_minutes
    count = 0
    for binding_id in due_bindings(now):
        SpaceCalendar.objects.filter(pk=binding_id).update(
            next_pull_at=next_pull_time(interval, now)
        )
        count += request_pull(binding_id)
    return count
