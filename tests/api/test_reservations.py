"""Reservations through the API: create, read, list, update, cancel, series; roles; errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from reservations.models import IntegrationRole, Reservation, ReservationStatus, Source
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


@pytest.fixture
def space(make_space):
    return make_space(name="Atlas")


def slot(space, hour=10, minutes=60, weeks=1):
    start = local(space.location, next_weekday(1, weeks_ahead=weeks), hour)
    return start.isoformat(), (start + timedelta(minutes=minutes)).isoformat()


def booking(space, hour=10, **extra):
    start, end = slot(space, hour)
    return {"space": space.pk, "start": start, "end": end, **extra}


def test_book_read_list_move_and_cancel_for_someone(as_integration, space, make_user):
    alice = make_user("alice")
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    created = client.post(
        "/api/v1/reservations/",
        booking(space, title="Budget", requested_for="ALICE@example.com"),
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["requested_for"] == "alice@example.com"
    assert body["booked_by"] == client.integration.user.email
    assert body["source"] == Source.REST_API and body["status"] == "confirmed"
    start, end = slot(space, 10)
    assert (body["start"], body["end"]) == (start, end)  # in the location's zone, with offset
    reservation = Reservation.objects.get(pk=body["id"])
    assert reservation.requested_for == alice and reservation.source == Source.REST_API

    assert client.get(f"/api/v1/reservations/{reservation.pk}/").json()["title"] == "Budget"
    listed = client.get("/api/v1/reservations/", {"requested_for": "alice@example.com"}).json()
    assert [r["id"] for r in listed["results"]] == [reservation.pk]
    assert client.get("/api/v1/reservations/", {"space": space.pk + 1}).json()["count"] == 0

    new_start, new_end = slot(space, 14)
    moved = client.patch(
        f"/api/v1/reservations/{reservation.pk}/",
        {"start": new_start, "end": new_end, "title": "Budget v2", "version": 1},
        format="json",
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["start"] == new_start and moved.json()["version"] == 2
    stale = client.patch(
        f"/api/v1/reservations/{reservation.pk}/", {"title": "x", "version": 1}, format="json"
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale"

    cancelled = client.post(f"/api/v1/reservations/{reservation.pk}/cancel/", {}, format="json")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED


def test_conflict_is_409_naming_the_slot_without_private_details(
    as_integration, space, make_reservation, make_user
):
    taken = make_reservation(
        space,
        start=local(space.location, next_weekday(1), 10),
        title="Secret merger",
        user=make_user("bob"),
    )
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    start, end = slot(space, 10, minutes=30)
    response = client.post(
        "/api/v1/reservations/", {"space": space.pk, "start": start, "end": end}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and "start" in error["fields"]
    (clash,) = error["clashes"]
    assert clash["space"] == "Atlas"
    assert clash["start"] == taken.start.astimezone(space.location.zone).isoformat()
    assert "Secret merger" not in response.content.decode()
    assert "bob" not in response.content.decode()


def test_invalid_input_is_400_with_fields(as_integration, space):
    client = as_integration()
    cases = [
        ({}, {"space", "start", "end"}),
        ({"space": "x", "start": "yesterday", "end": 5}, {"space", "start", "end"}),
        ({**booking(space), "requested_for": "nobody@example.com"}, {"requested_for"}),
        ({**booking(space), "end": booking(space)["start"]}, {"end"}),
        ({**booking(space), "space": 10**30}, {"space"}),
        ({**booking(space), "kind": "party"}, {"kind"}),
    ]
    for payload, fields in cases:
        response = client.post("/api/v1/reservations/", payload, format="json")
        assert response.status_code == 400, (payload, response.content)
        error = response.json()["error"]
        assert error["code"] == "invalid" and set(error["fields"]) == fields
    not_json = client.post("/api/v1/reservations/", "{oops", content_type="application/json")
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid"


def test_an_offset_no_zone_has_is_400_not_500(as_integration, space):
    """PostgreSQL refuses offsets past 15:59 ("time zone displacement out of range"): the
    reservation list answered 500 to ``start=0133-04-16T06:26:30-16:41`` (schemathesis)."""
    client = as_integration()
    for value in ("0133-04-16T06:26:30-16:41", "2030-01-15T09:00:00+15:00"):
        response = client.get("/api/v1/reservations/", {"start": value})
        assert response.status_code == 400, (value, response.content)
        assert "between -12:00 and +14:00" in response.json()["error"]["fields"]["start"][0]
    fine = client.get("/api/v1/reservations/", {"start": "2030-01-15T09:00:00+14:00"})
    assert fine.status_code == 200


def test_service_rules_come_back_as_field_errors(as_integration, make_location, make_space):
    location = make_location(max_booking_minutes=60)
    space = make_space(location)
    client = as_integration()
    start, end = slot(space, 10, minutes=120)
    response = client.post(
        "/api/v1/reservations/", {"space": space.pk, "start": start, "end": end}, format="json"
    )
    assert response.status_code == 400
    assert "at most 1h00" in response.json()["error"]["fields"]["start"][0]


def test_read_only_role_reads_everything_and_writes_nothing(
    as_integration, space, make_reservation
):
    existing = make_reservation(space)
    client = as_integration(IntegrationRole.READ_ONLY)
    assert client.get("/api/v1/reservations/").json()["count"] == 1
    assert client.get(f"/api/v1/reservations/{existing.pk}/").status_code == 200
    refused = client.post("/api/v1/reservations/", booking(space, hour=15), format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This integration is read-only."
    assert client.post(f"/api/v1/reservations/{existing.pk}/cancel/").status_code == 403


def test_book_for_itself_role(as_integration, space, make_user, make_reservation):
    someone = make_reservation(space, start=local(space.location, next_weekday(1), 8))
    make_user("carol")
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    for_other = client.post(
        "/api/v1/reservations/", booking(space, requested_for="carol@example.com"), format="json"
    )
    assert for_other.status_code == 403
    assert "only book for itself" in for_other.json()["error"]["message"]
    mine = client.post("/api/v1/reservations/", booking(space), format="json")
    assert mine.status_code == 201
    listed = client.get("/api/v1/reservations/").json()
    assert [r["id"] for r in listed["results"]] == [mine.json()["id"]]
    assert client.get(f"/api/v1/reservations/{someone.pk}/").status_code == 404
    assert client.post(f"/api/v1/reservations/{someone.pk}/cancel/").status_code == 404


def test_book_for_anyone_manages_others_bookings(as_integration, space, make_reservation):
    existing = make_reservation(space)
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    response = client.post(
        f"/api/v1/reservations/{existing.pk}/cancel/", {"reason": "Closed"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_mobile_app_bookings_have_source_mobile(as_integration, space):
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF, mobile=True)
    response = client.post("/api/v1/reservations/", booking(space), format="json")
    assert response.status_code == 201 and response.json()["source"] == Source.MOBILE


def test_session_user_books_and_sees_only_their_own(make_user, space, make_reservation):
    other = make_reservation(space, start=local(space.location, next_weekday(1), 8))
    user = make_user("dave")
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    created = client.post("/api/v1/reservations/", booking(space), format="json")
    assert created.status_code == 201
    assert created.json()["requested_for"] == "dave@example.com"
    assert client.get("/api/v1/reservations/").json()["count"] == 1
    assert client.get(f"/api/v1/reservations/{other.pk}/").status_code == 404
    for_other = client.post(
        "/api/v1/reservations/",
        booking(space, hour=16, requested_for=other.requested_for.email),
        format="json",
    )
    assert for_other.status_code == 403
    assert for_other.json()["error"]["code"] == "not_allowed"


def test_session_writes_need_the_csrf_token(make_user, space):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user())
    response = client.post("/api/v1/reservations/", booking(space), format="json")
    assert response.status_code == 403


def test_weekly_series_and_skipping_unavailable_dates(as_integration, space, make_reservation):
    client = as_integration()
    first = local(space.location, next_weekday(1), 9)
    make_reservation(space, start=first + timedelta(weeks=2))  # the third Tuesday is taken
    payload = {
        "space": space.pk,
        "start": first.isoformat(),
        "end": (first + timedelta(hours=1)).isoformat(),
        "title": "Stand-up",
        "recurrence": {"frequency": "weekly", "weekdays": [1], "count": 4},
    }
    refused = client.post("/api/v1/reservations/series/", payload, format="json")
    assert refused.status_code == 409
    assert len(refused.json()["error"]["clashes"]) == 1

    payload["skip_unavailable"] = True
    booked = client.post("/api/v1/reservations/series/", payload, format="json")
    assert booked.status_code == 201, booked.content
    body = booked.json()
    assert len(body["reservations"]) == 3 and len(body["skipped"]) == 1
    assert len({r["series"] for r in body["reservations"]}) == 1
    bad_rule = client.post(
        "/api/v1/reservations/series/",
        {**payload, "recurrence": {"frequency": "weekly"}},
        format="json",
    )
    assert bad_rule.status_code == 400 and "recurrence.non_field_errors" in str(
        bad_rule.json()["error"]["fields"]
    )

    cancel_rest = client.post(
        f"/api/v1/reservations/{body['reservations'][1]['id']}/cancel/",
        {"scope": "following"},
        format="json",
    )
    assert cancel_rest.status_code == 200
    statuses = Reservation.objects.filter(series_id=body["reservations"][0]["series"])
    assert sorted(statuses.values_list("status", flat=True)) == [
        "cancelled",
        "cancelled",
        "confirmed",
    ]


def test_patch_refuses_fields_it_will_not_change_by_name(as_integration, space, make_reservation):
    existing = make_reservation(space, title="Kept")
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    url = f"/api/v1/reservations/{existing.pk}/"
    cases = [
        ({"status": "cancelled", "title": "Changed"}, {"status"}),
        ({"colour": "red"}, {"colour"}),
        (
            {"source": "portal", "booked_by": "x@example.com", "id": 5},
            {"source", "booked_by", "id"},
        ),
        ({"kind": "group"}, {"kind"}),
    ]
    for payload, fields in cases:
        response = client.patch(url, payload, format="json")
        assert response.status_code == 400, (payload, response.content)
        error = response.json()["error"]
        assert error["code"] == "invalid" and set(error["fields"]) == fields
    assert (
        "cannot be set"
        in client.patch(url, {"status": "x"}, format="json").json()["error"]["fields"]["status"][0]
    )
    existing.refresh_from_db()
    assert (existing.title, existing.status, existing.version) == ("Kept", "confirmed", 1)


def test_patch_hands_a_booking_over_where_the_role_may(
    as_integration, space, make_reservation, make_user
):
    existing = make_reservation(space)
    erin = make_user("erin")
    url = f"/api/v1/reservations/{existing.pk}/"
    anyone = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    handed = anyone.patch(url, {"requested_for": "erin@example.com"}, format="json")
    assert handed.status_code == 200, handed.content
    assert handed.json()["requested_for"] == "erin@example.com"
    existing.refresh_from_db()
    assert existing.requested_for == erin and existing.history.first().change_source == "rest_api"

    itself = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    own = itself.post("/api/v1/reservations/", booking(space, hour=15), format="json").json()
    refused = itself.patch(
        f"/api/v1/reservations/{own['id']}/", {"requested_for": "erin@example.com"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {
        "requested_for": ["This integration books only for itself."]
    }
    assert Reservation.objects.get(pk=own["id"]).requested_for == itself.integration.user


def test_patch_requested_for_without_the_on_behalf_right_is_refused(
    make_user, space, make_reservation
):
    frank = make_user("frank")
    mine = make_reservation(space, user=frank)
    make_user("gina")
    client = APIClient()
    client.force_login(frank)
    response = client.patch(
        f"/api/v1/reservations/{mine.pk}/", {"requested_for": "gina@example.com"}, format="json"
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "not_allowed" and "requested_for" in error["fields"]
    assert Reservation.objects.get(pk=mine.pk).requested_for == frank


def test_read_only_role_sees_public_fields_only(as_integration, space, make_reservation, make_user):
    hal = make_user("hal")
    plain = make_reservation(space, user=hal, title="Layoffs", description="Confidential")
    nicknamed = make_reservation(
        space,
        user=hal,
        start=local(space.location, next_weekday(1), 14),
        title="Interview",
        public_nickname="Team sync",
    )
    client = as_integration(IntegrationRole.READ_ONLY)
    listed = client.get("/api/v1/reservations/")
    detail = client.get(f"/api/v1/reservations/{plain.pk}/")
    for response in (listed, detail):
        assert response.status_code == 200
        text = response.content.decode()
        for private in ("Layoffs", "Interview", "Confidential", "hal", "@example.com"):
            assert private not in text, private
    results = {r["id"]: r for r in listed.json()["results"]}
    start, end = slot(space, 10)
    assert results[plain.pk] == {
        "id": plain.pk,
        "space": space.pk,
        "start": start,
        "end": end,
        "public_nickname": "Reserved",
        "status": "confirmed",
    }
    assert results[nicknamed.pk]["public_nickname"] == "Team sync"
    by_person = client.get("/api/v1/reservations/", {"requested_for": "hal@example.com"})
    assert by_person.status_code == 400 and "requested_for" in by_person.json()["error"]["fields"]


def test_read_all_role_sees_everything_and_writes_nothing(
    as_integration, space, make_reservation, make_user
):
    existing = make_reservation(space, user=make_user("ivy"), title="Board")
    client = as_integration(IntegrationRole.READ_ALL)
    (row,) = client.get("/api/v1/reservations/").json()["results"]
    assert (row["title"], row["requested_for"]) == ("Board", "ivy@example.com")
    url = f"/api/v1/reservations/{existing.pk}/"
    assert client.get(url).json()["title"] == "Board"
    for response in (
        client.post("/api/v1/reservations/", booking(space, hour=15), format="json"),
        client.patch(url, {"title": "Mine now"}, format="json"),
        client.post(f"{url}cancel/", {}, format="json"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "This integration is read-only."
    existing.refresh_from_db()
    assert (existing.title, existing.status) == ("Board", "confirmed")
