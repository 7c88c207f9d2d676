"""Check-in through the REST API: ``POST /api/v1/reservations/ID/check-in/`` answers 200 with
the reservation inside the window, 409 ``check_in_closed`` with the window outside it or once
released, 409 ``needs_approval`` while pending, and never checks in someone else's booking for
an integration that books only for itself; the OpenAPI schema documents it and the codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reservations import services
from reservations.models import IntegrationRole, Reservation, ReservationStatus
from tests.conftest import midday_zone

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(make_location, make_space):
    location = make_location("HQ", time_zone=midday_zone(), check_in_required=True)
    return make_space(location, name="Severn")


def book(user, space, *, starts_in: int, minutes: int = 60, **extra) -> Reservation:
    now = timezone.now()
    start = now + timedelta(minutes=starts_in)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes),
        now=now - timedelta(hours=2), **extra,
    ).reservations[0]  # fmt: skip


def check_in(client, reservation):
    return client.post(f"/api/v1/reservations/{reservation.pk}/check-in/", format="json")


def test_check_in_inside_the_window_answers_the_reservation(as_integration, room):
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    booking = book(client.integration.user, room, starts_in=5)
    response = check_in(client, booking)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == booking.pk and body["checked_in_at"] is not None
    assert body["status"] == "confirmed" and body["released_at"] is None
    assert check_in(client, booking).status_code == 200  # idempotent


def test_check_in_outside_the_window_is_a_409_with_the_window(as_integration, room):
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    booking = book(client.integration.user, room, starts_in=120)
    response = check_in(client, booking)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "check_in_closed"
    opens = (booking.start - timedelta(minutes=15)).astimezone(room.location.zone)
    closes = (booking.start + timedelta(minutes=15)).astimezone(room.location.zone)
    assert error["message"] == (
        f"Check-in for this booking is open from {opens:%H:%M} to {closes:%H:%M} "
        f"({room.location.time_zone}); it has not opened yet."
    )
    booking.refresh_from_db()
    assert booking.checked_in_at is None


def test_check_in_to_a_released_booking_is_a_409(as_integration, room):
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    booking = book(client.integration.user, room, starts_in=-20)
    services.release_no_show(reservation=booking, now=timezone.now())
    response = check_in(client, booking)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "check_in_closed"
    assert "nobody checked in by" in response.json()["error"]["message"]


def test_check_in_to_a_pending_booking_is_a_409_needs_approval(as_integration, room):
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    booking = book(client.integration.user, room, starts_in=5)
    # Pending, as a personal-mode booking is until the room answers.
    Reservation.objects.filter(pk=booking.pk).update(status=ReservationStatus.PENDING)
    response = check_in(client, booking)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "needs_approval"


def test_someone_elses_booking_cannot_be_checked_in(as_integration, make_user, room):
    client = as_integration(IntegrationRole.BOOK_FOR_ITSELF)
    booking = book(make_user(), room, starts_in=5)
    assert check_in(client, booking).status_code == 404  # not even visible to it
    reader = as_integration(IntegrationRole.READ_ALL)
    assert check_in(reader, booking).status_code in (403, 404)
    booking.refresh_from_db()
    assert booking.checked_in_at is None


def test_the_schema_documents_check_in_and_its_codes(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    operation = paths["/api/v1/reservations/{id}/check-in/"]["post"]
    assert "200" in operation["responses"]
    conflict = operation["responses"]["409"]["description"]
    assert "`check_in_closed`" in conflict and "`needs_approval`" in conflict


def test_a_released_booking_is_marked_cancelled_in_the_persons_feed(client, make_user, room):
    from icalendar import Calendar

    from reservations import feeds
    from reservations.notifications import reservation_uid

    user = make_user()
    booking = book(user, room, starts_in=-20)
    services.release_no_show(reservation=booking, now=timezone.now())
    body = client.get(f"/feeds/{feeds.issue(user=user).key}.ics").content
    found = {str(e["UID"]): e for e in Calendar.from_ical(body).walk("VEVENT")}
    assert str(found[reservation_uid(booking)]["STATUS"]) == "CANCELLED"
