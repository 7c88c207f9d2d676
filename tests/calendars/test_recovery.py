"""Recovery without an administrator, in one process (issue 12, item 3; the crash paths with
real killed workers are in test_recovery_worker.py): a lock held by a killed process expires
within its TTL while a live holder's heartbeat keeps it; failed pushes are retried by the
beat's task with capped backoff, and given up after a day with one alert to the admins; a
retry's countdown stays under the broker's visibility timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from calendars import locks, tasks
from calendars.models import LinkState, SyncLink
from calendars.sync import pull, push, recovery
from integrations.base import TransientError
from reservations.models import Reservation
from tests.calendars.conftest import MS_ROOM, control, hold_graph_answer, remote_events
from tests.conftest import ROOT, subprocess_env, wait_for
from tests.support.recovery import free_limiter_slots

HOLDER = """
import sys, time
import django
django.setup()
from calendars.locks import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.mark.django_db(transaction=True)
def test_a_killed_holders_lock_expires_and_a_live_one_is_kept():
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "recovery-test"],
        cwd=ROOT,
        env=subprocess_env(SYNC_LOCK_TTL_SECONDS="1.5"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(4)  # more than twice the TTL: only the heartbeat keeps the lock
        assert locks.acquire("recovery-test", 1.5) is None
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    claim = wait_for(lambda: locks.acquire("recovery-test", 1.5), timeout=10)
    assert claim, "the killed holder's lock did not expire"


PULLER = """
import sys
import django
django.setup()
from calendars.sync import pull
print("pulling", flush=True)
pull.pull_binding(int(sys.argv[1]))
"""


@pytest.mark.django_db(transaction=True)
def test_a_pull_killed_in_another_process_stops_blocking_the_room(ms_binding, sandbox, settings):
    """The pull lock on whichever back end this run has (the binding row on SQLite, Redis
    with REDIS_URL): kept by the heartbeat while the pull lives, gone soon after a kill."""
    settings.SYNC_LOCK_TTL_SECONDS = 1.5
    hold_graph_answer(sandbox, "GET", "delta")
    puller = subprocess.Popen(
        [sys.executable, "-c", PULLER, str(ms_binding.pk)],
        cwd=ROOT,
        env=subprocess_env(SYNC_LOCK_TTL_SECONDS="1.5"),
    )
    try:
        # The fault is used up once the other process's read of the changes hangs in it.
        hanging = wait_for(lambda: not control(sandbox, "GET", "faults")["value"], timeout=30)
        assert hanging, "the other process did not start its pull"
        time.sleep(4)  # more than twice the TTL: only the heartbeat keeps the lock
        assert pull.pull_binding(ms_binding.pk).status == "busy"
    finally:
        os.kill(puller.pid, signal.SIGKILL)
        puller.wait(timeout=10)
    try:
        pulled = wait_for(lambda: pull.pull_binding(ms_binding.pk).status == "succeeded", 10)
        assert pulled, "the killed pull's lock still blocks the room"
    finally:
        free_limiter_slots(ms_binding)


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


def _fail_creates(sandbox) -> None:
    control(
        sandbox,
        "POST",
        "faults",
        json={"kind": "500", "service": "graph", "method": "POST", "path": "events",
              "count": 1000},
    )  # fmt: skip


def test_a_failed_push_is_retried_by_beat_with_backoff(
    ms_binding, sandbox, make_reservation, django_capture_on_commit_callbacks, settings
):
    settings.SYNC_PUSH_RETRY_BASE_SECONDS = 60
    _fail_creates(sandbox)
    reservation = make_reservation(ms_binding.space)
    with pytest.raises(TransientError):
        push.push_reservation(reservation.pk)
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.FAILED and link.failing_since is not None
    assert link.next_attempt_at >= timezone.now() + timedelta(seconds=59)
    assert tasks.retry_failed_pushes() == 0  # not due yet

    control(sandbox, "DELETE", "faults")
    SyncLink.objects.filter(pk=link.pk).update(next_attempt_at=timezone.now())  # time passed
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.retry_failed_pushes() == 1
    link.refresh_from_db()
    assert link.state == LinkState.SYNCED and link.external_id
    assert link.next_attempt_at is None and link.failing_since is None
    assert [e["id"] for e in remote_events(sandbox, "microsoft", MS_ROOM)] == [link.external_id]


def test_a_successful_pull_retries_the_pushes_waiting_on_their_backoff(
    ms_binding, sandbox, make_reservation, django_capture_on_commit_callbacks, settings
):
    """The calendar answers again: a failed push waiting up to half an hour for beat is sent
    at once, by the pull that found the room answering (the convergence run settled 117 s
    after its last kill, waiting on one such push). Once, not by every pull."""
    settings.SYNC_PUSH_RETRY_BASE_SECONDS = 600
    _fail_creates(sandbox)
    reservation = make_reservation(ms_binding.space)
    with pytest.raises(TransientError):
        push.push_reservation(reservation.pk)
    control(sandbox, "DELETE", "faults")

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.pull_binding.apply(args=(ms_binding.pk,)).get() == "succeeded"
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.SYNCED and link.external_id
    assert [e["id"] for e in remote_events(sandbox, "microsoft", MS_ROOM)] == [link.external_id]
    assert recovery.retry_after_success(ms_binding.pk) == []  # nothing waits any more


def test_the_backoff_is_capped_and_never_shorter_than_retry_after(settings):
    settings.SYNC_PUSH_RETRY_BASE_SECONDS = 60
    settings.SYNC_PUSH_RETRY_CAP_SECONDS = 1800
    delays = [recovery.retry_delay(n).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1800, 1800, 1800]
    assert recovery.retry_delay(1, retry_after=900).total_seconds() == 900
    # At the cap, 24 hours hold dozens of attempts before anyone is asked to act.
    assert 24 * 3600 / delays[-1] >= 40


def test_a_push_failing_for_a_day_is_given_up_with_one_alert(
    ms_binding, sandbox, make_reservation, admin_user, django_capture_on_commit_callbacks
):
    _fail_creates(sandbox)
    reservation = make_reservation(ms_binding.space)
    link, _ = push.ensure_link(reservation, ms_binding)
    SyncLink.objects.filter(pk=link.pk).update(
        state=LinkState.FAILED,
        failing_since=timezone.now() - timedelta(hours=25),
        next_attempt_at=timezone.now(),
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.retry_failed_pushes() == 1  # the last retry: it fails again
    link.refresh_from_db()
    assert link.state == LinkState.FAILED and link.next_attempt_at is None  # given up
    alerts = [m for m in mail.outbox if "Calendar push failing" in m.subject]
    assert len(alerts) == 1 and alerts[0].to == ["root@example.com"]
    assert f"booking #{reservation.pk}" in alerts[0].body

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.retry_failed_pushes() == 0  # beat leaves it alone now
        with pytest.raises(TransientError):  # the task's own retry, or a person's change
            push.push_reservation(reservation.pk)
    link.refresh_from_db()
    assert link.next_attempt_at is None  # still given up: no new day of retries by itself
    assert len([m for m in mail.outbox if "Calendar push failing" in m.subject]) == 1

    # An administrator's "Retry failed pushes" starts a new day of beat retries.
    from calendars.admin.sync import _enqueue_pushes

    with pytest.raises(Retry):  # eager: the push runs, fails again, and asks for a retry
        _enqueue_pushes([reservation.pk])
    link.refresh_from_db()
    assert link.next_attempt_at is not None
    assert link.failing_since > timezone.now() - timedelta(minutes=1)
    assert len([m for m in mail.outbox if "Calendar push failing" in m.subject]) == 1


def test_a_retry_countdown_stays_under_the_visibility_timeout(settings):
    assert settings.SYNC_TASK_MAX_COUNTDOWN_SECONDS < settings.BROKER_VISIBILITY_TIMEOUT
    assert tasks.retry_countdown(5) == 5
    assert tasks.retry_countdown(3600) == settings.SYNC_TASK_MAX_COUNTDOWN_SECONDS
    if settings.REDIS_URL:
        transport = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        assert transport["visibility_timeout"] == settings.BROKER_VISIBILITY_TIMEOUT


def test_a_first_push_whose_message_was_lost_is_sent_by_beat(
    ms_binding, sandbox, make_reservation, django_capture_on_commit_callbacks
):
    # Booked, but the push task never ran (its message went down with a worker): the
    # booking's after-commit callbacks are dropped here, as a lost message would be.
    reservation = make_reservation(ms_binding.space)
    assert not SyncLink.objects.filter(reservation=reservation).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reclaim_lost_pushes() == 0  # too recent: its push may still be queued
    Reservation.objects.filter(pk=reservation.pk).update(
        updated=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reclaim_lost_pushes() == 1
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.SYNCED
    assert [e["id"] for e in remote_events(sandbox, "microsoft", MS_ROOM)] == [link.external_id]
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reclaim_lost_pushes() == 0  # in step now: nothing more to do
