"""Real processes: two ``manage.py ews_listen`` listeners and a Celery worker (PostgreSQL,
Redis) against the sandbox. The one serving the room is SIGKILLed mid-stream; the other takes
the room's group once the dead one's lock expires (``SYNC_LOCK_TTL_SECONDS``), streams the same
subscription, and an Outlook edit made after the kill reaches the reservation; no poll is due
all along."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from calendars.models import SpaceCalendar, WebhookStatus, WebhookSubscription
from reservations.models import Reservation
from tests.calendars.conftest import control, database_sessions, sync_workers
from tests.conftest import ROOT, local, next_weekday, subprocess_env, wait_for
from tests.support.pull import Remote

LOCK_TTL = 4.0  # seconds; production's is 45
SECONDS = 30  # generous for a loaded machine


def _start_listener(workers, folder: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = folder / f"{name}.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.calendars.listen_app"],
            cwd=ROOT,
            env=subprocess_env(
                RESERVA_TEST_QUEUE=workers.queue,
                PGAPPNAME=f"{workers.queue}-listen",
                SYNC_LOCK_TTL_SECONDS=str(LOCK_TTL),
                EWS_LISTEN_SCAN_SECONDS="0.5",
                EWS_STREAM_MINUTES="5",
                LOG_LEVEL="INFO",
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return process, log


def _serving(log: Path) -> bool:
    return "Listening for provider" in log.read_text(errors="replace")


def _settled(binding, workers) -> bool:
    owed = SpaceCalendar.objects.filter(pk=binding.pk, pull_requested_at__isnull=False).exists()
    return not owed and not workers.busy_with(0) and not workers.queued()


def _reservation(event_id: str) -> Reservation | None:
    return Reservation.objects.filter(sync_link__external_id=event_id).first()


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_listener_is_replaced_within_the_lock_ttl(ews_binding, sandbox, tmp_path):
    SpaceCalendar.objects.filter(pk=ews_binding.pk).update(
        next_pull_at=timezone.now() + timedelta(days=1)  # no poll: only the streams bring news
    )
    remote = Remote(sandbox, "ews")
    start = local(ews_binding.space.location, next_weekday(3), 10).astimezone(UTC)
    listeners: list[subprocess.Popen] = []
    with sync_workers("test-listen", tmp_path, count=1, loglevel="INFO") as workers:
        try:
            first, first_log = _start_listener(workers, tmp_path, "first")
            listeners.append(first)
            assert wait_for(lambda: _serving(first_log), SECONDS), first_log.read_text()
            second, second_log = _start_listener(workers, tmp_path, "second")
            listeners.append(second)
            workers.wait_ready()
            event = remote.create("Before the kill", start, start + timedelta(hours=1))
            assert wait_for(lambda: _reservation(event), SECONDS), first_log.read_text()
            assert not _serving(second_log)  # the room's group is the first one's
            # No pull owed or running (the subscription's first pull and the creation's may
            # follow each other): after the kill, only a notification can bring the move.
            assert wait_for(lambda: _settled(ews_binding, workers), SECONDS), workers.tail()

            first.kill()  # SIGKILL mid-stream: no cleanup, its lock simply stops being renewed
            first.wait()
            killed = time.monotonic()
            moved = start + timedelta(hours=3)
            remote.move(event, moved, moved + timedelta(hours=1))
            followed = wait_for(
                lambda: (r := _reservation(event)) is not None and r.start == moved,
                LOCK_TTL + SECONDS,
            )
            took = time.monotonic() - killed
            assert followed, f"no takeover:\n{second_log.read_text()}\n{workers.tail()}"
            assert _serving(second_log)
            print(f"kill -> edit pulled through the second listener: {took:.1f} s")
            # The second listener streams the subscription the first one made.
            (row,) = WebhookSubscription.objects.filter(
                binding=ews_binding, kind="ews", status=WebhookStatus.ACTIVE
            )
            subs = control(sandbox, "GET", "ews/subscriptions")["value"]
            assert [s["id"] for s in subs if s["connected"]] == [row.remote_id]
        finally:
            for process in listeners:
                if process.poll() is None:
                    process.terminate()
            for process in listeners:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            gone = wait_for(lambda: not database_sessions(f"{workers.queue}-listen"), 10)
            assert gone, "the listeners' database sessions outlived them"
