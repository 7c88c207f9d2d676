"""The REST API's 409 for a taken (or closed) slot carries ``next_free``: the same space's next
free slots of the same length, in the location's zone, documented in the schema."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta

import pytest

from reservations.models import Closure, IntegrationRole
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)


@pytest.fixture
def location(make_location):
    return make_location(time_zone="Europe/London", opens=clock(8), closes=clock(18))


@pytest.fixture
def room(make_space, location):
    return make_space(location, name="Atlas", setup_minutes=15, cleanup_minutes=15)


def post(client, room, location, hour, minute=0):
    start = local(location, DAY, hour, minute)
    return client.post(
        "/api/v1/reservations/",
        {
            "space": room.pk,
            "start": start.isoformat(),
            "end": start.replace(hour=hour + 1).isoformat(),
        },
        format="json",
    )


def test_a_taken_slot_answers_with_the_spaces_next_free_slots(
    as_integration, room, location, make_reservation
):
    make_reservation(room, start=local(location, DAY, 10))  # holds 09:45-11:15
    make_reservation(room, start=local(location, DAY, 14))  # holds 13:45-15:15
    response = post(as_integration(IntegrationRole.BOOK_FOR_ANYONE), room, location, 10)
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict"
    thursday = DAY + timedelta(days=1)
    assert error["next_free"] == [
        {"start": start.isoformat(), "end": end.isoformat()}
        for start, end in [
            (local(location, DAY, 11, 30), local(location, DAY, 12, 30)),
            (local(location, DAY, 15, 30), local(location, DAY, 16, 30)),
            (local(location, thursday, 8), local(location, thursday, 9)),
        ]
    ]


def test_a_closed_slot_answers_with_the_first_free_slots_after_it(as_integration, room, location):
    Closure.objects.create(
        location=location, space=room, start_date=DAY, end_date=DAY, start_time=clock(9),
        end_time=clock(13), reason="Painting",
    )  # fmt: skip
    response = post(as_integration(IntegrationRole.BOOK_FOR_ANYONE), room, location, 10)
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "closed"
    assert error["next_free"][0] == {
        "start": local(location, DAY, 13).isoformat(),
        "end": local(location, DAY, 14).isoformat(),
    }


def test_the_schema_documents_next_free(as_integration):
    client = as_integration(IntegrationRole.READ_ONLY, scope="read")
    schema = client.get("/api/schema/?format=json").json()
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    next_free = error["properties"]["next_free"]
    assert next_free["items"]["properties"]["start"]["format"] == "date-time"
    conflict = schema["paths"]["/api/v1/reservations/"]["post"]["responses"]["409"]
    assert "next_free" in conflict["description"]
