"""Limits per person in the portal: the booking form says how many of their active bookings a
person holds, and a booking over a limit is refused on the form with the limit's words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from reservations import services
from reservations.models import BookingLimit, Reservation
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

TUE, WED, THU = next_weekday(1), next_weekday(2), next_weekday(3)


def book_form(space, day, *, start="10:00", end="11:00") -> dict:
    return {
        "space": space.pk,
        "date": day.isoformat(),
        "start": start,
        "end": end,
        "title": "",
        "public_nickname": "",
        "description": "",
        "interval": 1,
    }


@pytest.fixture
def contractor(alice, office):
    contractors = Group.objects.create(name="Contractors")
    BookingLimit.objects.create(location=office.location, group=contractors, max_active_bookings=2)
    alice.groups.add(contractors)
    for day, space in ((TUE, office.small), (WED, office.big)):
        start = local(office.location, day, 9)
        services.book(actor=alice, space=space, start=start, end=start + timedelta(hours=1))
    return alice


def test_a_booking_over_the_limit_is_a_form_error_with_the_limits_words(
    alice_client, office, contractor
):
    response = alice_client.post(reverse("portal:book"), book_form(office.booth, THU))
    assert response.status_code == 400
    errors = response.context["form"].non_field_errors()
    assert errors == [
        "Contractors may hold at most 2 active bookings at HQ; Alice Archer already holds 2: "
        f"Small room on {TUE:%a} {TUE.day} {TUE:%b} 09:00, "
        f"Big room on {WED:%a} {WED.day} {WED:%b} 09:00."
    ]
    assert "Contractors may hold at most 2 active bookings at HQ" in response.content.decode()
    assert Reservation.objects.filter(requested_for=contractor).count() == 2


def test_the_form_says_how_many_active_bookings_the_person_holds(alice_client, office, contractor):
    response = alice_client.get(reverse("portal:book"), {"space": office.booth.pk})
    assert "You hold 2 of your 2 active bookings at HQ (Contractors&#x27; limit)." in (
        response.content.decode()
    )


def test_a_booking_beyond_the_window_is_an_error_on_the_start(alice_client, office):
    BookingLimit.objects.create(location=office.location, booking_window_days=3)
    day = next_weekday(1, weeks_ahead=2)
    response = alice_client.post(reverse("portal:book"), book_form(office.booth, day))
    assert response.status_code == 400
    assert response.context["form"].errors["start"] == [
        "Everyone may book spaces at HQ at most 3 days ahead."
    ]
