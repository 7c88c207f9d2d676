"""Sync job records are pruned: finished ones after SYNC_JOB_KEEP_DAYS, pulls that found
nothing after SYNC_IDLE_PULL_KEEP_HOURS, queued and running ones never."""

from datetime import timedelta

import pytest
from django.utils import timezone

from calendars import retention
from calendars.models import JobKind, JobStatus, SyncJob

pytestmark = pytest.mark.django_db


def job(kind, status, *, hours_ago, total=0):
    return SyncJob.objects.create(
        kind=kind,
        status=status,
        total=total,
        finished_at=timezone.now() - timedelta(hours=hours_ago),
    ).pk


def test_finished_jobs_go_after_their_keeping_time_and_live_ones_stay(settings, monkeypatch):
    settings.SYNC_JOB_KEEP_DAYS = 30
    settings.SYNC_IDLE_PULL_KEEP_HOURS = 24
    monkeypatch.setattr(retention, "BATCH", 2)  # several batches
    kept = {
        job(JobKind.PULL, JobStatus.SUCCEEDED, hours_ago=23),  # idle pull, still recent
        job(JobKind.PULL, JobStatus.SUCCEEDED, hours_ago=48, total=3),  # read events
        job(JobKind.PULL, JobStatus.FAILED, hours_ago=48),  # a failure stays for a month
        job(JobKind.PUSH, JobStatus.SUCCEEDED, hours_ago=29 * 24),
        job(JobKind.EXPORT, JobStatus.RUNNING, hours_ago=90 * 24),  # its row is its claim
        job(JobKind.EXPORT, JobStatus.QUEUED, hours_ago=90 * 24),
    }
    gone = {
        job(JobKind.PULL, JobStatus.SUCCEEDED, hours_ago=25),
        job(JobKind.PULL, JobStatus.SUCCEEDED, hours_ago=26),
        job(JobKind.PULL, JobStatus.SUCCEEDED, hours_ago=27),
        job(JobKind.PUSH, JobStatus.SUCCEEDED, hours_ago=31 * 24),
        job(JobKind.EXPORT, JobStatus.PARTIAL, hours_ago=31 * 24),
        job(JobKind.RECONCILE, JobStatus.PAUSED, hours_ago=31 * 24),
    }
    assert retention.prune_jobs() == len(gone)
    assert set(SyncJob.objects.values_list("pk", flat=True)) == kept
    assert retention.prune_jobs() == 0


def test_beat_prunes_hourly(settings):
    from calendars import tasks

    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["calendars.tasks.prune_sync_jobs"] == 3600.0
    job(JobKind.PUSH, JobStatus.SUCCEEDED, hours_ago=31 * 24)
    assert tasks.prune_sync_jobs.apply().get() == 1
