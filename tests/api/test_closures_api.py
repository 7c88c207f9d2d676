"""Closures through the REST API: a booking into a closure is a 409 with code ``closed`` and
the closure's reason; availability and free slots leave closed spaces and periods out; the
OpenAPI schema documents the code."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta

import pytest

from reservations.models import Closure, IntegrationRole, Reservation
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(1)


@pytest.fixture
def room(make_location, make_space):
    location = make_location("HQ", opens=clock(8), closes=clock(18))
    return make_space(location, name="Atlas")


def test_booking_into_a_closure_is_a_409_with_the_reason(as_integration, room):
    Closure.objects.create(
        location=room.location, space=room, start_date=DAY, end_date=DAY, reason="Re-cabling"
    )
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    start = local(room.location, DAY, 10)
    response = client.post(
        "/api/v1/reservations/",
        {
            "space": room.pk,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "closed"
    assert error["message"] == f"Atlas is closed on {DAY:%a %d %b %Y}: Re-cabling."
    assert error["fields"] == {"start": [error["message"]]}
    assert error["clashes"] == []  # nobody's booking is involved
    assert not Reservation.objects.exists()


def test_moving_a_booking_into_a_closure_is_a_409_closed(as_integration, room):
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    start = local(room.location, DAY, 10)
    created = client.post(
        "/api/v1/reservations/",
        {
            "space": room.pk,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        format="json",
    ).json()
    Closure.objects.create(
        location=room.location, start_date=DAY, end_date=DAY, start_time=clock(14), reason="Drill"
    )
    moved = client.patch(
        f"/api/v1/reservations/{created['id']}/",
        {
            "start": local(room.location, DAY, 15).isoformat(),
            "end": local(room.location, DAY, 16).isoformat(),
        },
        format="json",
    )
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "closed"
    assert moved.json()["error"]["message"] == (
        f"HQ is closed from 14:00 on {DAY:%a %d %b %Y} until the end of the day: Drill."
    )


def test_availability_and_free_slots_skip_closures(as_integration, room, make_space):
    other = make_space(room.location, name="Bergen")
    Closure.objects.create(
        location=room.location,
        space=room,
        start_date=DAY,
        end_date=DAY,
        start_time=clock(12),
        end_time=clock(14),
        reason="Lunch event",
    )
    reader = as_integration(IntegrationRole.READ_ONLY, scope="read")
    start, end = local(room.location, DAY, 13), local(room.location, DAY, 15)
    names = [
        s["name"]
        for s in reader.get(
            "/api/v1/availability/", {"start": start.isoformat(), "end": end.isoformat()}
        ).json()["results"]
    ]
    assert names == [other.name]

    slots = reader.get(f"/api/v1/spaces/{room.pk}/free-slots/", {"date": DAY.isoformat()}).json()
    assert [(s["start"][11:16], s["end"][11:16]) for s in slots["slots"]] == [
        ("08:00", "12:00"),
        ("14:00", "18:00"),
    ]
    Closure.objects.create(location=room.location, start_date=DAY, end_date=DAY, reason="Strike")
    closed = reader.get(f"/api/v1/spaces/{other.pk}/free-slots/", {"date": DAY.isoformat()})
    assert closed.json()["slots"] == []


def test_the_schema_documents_the_closed_code(client):
    responses = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/reservations/"]
    assert "`closed`" in responses["post"]["responses"]["409"]["description"]
