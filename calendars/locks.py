"""Short named locks between workers: ``with hold("webhook:12", 120, wait=10): ...``.

A lock is a ``SyncLock`` row with a unique name: inserting it takes the lock, an
``IntegrityError`` means another worker holds it. A lock past its ``expires_at`` (its worker
died) is taken over. Used where two workers must not do the same remote work at once, such as
creating a binding's webhook subscription (two would both be notified for ever).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import SyncLock


class Busy(Exception):
    """Another worker holds the lock; try again shortly (tasks retry on it)."""


def acquire(name: str, seconds: int) -> str | None:
    """Take the lock ``name`` for at most ``seconds``; the claim to release it with, or None
    when someone else holds it."""
    now = timezone.now()
    claim = secrets.token_hex(16)
    SyncLock.objects.filter(name=name, expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            SyncLock.objects.create(
                name=name, claim=claim, expires_at=now + timedelta(seconds=seconds)
            )
    except IntegrityError:
        return None
    return claim


def release(name: str, claim: str) -> None:
    """Give the lock back (only our own claim: an expired lock may have been taken over)."""
    SyncLock.objects.filter(name=name, claim=claim).delete()


@contextmanager
def hold(name: str, seconds: int, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock for the block, waiting up to ``wait`` seconds for it; raises ``Busy``."""
    deadline = time.monotonic() + wait
    while (claim := acquire(name, seconds)) is None:
        if time.monotonic() >= deadline:
            raise Busy(name)
        time.sleep(0.2)
    try:
        yield
    finally:
        release(name, claim)
