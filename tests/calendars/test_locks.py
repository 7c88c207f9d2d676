"""calendars/locks.py: one behaviour on both backends (Redis with ``REDIS_URL``, else
``SyncLock`` rows): one holder at a time, only the holder renews or releases, and a lock whose
holder died (no heartbeat) expires by itself."""

from __future__ import annotations

import time
import uuid

import pytest

from calendars import locks

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["rows", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, settings) -> str:
    if request.param == "rows":
        settings.REDIS_URL = ""
    return request.param


@pytest.fixture
def name() -> str:
    return f"test:{uuid.uuid4().hex[:8]}"  # a Redis shared with other runs keeps nothing


def test_one_holder_at_a_time(backend, name):
    claim = locks.acquire(name, 60)
    assert claim and locks.acquire(name, 60) is None
    locks.release(name, "not-the-claim")  # only the holder releases
    assert locks.acquire(name, 60) is None
    locks.release(name, claim)
    again = locks.acquire(name, 60)
    assert again and again != claim
    locks.release(name, again)


def test_only_the_holder_renews(backend, name):
    claim = locks.acquire(name, 60)
    assert locks.renew(name, claim, 60)
    assert not locks.renew(name, "not-the-claim", 60)
    locks.release(name, claim)
    assert not locks.renew(name, claim, 60)  # released: nothing to renew


def test_a_dead_holders_lock_expires_by_itself(backend, name):
    stale = locks.acquire(name, 0.3)  # its worker is killed: nobody renews it
    assert stale and locks.acquire(name, 60) is None
    time.sleep(0.5)
    claim = locks.acquire(name, 60)
    assert claim  # taken over
    assert not locks.renew(name, stale, 60)  # the old holder's claim is worth nothing now
    locks.release(name, stale)
    assert locks.acquire(name, 60) is None  # ...nor can it release the new holder's lock
    locks.release(name, claim)


@pytest.mark.django_db(transaction=True)  # the heartbeat thread sees the committed row
def test_hold_renews_while_the_block_runs(backend, name, settings):
    settings.SYNC_LOCK_TTL_SECONDS = 1.5  # a heartbeat every 0.5 s
    with locks.hold(name):
        time.sleep(2.5)  # longer than the TTL: only the heartbeat keeps it
        assert locks.acquire(name, 60) is None
    claim = locks.acquire(name, 60)
    assert claim  # released at the end of the block
    locks.release(name, claim)


def test_a_claim_kept_on_a_work_row():
    """take_row / renew_row (an export job's claim): of two takers one wins, and only the
    claim stored on the row beats (a worker whose job was taken over stops)."""
    from calendars.models import JobKind, JobStatus, SyncJob

    job = SyncJob.objects.create(kind=JobKind.EXPORT, status=JobStatus.QUEUED)
    queued = SyncJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED)
    claim = locks.take_row(queued, status=JobStatus.RUNNING)
    assert claim and locks.take_row(queued, status=JobStatus.RUNNING) is None
    job.refresh_from_db()
    assert (job.status, job.claim) == (JobStatus.RUNNING, claim) and job.heartbeat_at

    rows = SyncJob.objects.filter(pk=job.pk)
    assert locks.renew_row(rows, claim, done=3)
    assert not locks.renew_row(rows, "not-the-claim", done=4)
    job.refresh_from_db()
    assert job.done == 3
