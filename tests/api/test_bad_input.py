"""Hostile or careless input is a 400 in the documented error shape, never a 500 or an HTML page:
far-off datetimes, a deeply nested body, an end before the start on PATCH, and the paths DRF's
own handler never sees (an unexpected exception, a bad Host header) with DEBUG off."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import jsonschema
import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from reservations.api.errors import ERROR_SCHEMA
from reservations.models import Reservation
from tests.conftest import next_weekday

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


@pytest.fixture
def production_client():
    """DEBUG off, and a client that receives the 500 page instead of the exception."""
    with override_settings(DEBUG=False):
        yield Client(raise_request_exception=False)


def test_unexpected_api_errors_are_json_and_say_nothing_inside(
    production_client, as_integration, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("password=hunter2 in a stack trace")

    monkeypatch.setattr("reservations.api.views.queries.free_spaces", broken)
    bearer = as_integration()._credentials["HTTP_AUTHORIZATION"]
    start, end = local_window()
    response = production_client.get(
        "/api/v1/availability/", {"start": start, "end": end}, HTTP_AUTHORIZATION=bearer
    )
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    jsonschema.validate(body, ERROR_SCHEMA)
    assert body["error"]["code"] == "server_error"
    assert "hunter2" not in response.content.decode()


def test_requests_django_refuses_before_any_view_answer_json_under_api(production_client):
    bad_host = production_client.get("/api/v1/locations/", HTTP_HOST="attacker.example")
    assert bad_host.status_code == 400 and bad_host["Content-Type"] == "application/json"
    jsonschema.validate(bad_host.json(), ERROR_SCHEMA)
    # Outside /api/ the portal keeps its HTML pages.
    portal = production_client.get("/no-such-page/")
    assert portal.status_code == 404 and portal["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("get", "/api/v1/reservations/", False, 401),
        ("get", "/api/v2/nothing-here/", True, 404),
        ("get", "/api/v1/reservations/not-a-number/", True, 404),
        ("delete", "/api/v1/locations/", True, 405),
        ("put", "/api/v1/reservations/", True, 405),
        ("post", "/api/v1/reservations/", True, 415),  # a form post, not JSON
    ],
)
def test_every_api_error_status_is_json(
    production_client, as_integration, method, path, token, status
):
    headers = {"HTTP_AUTHORIZATION": as_integration()._credentials["HTTP_AUTHORIZATION"]}
    response = getattr(production_client, method)(path, **(headers if token else {}))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    jsonschema.validate(response.json(), ERROR_SCHEMA)


def test_a_session_post_without_csrf_token_is_a_json_403(make_user, make_space):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user())
    start, end = local_window()
    response = client.post(
        "/api/v1/reservations/",
        {"space": make_space().pk, "start": start, "end": end},
        format="json",
    )
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    jsonschema.validate(response.json(), ERROR_SCHEMA)
    assert "CSRF" in response.json()["error"]["message"]
    assert not Reservation.objects.exists()


def local_window() -> tuple[str, str]:
    """Next week's Tuesday, 10:00-11:00 UTC: a slot any test location accepts."""
    start = datetime.combine(next_weekday(1), time(10), tzinfo=UTC)
    return start.isoformat(), (start + timedelta(hours=1)).isoformat()
