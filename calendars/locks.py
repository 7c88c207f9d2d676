"""Short named locks between workers, and the heartbeat that keeps a live holder's claim fresh.

``with hold("webhook:12", wait=10): ...``, or ``acquire`` / ``renew`` / ``release`` with the
claim token ``acquire`` returns. Used where two workers must not do the same remote work at
once, such as creating a binding's webhook subscription (two would both be notified for ever).
Two backends, one behaviour, chosen per call:

- with ``REDIS_URL``: a Redis key ``SET NX PX`` (taken only if absent, expiring by itself);
  renewing and releasing compare the stored claim first, in one Lua script each, so a holder
  whose lock expired and was taken over touches nobody else's;
- without: a ``SyncLock`` row with a unique name: one upsert inserts it, or takes over a row
  past its ``expires_at`` (its worker died); a live row means another worker holds it.

Expiry is short (``SYNC_LOCK_TTL_SECONDS``, 45 s by default) and a live holder renews it from a
small background thread (:class:`Heartbeat`) every third of that, so a lock outlives a killed
worker by less than a minute however long the work inside runs. A thread rather than renewal
between steps, because the steps that take long are single provider calls (a timeout, a
``Retry-After``, the limiter's wait) that have no "between" to renew in. Push jobs
(``push.py``) and exports (``export.py``) use the same heartbeat for their own claims.

A claim that must be the durable record of who owns a piece of work (an export job, which is
resumed from the database alone and whose progress the admin shows) is kept on the work's own
row instead: :func:`take_row` and :func:`renew_row`, a claim token and a heartbeat stamp set by
conditional UPDATEs (of two racing workers, one wins). It expires the same way: a holder that
stops beating goes stale, and the caller's condition (``heartbeat_at < stale``) lets another
take it over.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, connections
from django.db.models import QuerySet
from django.utils import timezone

from .models import SyncLock

log = logging.getLogger(__name__)


class Busy(Exception):
    """Another worker holds the lock; try again shortly (tasks retry on it)."""


def ttl_seconds() -> float:
    """How long a claim lives without a heartbeat: the most a dead holder blocks others."""
    return float(settings.SYNC_LOCK_TTL_SECONDS)


class Heartbeat:
    """Call ``renew()`` every ``interval`` seconds from a daemon thread while the block runs.

    ``renew`` returns False when the claim is no longer ours (taken over after a stall): the
    heartbeat then stops, and ``lost`` tells the holder, who may stop at its next step. The
    thread uses its own database connection and closes it when it ends. Errors in ``renew``
    (a database blip) are logged and tried again at the next beat: a missed beat or two is
    what the TTL allows for.
    """

    def __init__(self, renew: Callable[[], bool], interval: float | None = None) -> None:
        self.renew = renew
        self.interval = interval if interval is not None else max(0.5, ttl_seconds() / 3)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reserva-heartbeat", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self.renew():
                        self.lost = True
                        return
                except Exception:
                    log.warning("Heartbeat failed; trying again", exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # Not waiting long: a beat blocked on the database ends by itself, and renewing a
        # claim that was released meanwhile changes nothing (every renewal checks the claim).
        self._thread.join(timeout=1.0)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def acquire(name: str, seconds: float | None = None) -> str | None:
    """Take the lock ``name`` for ``seconds`` (default: the TTL); the claim to renew and
    release it with, or None when someone else holds it."""
    claim = secrets.token_hex(16)
    ttl = seconds or ttl_seconds()
    if settings.REDIS_URL:
        return claim if _redis().set(_key(name), claim, nx=True, px=_ms(ttl)) else None
    return claim if _take_lock_row(name, claim, ttl) else None


def _take_lock_row(name: str, claim: str, ttl: float) -> bool:
    """Insert the lock's row, or take over an expired one, in one statement (an upsert whose
    update applies only to an expired row): True when the row is now ours. PostgreSQL and
    SQLite (3.24+) both count a skipped update as no row changed."""
    now = timezone.now()
    expires = SyncLock._meta.get_field("expires_at")
    table = connection.ops.quote_name(SyncLock._meta.db_table)
    name_col, claim_col, expires_col = (
        connection.ops.quote_name(column) for column in ("name", "claim", "expires_at")
    )
    # Only the model's own quoted table and column names are formatted in; values are params.
    sql = (
        f"INSERT INTO {table} ({name_col}, {claim_col}, {expires_col}) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT ({name_col}) DO UPDATE SET {claim_col} = excluded.{claim_col}, "
        f"{expires_col} = excluded.{expires_col} WHERE {table}.{expires_col} < %s"
    )
    params = [
        name,
        claim,
        expires.get_db_prep_value(now + timedelta(seconds=ttl), connection),
        expires.get_db_prep_value(now, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def renew(name: str, claim: str, seconds: float | None = None) -> bool:
    """Push our lock's expiry ``seconds`` (default: the TTL) from now; False if not ours."""
    ttl = seconds or ttl_seconds()
    if settings.REDIS_URL:
        return bool(_redis().eval(_RENEW, 1, _key(name), claim, _ms(ttl)))
    expires = timezone.now() + timedelta(seconds=ttl)
    return bool(SyncLock.objects.filter(name=name, claim=claim).update(expires_at=expires))


def release(name: str, claim: str) -> None:
    """Give the lock back (only our own claim: an expired lock may have been taken over)."""
    if settings.REDIS_URL:
        _redis().eval(_RELEASE, 1, _key(name), claim)
        return
    # One DELETE: the ORM's delete() wraps even a row without relations in a transaction.
    SyncLock.objects.filter(name=name, claim=claim)._raw_delete(SyncLock.objects.db)


# -- the Redis backend ------------------------------------------------------------------------

# Compare the claim and act in one step: between a GET and a DEL the lock could expire and be
# taken by another worker, whose lock we would then remove.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


@functools.cache
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)  # one connection pool per process (redis-py: fork-safe)


def _redis() -> Any:
    return _client(settings.REDIS_URL)


def _key(name: str) -> str:
    # The database's name is part of the key: ids in lock names repeat across databases
    # (tests, benchmarks, a staging copy) that may share one Redis.
    return f"reserva:lock:{settings.DATABASES['default']['NAME']}:{name}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@contextmanager
def hold(name: str, seconds: float | None = None, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock for the block, waiting up to ``wait`` seconds for it; raises ``Busy``.
    The lock lives ``seconds`` (default: the TTL) past the holder's last heartbeat."""
    deadline = time.monotonic() + wait
    while (claim := acquire(name, seconds)) is None:
        if time.monotonic() >= deadline:
            raise Busy(name)
        time.sleep(0.2)
    try:
        with Heartbeat(lambda: renew(name, claim, seconds)):
            yield
    finally:
        release(name, claim)


# -- claims kept on a work row ------------------------------------------------------------------


def take_row(rows: QuerySet, *, stamp: str = "heartbeat_at", **changes: Any) -> str | None:
    """Claim the row ``rows`` selects (its filter says when it may be taken: queued, or its
    holder's ``stamp`` stale), in one UPDATE that also saves ``changes``; the new claim (in
    the row's ``claim``), or None when another worker was first."""
    claim = secrets.token_hex(16)
    won = rows.update(claim=claim, **{stamp: timezone.now()}, **changes)
    return claim if won else None


def renew_row(rows: QuerySet, claim: str, *, stamp: str = "heartbeat_at", **changes: Any) -> bool:
    """The holder's heartbeat on its row (with ``changes``, if any); False when ``claim`` is
    no longer the row's (another worker took it over)."""
    return bool(rows.filter(claim=claim).update(**{stamp: timezone.now()}, **changes))
