"""Limits per person in a real browser (Chromium via Playwright): a contractor at their limit
sees where they stand on the booking form, and a refused booking says which limit and what
they already hold; after cancelling one, the same booking goes through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from reservations import services
from reservations.models import BookingLimit, Reservation
from tests.conftest import local, next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TUE, WED, THU = next_weekday(1), next_weekday(2), next_weekday(3)


def test_a_booking_over_the_limit_says_which_limit_and_what_is_held(
    new_page, live_server, office, alice
):
    contractors = Group.objects.create(name="Contractors")
    BookingLimit.objects.create(location=office.location, group=contractors, max_active_bookings=2)
    alice.groups.add(contractors)
    held = []
    for day, space in ((TUE, office.small), (WED, office.big)):
        start = local(office.location, day, 9)
        held += services.book(
            actor=alice, space=space, start=start, end=start + timedelta(hours=1)
        ).reservations

    page = new_page(alice)
    page.goto(f"{live_server.url}/book/?space={office.booth.pk}&date={THU}&start=10:00&end=11:00")
    expect(page.get_by_text("You hold 2 of your 2 active bookings at HQ")).to_be_visible()
    page.get_by_label("Title").fill("Focus time")
    page.get_by_role("button", name="Book Booth").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "Contractors may hold at most 2 active bookings at HQ; Alice Archer already holds 2: "
        f"Small room on {TUE:%a} {TUE.day} {TUE:%b} 09:00, "
        f"Big room on {WED:%a} {WED.day} {WED:%b} 09:00."
    )
    assert not Reservation.objects.filter(space=office.booth).exists()

    services.cancel(actor=alice, reservation=held[0])
    page.get_by_role("button", name="Book Booth").click()
    expect(page.get_by_text("Booked Booth.")).to_be_visible()
