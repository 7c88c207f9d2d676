"""End to end through the webhook: a person creates, moves, renames and deletes an event in the
room's calendar in Outlook (the sandbox's control API), Graph notifies ``live_server``, the
endpoint asks for a pull, and a real Celery worker over Redis and PostgreSQL brings the
reservation in step within seconds each time."""

from __future__ import annotations

import time
from datetime import UTC, timedelta

import pytest

from calendars import subscriptions
from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import MS_ROOM, control, sync_worker
from tests.conftest import local, next_weekday, wait_for

WEBHOOK_SECONDS = 15  # generous for CI; the benchmark measures the real figure


def _graph_time(when) -> dict:
    return {"dateTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_outlook_edit_reaches_the_reservation_through_the_webhook(
    ms_binding, sandbox, live_server, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CALENDAR_WEBHOOKS = True
    with sync_worker("test-hook"):
        try:
            assert subscriptions.ensure(ms_binding.pk) == "created"
            start = local(ms_binding.space.location, next_weekday(3), 10)
            event = control(
                sandbox,
                "POST",
                f"microsoft/mailboxes/{MS_ROOM}/events",
                json={
                    "subject": "Walk-in planning",
                    "start": _graph_time(start),
                    "end": _graph_time(start + timedelta(hours=1)),
                },
            )

            def reservation():
                return Reservation.objects.filter(sync_link__external_id=event["id"]).first()

            assert wait_for(reservation, timeout=WEBHOOK_SECONDS), "the new event did not arrive"

            moved = start + timedelta(hours=2)
            began = time.monotonic()
            control(
                sandbox,
                "PATCH",
                f"microsoft/mailboxes/{MS_ROOM}/events/{event['id']}",
                json={"start": _graph_time(moved), "end": _graph_time(moved + timedelta(hours=1))},
            )
            followed = wait_for(
                lambda: (r := reservation()) is not None and r.start == moved,
                timeout=WEBHOOK_SECONDS,
            )
            assert followed, "the move did not reach the reservation through the webhook"
            print(f"edit -> reservation: {time.monotonic() - began:.2f} s")

            path = f"microsoft/mailboxes/{MS_ROOM}/events/{event['id']}"
            control(sandbox, "PATCH", path, json={"subject": "Walk-in retro"})
            renamed = wait_for(
                lambda: (r := reservation()) is not None and r.title == "Walk-in retro",
                timeout=WEBHOOK_SECONDS,
            )
            assert renamed, "the rename did not reach the reservation through the webhook"

            control(sandbox, "DELETE", path)
            cancelled = wait_for(
                lambda: reservation().status == ReservationStatus.CANCELLED,
                timeout=WEBHOOK_SECONDS,
            )
            assert cancelled, "the deletion did not cancel the reservation through the webhook"
            assert Reservation.objects.filter(space=ms_binding.space).count() == 1  # no copies
        finally:
            subscriptions.remove(ms_binding.pk)
