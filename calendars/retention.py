"""How long sync job records are kept (``prune_jobs``, run hourly by beat).

Every push, export, pull and reconciliation leaves a ``SyncJob`` row for the admin's history,
and a room polled every five minutes leaves 288 a day even when nothing changed: kept for
ever, 10,000 rooms would add about a billion rows a year (bench/scale.py). Finished jobs are
deleted after ``SYNC_JOB_KEEP_DAYS``; a pull that found nothing (no event read, nothing
failed) after ``SYNC_IDLE_PULL_KEEP_HOURS``, long enough to show the admin that polling runs.
Queued and running jobs are never touched: an export's row is its claim.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import JobKind, JobStatus, SyncJob

FINISHED = (JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.PAUSED)
BATCH = 5_000  # rows per DELETE: short transactions, no long lock on a busy table


def expired(now: datetime | None = None) -> Q:
    """The finished jobs past their keeping time."""
    now = now or timezone.now()
    old = Q(finished_at__lt=now - timedelta(days=settings.SYNC_JOB_KEEP_DAYS))
    idle_pull = Q(
        kind=JobKind.PULL,
        status=JobStatus.SUCCEEDED,
        total=0,
        finished_at__lt=now - timedelta(hours=settings.SYNC_IDLE_PULL_KEEP_HOURS),
    )
    return Q(status__in=FINISHED) & (old | idle_pull)


def prune_jobs(now: datetime | None = None) -> int:
    """Delete the expired job records in batches; how many went."""
    rule = expired(now)
    deleted = 0
    while True:
        ids = list(SyncJob.objects.filter(rule).values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        deleted += SyncJob.objects.filter(pk__in=ids).delete()[0]
