"""Setup and cleanup buffers through the REST API: a booking that leaves a room no time to
be cleaned up is a 409 in the API's error shape with the rule's words; free slots and
availability leave the buffers free."""

from __future__ import annotations

from datetime import time as clock

import pytest

from reservations.models import IntegrationRole
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)


@pytest.fixture
def location(make_location):
    return make_location(time_zone="Europe/London", opens=clock(8), closes=clock(18))


@pytest.fixture
def room(make_space, location):
    return make_space(location, name="Atlas", setup_minutes=15, cleanup_minutes=15)


def test_a_booking_in_the_cleanup_buffer_is_a_409_with_the_rules_words(
    as_integration, room, location, make_reservation
):
    make_reservation(room, start=local(location, DAY, 10))
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    response = client.post(
        "/api/v1/reservations/",
        {
            "space": room.pk,
            "start": local(location, DAY, 11, 15).isoformat(),
            "end": local(location, DAY, 12).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    words = (
        "Atlas needs 15 minutes to be cleaned up and 15 minutes to be set up after the previous "
        "booking: the previous booking ends at 11:00, so this one can start at 11:30 at the "
        "earliest."
    )
    assert error["code"] == "conflict" and error["message"] == words
    assert error["fields"] == {"start": [words]}
    assert error["clashes"][0]["description"] == words
    # The clash shows the other booking's booked times, not its buffers.
    assert error["clashes"][0]["start"] == local(location, DAY, 10).isoformat()
    assert error["clashes"][0]["end"] == local(location, DAY, 11).isoformat()


def test_free_slots_and_availability_keep_the_buffers_free(
    as_integration, room, location, make_space, make_reservation
):
    make_space(location, name="Plain")
    make_reservation(room, start=local(location, DAY, 10))
    make_reservation(room, start=local(location, DAY, 13), minutes=90)
    reader = as_integration(IntegrationRole.READ_ONLY, scope="read")

    response = reader.get(f"/api/v1/spaces/{room.pk}/free-slots/", {"date": DAY.isoformat()})
    assert response.status_code == 200, response.content
    expected = [(8, 0, 9, 30), (11, 30, 12, 30), (15, 0, 18, 0)]
    assert [(s["start"], s["end"]) for s in response.json()["slots"]] == [
        (local(location, DAY, a, b).isoformat(), local(location, DAY, c, d).isoformat())
        for a, b, c, d in expected
    ]

    def available(hour: int, minute: int) -> list[str]:
        start = local(location, DAY, hour, minute)
        params = {"start": start.isoformat(), "end": start.replace(hour=hour + 1).isoformat()}
        body = reader.get("/api/v1/availability/", params).json()
        return sorted(s["name"] for s in body["results"])

    assert available(11, 0) == ["Plain"]  # Atlas is cleaned until 11:15, then set up
    assert available(11, 30) == ["Atlas", "Plain"]
