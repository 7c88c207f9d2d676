"""Personal sync mode through the REST API: a booking that lives in its owner's own calendar
cannot be changed from another source, even by a client allowed to book for anyone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calendars.models import (
    SpaceCalendar,
    SyncSettings,
    UserToken,
)
from reservations import services
from reservations.models import ReservationStatus
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


def test_rest_api_cannot_change_a_booking_in_someones_own_calendar(
    as_integration, make_user, make_space, make_provider
):
    provider = make_provider()
    space = make_space(name="Synced")
    SpaceCalendar.objects.create(space=space, provider=provider, resource_email="r@example.com")
    settings = SyncSettings.load()
    settings.mode = "personal"
    settings.save()
    owner = make_user("owner")
    UserToken.objects.create(
        user=owner, provider=provider, account_email=owner.email, token={"k": "v"}
    )
    start = local(space.location, next_weekday(1), 10)
    [hers] = services.book(
        actor=owner, space=space, start=start, end=start + timedelta(hours=1)
    ).reservations
    assert hers.sync_mailbox == "user"

    client = as_integration()  # book for anyone
    response = client.post(f"/api/v1/reservations/{hers.pk}/cancel/", {}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "not_allowed"
    assert "only they can change it, in the portal" in error["message"]
    hers.refresh_from_db()
    assert hers.status != ReservationStatus.CANCELLED
