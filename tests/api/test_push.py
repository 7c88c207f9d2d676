"""A booking made through the REST API reaches the room's calendar (the provider sandbox),
with application credentials: REST-API bookings go to the room mailbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calendars.models import LinkState, SyncLink
from reservations.models import IntegrationRole, Reservation, Source, SyncMailbox
from tests.calendars.conftest import (  # noqa: F401 - fixtures used by name
    MS_ROOM,
    ms_binding,
    ms_provider,
    remote_events,
    sandbox,
)
from tests.conftest import local, next_weekday


@pytest.mark.django_db(transaction=True)
def test_rest_booking_is_pushed_to_the_room_calendar(ms_binding, sandbox, as_integration):  # noqa: F811
    space = ms_binding.space
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    start = local(space.location, next_weekday(2), 10)
    response = client.post(
        "/api/v1/reservations/",
        {
            "space": space.pk,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "title": "Vendor visit",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    reservation = Reservation.objects.get(pk=response.json()["id"])
    assert reservation.source == Source.REST_API
    assert reservation.sync_mailbox == SyncMailbox.ROOM

    (event,) = remote_events(sandbox, ms_binding.provider.kind, MS_ROOM)
    link = SyncLink.objects.get(reservation=reservation)
    assert link.state == LinkState.SYNCED and link.external_id == event["id"]

    cancelled = client.post(f"/api/v1/reservations/{reservation.pk}/cancel/", format="json")
    assert cancelled.status_code == 200
    assert remote_events(sandbox, ms_binding.provider.kind, MS_ROOM) == []
