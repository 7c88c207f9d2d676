"""End to end: a real Celery worker (Redis, PostgreSQL) pulls sandbox edits (create, move,
rename, delete) into the reservation through polling: the beat's fan-out
``pull_due_bindings`` queues ``pull_binding`` on the worker's private queue."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from calendars import tasks
from calendars.models import SpaceCalendar
from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import MS_ROOM, control, sync_worker
from tests.conftest import local, next_weekday, wait_for


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sandbox_edit_reaches_the_reservation_through_polling(ms_binding, sandbox):
    with sync_worker("test-pull"):
        start = local(ms_binding.space.location, next_weekday(2), 10).astimezone(UTC)
        fmt = "%Y-%m-%dT%H:%M:%S"

        def times(begin):
            return {
                "start": {"dateTime": begin.strftime(fmt), "timeZone": "UTC"},
                "end": {"dateTime": (begin + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"},
            }

        event = control(
            sandbox,
            "POST",
            f"microsoft/mailboxes/{MS_ROOM}/events",
            json={"subject": "Walk-in", **times(start)},
        )["id"]
        assert tasks.queue_due_pulls() == 1  # never pulled: due
        row = wait_for(lambda: Reservation.objects.filter(space=ms_binding.space).first(), 60)
        assert row is not None, "the worker pulled nothing within 60 s"
        assert row.start == start and row.title == "Walk-in"

        control(
            sandbox,
            "PATCH",
            f"microsoft/mailboxes/{MS_ROOM}/events/{event}",
            json=times(start + timedelta(hours=2)),
        )
        SpaceCalendar.objects.filter(pk=ms_binding.pk).update(next_pull_at=None)  # due again
        assert tasks.queue_due_pulls() == 1
        moved = wait_for(
            lambda: Reservation.objects.filter(
                pk=row.pk, start=start + timedelta(hours=2)
            ).exists(),
            60,
        )
        assert moved, "the move did not reach the reservation"

        path = f"microsoft/mailboxes/{MS_ROOM}/events/{event}"
        control(sandbox, "PATCH", path, json={"subject": "Walk-in retro"})
        SpaceCalendar.objects.filter(pk=ms_binding.pk).update(next_pull_at=None)
        assert tasks.queue_due_pulls() == 1
        renamed = wait_for(
            lambda: Reservation.objects.filter(pk=row.pk, title="Walk-in retro").exists(), 60
        )
        assert renamed, "the rename did not reach the reservation"

        control(sandbox, "DELETE", path)
        SpaceCalendar.objects.filter(pk=ms_binding.pk).update(next_pull_at=None)
        assert tasks.queue_due_pulls() == 1
        cancelled = wait_for(
            lambda: Reservation.objects.filter(
                pk=row.pk, status=ReservationStatus.CANCELLED
            ).exists(),
            60,
        )
        assert cancelled, "the deletion did not cancel the reservation"
        assert Reservation.objects.filter(space=ms_binding.space).count() == 1  # no copies
