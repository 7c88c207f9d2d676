"""End to end: a real Celery worker (Redis, PostgreSQL) pulls sandbox edits (create, move,
rename, delete; on each provider) into the reservation through polling: the beat's fan-out
``pull_due_bindings`` queues ``pull_binding`` on the worker's private queue."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from calendars import tasks
from calendars.models import SpaceCalendar
from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import binding_for, sync_worker
from tests.conftest import local, next_weekday, wait_for
from tests.support.pull import Remote

EWS_READY = True


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sandbox_edit_reaches_the_reservation_through_polling(kind, request, sandbox):
    binding = binding_for(kind, request)
    remote = Remote(sandbox, kind)
    with sync_worker("test-pull"):
        start = local(binding.space.location, next_weekday(2), 10).astimezone(UTC)
        hour = timedelta(hours=1)
        event = remote.create("Walk-in", start, start + hour)
        assert tasks.queue_due_pulls() == 1  # never pulled: due
        row = wait_for(lambda: Reservation.objects.filter(space=binding.space).first(), 60)
        assert row is not None, "the worker pulled nothing within 60 s"
        assert row.start == start and row.title == "Walk-in"

        later = start + timedelta(hours=2)
        remote.move(event, later, later + hour)
        SpaceCalendar.objects.filter(pk=binding.pk).update(next_pull_at=None)  # due again
        assert tasks.queue_due_pulls() == 1
        moved = wait_for(lambda: Reservation.objects.filter(pk=row.pk, start=later).exists(), 60)
        assert moved, "the move did not reach the reservation"

        remote.rename(event, "Walk-in retro")
        SpaceCalendar.objects.filter(pk=binding.pk).update(next_pull_at=None)
        assert tasks.queue_due_pulls() == 1
        renamed = wait_for(
            lambda: Reservation.objects.filter(pk=row.pk, title="Walk-in retro").exists(), 60
        )
        assert renamed, "the rename did not reach the reservation"

        remote.delete(event)
        SpaceCalendar.objects.filter(pk=binding.pk).update(next_pull_at=None)
        assert tasks.queue_due_pulls() == 1
        cancelled = wait_for(
            lambda: Reservation.objects.filter(
                pk=row.pk, status=ReservationStatus.CANCELLED
            ).exists(),
            60,
        )
        assert cancelled, "the deletion did not cancel the reservation"
        assert Reservation.objects.filter(space=binding.space).count() == 1  # no copies
