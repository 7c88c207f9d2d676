"""End to end: a real Celery worker (Redis, PostgreSQL) runs the daily reconciliation's beat
fan-out, ``reconcile_binding`` on the worker finds the event deleted behind Reserva's back,
and the push it queues puts it back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calendars import tasks
from calendars.models import JobKind, SyncJob, SyncLink
from reservations import services
from reservations.models import Reservation
from tests.calendars.conftest import MS_ROOM, control, remote_events, sync_worker
from tests.conftest import local, next_weekday, wait_for


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_beat_fan_out_repairs_a_deleted_event_on_a_worker(ms_binding, sandbox, make_user):
    with sync_worker("test-reconcile"):
        start = local(ms_binding.space.location, next_weekday(2), 10)
        row = services.book(
            actor=make_user(), space=ms_binding.space, start=start, end=start + timedelta(hours=1)
        ).reservations[0]
        pushed = wait_for(
            lambda: SyncLink.objects.filter(reservation=row).exclude(external_id="").first(), 60
        )
        assert pushed is not None, "the worker did not push the booking within 60 s"
        control(sandbox, "DELETE", f"microsoft/mailboxes/{MS_ROOM}/events/{pushed.external_id}")
        assert remote_events(sandbox, "microsoft", MS_ROOM) == []
        Reservation.objects.update(updated=timezone.now() - timedelta(hours=1))

        assert tasks.reconcile_bindings() == 1  # as beat runs it (the one room at once)

        job = wait_for(lambda: SyncJob.objects.filter(kind=JobKind.RECONCILE).first(), 60)
        assert job is not None, "the worker did not reconcile within 60 s"
        assert job.status == "succeeded" and job.created_count == 1
        assert [(n["repair"], n["fix"], n["reservation"]) for n in job.errors] == [
            ("missing", "push", row.pk)
        ]

        def recreated():
            # The event shows in the calendar a moment before the push's transaction that
            # records its id commits: wait for both.
            link = SyncLink.objects.get(reservation=row)
            events = remote_events(sandbox, "microsoft", MS_ROOM)
            return (events, link) if events and link.external_id else None

        back = wait_for(recreated, 60)
        assert back, "the queued push did not recreate the event within 60 s"
        (event,), link = back
        assert event["id"] == link.external_id != pushed.external_id
