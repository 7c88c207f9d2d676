"""Crash recovery without an administrator (issue 12, item 3): a real Celery worker is killed
with SIGKILL in the middle of a pull or a push, a new worker starts, and the room syncs again
by itself, with nobody calling a recovery function: the lock of the killed pull expires (its
heartbeat stopped), and the beat's own task messages (sent here as beat sends them, a tick
every second, instead of waiting for beat's 30 s period) find the push that died.

The workers run with ``SYNC_LOCK_TTL_SECONDS=3`` so that a test takes seconds, not a minute.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, timedelta

import pytest
from django.conf import settings

from calendars import tasks
from calendars.models import JobKind, JobStatus, SpaceCalendar, SyncJob, SyncLink
from calendars.sync import recovery
from reservations import services
from reservations.models import Reservation
from tests.calendars.conftest import MS_ROOM, control, hold_graph_answer, remote_events, sync_worker
from tests.conftest import local, next_weekday, wait_for
from tests.support.recovery import free_limiter_slots

FAST = {"SYNC_LOCK_TTL_SECONDS": "3"}
RECOVERY_BEAT = ("reclaim-lost-pushes", "retry-failed-pushes", "pull-due-bindings")


_last_tick = [0.0]


def beat_tick() -> None:
    """Send the recovery entries of the beat schedule, as ``celery beat`` does (at most once
    a second: the solo worker runs each message in turn)."""
    from config.celery import app

    if time.monotonic() - _last_tick[0] < 1.0:
        return
    _last_tick[0] = time.monotonic()
    for name in RECOVERY_BEAT:
        if name in settings.CELERY_BEAT_SCHEDULE:
            app.send_task(settings.CELERY_BEAT_SCHEDULE[name]["task"])


def kill(worker) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


@pytest.fixture
def release_leases(ms_binding):
    yield
    free_limiter_slots(ms_binding)


def _times(begin):
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": begin.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (begin + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"},
    }


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_pull_does_not_block_the_next_one(ms_binding, sandbox, release_leases):
    start = local(ms_binding.space.location, next_weekday(2), 10).astimezone(UTC)
    control(
        sandbox,
        "POST",
        f"microsoft/mailboxes/{MS_ROOM}/events",
        json={"subject": "Walk-in", **_times(start)},
    )
    # The first pull hangs in its read of the changes, holding the room's pull lock.
    hold_graph_answer(sandbox, "GET", "delta")
    with sync_worker("test-recovery", **FAST) as worker:
        assert tasks.request_pull(ms_binding.pk)
        taken = wait_for(
            lambda: SpaceCalendar.objects.filter(
                pk=ms_binding.pk, pull_requested_at__isnull=True
            ).exists(),
            30,
        )
        assert taken, "the worker did not start the pull"
        time.sleep(1)  # well inside the slow read
        kill(worker)
    assert not Reservation.objects.filter(space=ms_binding.space).exists()

    with sync_worker("test-recovery", **FAST):
        # A webhook's request: queued (the killed pull had taken the flag), and it must not
        # be swallowed by the dead worker's lock.
        assert tasks.request_pull(ms_binding.pk)
        row = wait_for(lambda: Reservation.objects.filter(space=ms_binding.space).first(), 45)
        assert row is not None, "the next pull stayed blocked by the killed pull's lock"
        assert row.title == "Walk-in" and row.start == start
    job = SyncJob.objects.filter(kind=JobKind.PULL, binding=ms_binding).latest("pk")
    assert job.status == JobStatus.SUCCEEDED


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_push_killed_mid_create_is_reclaimed_and_sent_once(
    ms_binding, sandbox, make_user, release_leases
):
    # The create lands in the room, but its answer is held back: the worker dies waiting.
    hold_graph_answer(sandbox, "POST", "events")
    user = make_user()
    start = local(ms_binding.space.location, next_weekday(3), 10)
    with sync_worker("test-recovery", **FAST) as worker:
        reservation = services.book(
            actor=user, space=ms_binding.space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
        running = wait_for(
            lambda: SyncJob.objects.filter(
                kind=JobKind.PUSH, reservation=reservation, status=JobStatus.RUNNING
            ).first(),
            30,
        )
        assert running is not None, "the worker did not start the push"
        assert wait_for(lambda: remote_events(sandbox, "microsoft", MS_ROOM), 30)
        kill(worker)
    lost = SyncJob.objects.get(pk=running.pk)
    assert lost.status == JobStatus.RUNNING  # nobody finished it

    with sync_worker("test-recovery", **FAST):

        def recovered() -> bool:
            beat_tick()
            link = SyncLink.objects.filter(reservation=reservation).first()
            return bool(link and link.state == "synced" and link.external_id)

        assert wait_for(recovered, 45), "the killed push was never sent again"
    lost.refresh_from_db()
    assert lost.status == JobStatus.FAILED
    assert lost.errors[0]["error"] == recovery.LOST_WORKER
    # The event the killed attempt created was found by its tag, not created twice.
    events = remote_events(sandbox, "microsoft", MS_ROOM)
    assert len(events) == 1
    assert SyncLink.objects.get(reservation=reservation).external_id == events[0]["id"]
