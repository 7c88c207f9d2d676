"""Locations, spaces (filters), availability and free slots, as an integration sees them."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta

import pytest

from reservations.models import Amenity, IntegrationRole, SpaceKind
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(as_integration):
    return as_integration(IntegrationRole.READ_ONLY, scope="read")


def test_locations_list_and_detail(reader, make_location):
    location = make_location("Zurich", time_zone="Europe/Zurich")
    body = reader.get("/api/v1/locations/").json()
    assert body["count"] == 1 and body["results"][0]["time_zone"] == "Europe/Zurich"
    assert len(body["results"][0]["opening_hours"]) == 7
    assert reader.get(f"/api/v1/locations/{location.pk}/").json()["name"] == "Zurich"
    missing = reader.get("/api/v1/locations/999999/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_space_filters(reader, make_location, make_space):
    here, there = make_location(), make_location()
    screen = Amenity.objects.create(name="Screen")
    big = make_space(here, name="Big", capacity=12)
    big.amenities.add(screen)
    make_space(here, name="Small", capacity=2)
    make_space(there, name="Desk 1", kind=SpaceKind.DESK, capacity=1)

    def names(query: str) -> list[str]:
        response = reader.get(f"/api/v1/spaces/?{query}")
        assert response.status_code == 200, response.content
        return sorted(s["name"] for s in response.json()["results"])

    assert names(f"location={here.pk}") == ["Big", "Small"]
    assert names("kind=desk") == ["Desk 1"]
    assert names("min_capacity=5") == ["Big"]
    assert names("amenity=screen") == ["Big"]
    assert names("amenity=Screen&amenity=Coffee") == []
    bad = reader.get("/api/v1/spaces/?min_capacity=lots&kind=castle")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"min_capacity", "kind"}


def test_lists_are_paginated(reader, make_location, make_space):
    location = make_location()
    for n in range(5):
        make_space(location, name=f"Room {n}")
    page = reader.get("/api/v1/spaces/?page_size=2&page=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2
    assert page["next"] and page["previous"]
    assert reader.get("/api/v1/spaces/?page=99").status_code == 404


def test_availability_leaves_out_busy_spaces(reader, make_location, make_space, make_reservation):
    location = make_location()
    busy, free = make_space(location, name="Busy"), make_space(location, name="Free")
    day = next_weekday(1)
    make_reservation(busy, start=local(location, day, 10))
    start = local(location, day, 10, 30).isoformat()
    end = local(location, day, 11, 30).isoformat()
    response = reader.get("/api/v1/availability/", {"start": start, "end": end})
    assert response.status_code == 200, response.content
    assert [s["name"] for s in response.json()["results"]] == ["Free"]
    assert free.pk == response.json()["results"][0]["id"]
    naive = reader.get("/api/v1/availability/", {"start": "2030-01-01T10:00", "end": end})
    assert naive.status_code == 400 and "offset" in naive.json()["error"]["fields"]["start"][0]


def test_free_slots_of_a_day(reader, make_location, make_space, make_reservation):
    location = make_location(time_zone="America/New_York", opens=clock(8), closes=clock(18))
    space = make_space(location)
    day = next_weekday(2)
    make_reservation(space, start=local(location, day, 9), minutes=60)
    make_reservation(space, start=local(location, day, 13), minutes=90)
    response = reader.get(f"/api/v1/spaces/{space.pk}/free-slots/", {"date": day.isoformat()})
    assert response.status_code == 200, response.content
    slots = response.json()["slots"]
    expected = [(8, 0, 9, 0), (10, 0, 13, 0), (14, 30, 18, 0)]
    assert [(s["start"], s["end"]) for s in slots] == [
        (local(location, day, a, b).isoformat(), local(location, day, c, d).isoformat())
        for a, b, c, d in expected
    ]
    assert slots[0]["start"].endswith(("-05:00", "-04:00"))
    closed_day = day + timedelta(days=1)
    location.opening_hours.filter(weekday=closed_day.weekday()).delete()
    closed = reader.get(f"/api/v1/spaces/{space.pk}/free-slots/?date={closed_day}")
    assert closed.json()["slots"] == []
    assert reader.get(f"/api/v1/spaces/{space.pk}/free-slots/?date=soon").status_code == 400


def test_unknown_api_path_is_json_404(reader):
    response = reader.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert reader.get("/api/v1/spaces/99999999999999999999999/").status_code == 404
    odd = reader.get("/api/v1/locations/%0Ax/")  # found by the schemathesis run
    assert odd.status_code == 404 and odd.json()["error"]["code"] == "not_found"


def test_schema_and_docs_page_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/reservations/" in paths and "/api/v1/spaces/{id}/free-slots/" in paths
    assert "409" in paths["/api/v1/reservations/"]["post"]["responses"]
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "/static/drf_spectacular_sidecar/" in docs
    assert "cdn" not in docs.lower() and "unpkg" not in docs.lower()
