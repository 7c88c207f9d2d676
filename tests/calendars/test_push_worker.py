"""End to end: a real Celery worker process, over Redis and PostgreSQL, pushes bookings made
through the booking service to the sandbox (which runs in this test process; the worker
reaches it through the provider's aliases in the shared test database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendars.models import SyncLink
from reservations import services
from tests.calendars.conftest import ROOMS, binding_for, remote_events, sync_worker
from tests.conftest import local, next_weekday, wait_for

EWS_READY = True


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_creates_moves_and_cancels_the_event(kind, request, sandbox, make_user):
    binding = binding_for(kind, request)
    room = ROOMS[kind]
    with sync_worker("test-push"):
        user = make_user()
        start = local(binding.space.location, next_weekday(2), 10)
        reservation = services.book(
            actor=user, space=binding.space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
        created = wait_for(lambda: remote_events(sandbox, kind, room), timeout=60)
        assert created and len(created) == 1, "the worker pushed nothing within 60 s"

        moved = services.change(
            actor=user,
            reservation=reservation,
            start=start + timedelta(hours=2),
            end=start + timedelta(hours=3),
        )[0]

        def moved_remotely():
            link = SyncLink.objects.filter(reservation=reservation).first()
            return link is not None and link.pushed_version == moved.version

        assert wait_for(moved_remotely, timeout=60), "the move did not reach the room"
        (event,) = remote_events(sandbox, kind, room)
        assert event["id"] == created[0]["id"]
        begins = datetime.fromisoformat(
            (event["start"] if kind == "ews" else event["start"]["dateTime"]).replace("Z", "+00:00")
        )  # Graph: naive UTC; Google: an offset; the EWS control routes: UTC
        assert (begins if begins.tzinfo else begins.replace(tzinfo=UTC)) == moved.start

        services.cancel(actor=user, reservation=moved)
        gone = wait_for(lambda: not remote_events(sandbox, kind, room), timeout=60)
        assert gone, "the cancellation did not reach the room"
