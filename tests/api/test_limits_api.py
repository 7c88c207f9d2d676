"""Limits per person through the REST API: a booking over a person's limit is a 403 with code
``limit_exceeded`` and the limit's words, one inside the notice a 403 ``too_soon``; a booking
made for someone counts against them; the OpenAPI schema documents both codes."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from reservations.models import BookingLimit, IntegrationRole, Reservation
from tests.conftest import local, midday_zone, next_weekday

pytestmark = pytest.mark.django_db

TUE, WED = next_weekday(1), next_weekday(2)


@pytest.fixture
def room(make_location, make_space):
    location = make_location("HQ", opens=clock(0), closes=clock(23, 59))
    return make_space(location, name="Atlas")


def post(client, room, start, **extra):
    return client.post(
        "/api/v1/reservations/",
        {
            "space": room.pk,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            **extra,
        },
        format="json",
    )


def test_a_booking_for_someone_at_their_limit_is_a_403_limit_exceeded(
    as_integration, room, make_user
):
    contractors = Group.objects.create(name="Contractors")
    BookingLimit.objects.create(location=room.location, group=contractors, max_active_bookings=1)
    bob = make_user("bob", email="bob@example.com")
    bob.groups.add(contractors)
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    assert (
        post(client, room, local(room.location, TUE, 10), requested_for=bob.email).status_code
        == 201
    )

    response = post(client, room, local(room.location, WED, 10), requested_for=bob.email)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "limit_exceeded"
    assert error["message"] == (
        "Contractors may hold at most 1 active booking at HQ; bob already holds 1: "
        f"Atlas on {TUE:%a} {TUE.day} {TUE:%b} 10:00."
    )
    assert Reservation.objects.filter(requested_for=bob).count() == 1
    # The integration's own booking is not bob's.
    assert post(client, room, local(room.location, WED, 10)).status_code == 201


def test_a_booking_inside_the_minimum_notice_is_a_403_too_soon(
    as_integration, make_location, make_space
):
    # A zone where it is about midday now, so "in five minutes" is inside opening hours.
    location = make_location("HQ", time_zone=midday_zone(), opens=clock(0), closes=clock(23, 59))
    room = make_space(location, name="Atlas")
    BookingLimit.objects.create(location=room.location, min_notice_minutes=15)
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    response = post(client, room, timezone.now() + timedelta(minutes=5))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "too_soon"
    assert error["message"] == (
        "Everyone must book spaces at HQ at least 15 minutes before they start."
    )
    assert error["fields"] == {"start": [error["message"]]}


def test_the_schema_documents_the_limit_codes(client):
    responses = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/reservations/"]
    described = responses["post"]["responses"]["403"]["description"]
    assert "`limit_exceeded`" in described and "`too_soon`" in described
