"""End to end: a real Celery worker runs the beat task ``reservations.release_no_shows``; a
booking nobody checked in to is released and its event is gone from the sandbox room within
a minute (the worker's own push, queued by the release's signal)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reservations import services
from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import MS_ROOM, bind, remote_events, sync_worker
from tests.conftest import midday_zone, wait_for


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_releases_a_no_show_and_empties_the_room(
    ms_provider, sandbox, make_location, make_space, make_user
):
    from config.celery import app

    location = make_location("HQ", time_zone=midday_zone())
    room = make_space(location, name="Severn", check_in_required=True)
    bind(room, ms_provider, MS_ROOM)
    with sync_worker("test-checkin"):
        now = timezone.now()
        start = now - timedelta(minutes=20)  # its window closed 5 minutes ago
        booking = services.book(
            actor=make_user(), space=room, start=start, end=start + timedelta(hours=1),
            now=start - timedelta(hours=1),
        ).reservations[0]  # fmt: skip
        created = wait_for(lambda: remote_events(sandbox, "microsoft", MS_ROOM), timeout=60)
        assert created and len(created) == 1, "the worker pushed nothing within 60 s"

        app.send_task("reservations.release_no_shows")  # what beat sends every 30 s

        def released() -> bool:
            row = Reservation.objects.get(pk=booking.pk)
            return row.status == ReservationStatus.RELEASED

        assert wait_for(released, timeout=60), "the worker released nothing within 60 s"
        gone = wait_for(lambda: not remote_events(sandbox, "microsoft", MS_ROOM), timeout=60)
        assert gone, "the released booking's event is still in the room's calendar"
