"""Hostile or careless input is a 400 in the documented error shape, never a 500: far-off
datetimes (years 1 and 9999), an end before the start on PATCH and a deeply nested body."""

from __future__ import annotations

from datetime import timedelta

import jsonschema
import pytest

from reservations.api.errors import ERROR_SCHEMA
from reservations.models import Reservation

pytestmark = pytest.mark.django_db

# Year 1 and year 9999 overflow as soon as they are read in a zone east or west of UTC.
EXTREMES = [
    ("0001-01-01T00:00:00+00:00", "0001-01-01T01:00:00+00:00"),
    ("0001-01-01T00:30:00+01:00", "0001-01-01T03:00:00+01:00"),
    ("9999-12-31T22:00:00+00:00", "9999-12-31T23:00:00+00:00"),
    ("9999-12-31T20:00:00-02:00", "9999-12-31T21:00:00-02:00"),
]


def assert_invalid(response, *fields: str) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    jsonschema.validate(body, ERROR_SCHEMA)
    assert body["error"]["code"] == "invalid"
    assert set(fields) <= set(body["error"]["fields"]), body
    return body["error"]


@pytest.fixture
def spaces(make_location, make_space):
    """A space east of UTC and one west of it: each overflows at one end of the calendar."""
    return [
        make_space(make_location(time_zone="Europe/Zurich")),
        make_space(make_location(time_zone="America/New_York")),
    ]


@pytest.mark.parametrize(("start", "end"), EXTREMES)
def test_extreme_datetimes_are_field_errors_everywhere(as_integration, spaces, start, end):
    client = as_integration()
    for space in spaces:
        once = {"space": space.pk, "start": start, "end": end}
        created = client.post("/api/v1/reservations/", once, format="json")
        assert_invalid(created, "start", "end")
        assert "between the years 1900 and 2999" in created.json()["error"]["fields"]["start"][0]
        series = {**once, "recurrence": {"frequency": "daily", "count": 3}}
        assert_invalid(client.post("/api/v1/reservations/series/", series, format="json"), "start")
    assert not Reservation.objects.exists()
    window = {"start": start, "end": end}
    assert_invalid(client.get("/api/v1/availability/", window), "start", "end")
    assert_invalid(client.get("/api/v1/reservations/", window), "start", "end")
    day = start[:10]
    free = client.get(f"/api/v1/spaces/{spaces[1].pk}/free-slots/", {"date": day})
    assert_invalid(free, "date")


@pytest.mark.parametrize(("start", "end"), EXTREMES)
def test_patch_with_extreme_datetimes_changes_nothing(
    as_integration, spaces, make_reservation, start, end
):
    client = as_integration()
    for space in spaces:
        booked = make_reservation(space)
        url = f"/api/v1/reservations/{booked.pk}/"
        assert_invalid(client.patch(url, {"start": start, "end": end}, format="json"), "start")
        assert_invalid(client.patch(url, {"end": end}, format="json"), "end")
        fresh = Reservation.objects.get(pk=booked.pk)
        assert (fresh.start, fresh.end, fresh.version) == (booked.start, booked.end, 1)


def test_patch_with_the_end_before_the_start_is_invalid_not_a_conflict(
    as_integration, make_space, make_reservation
):
    booked = make_reservation(make_space())
    client = as_integration()
    url = f"/api/v1/reservations/{booked.pk}/"
    swapped = {"start": booked.end.isoformat(), "end": booked.start.isoformat()}
    error = assert_invalid(client.patch(url, swapped, format="json"), "end")
    assert error["fields"]["end"] == ["The end must be after the start."]
    earlier_end = {"end": (booked.start - timedelta(hours=1)).isoformat()}
    assert_invalid(client.patch(url, earlier_end, format="json"), "end")
    assert Reservation.objects.get(pk=booked.pk).version == 1


def test_a_deeply_nested_body_is_a_400_in_the_error_shape(as_integration):
    client = as_integration()
    client.raise_request_exception = False
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        response = client.generic(
            "POST", "/api/v1/reservations/", body, content_type="application/json"
        )
        error = assert_invalid(response)
        assert "nested too deeply" in error["message"]
