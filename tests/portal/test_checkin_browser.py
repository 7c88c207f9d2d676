"""Check-in in a real browser (Chromium via Playwright): Alice checks in from My reservations
and sees "Checked in at HH:MM" in place of the button."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reservations import services
from reservations.models import Reservation
from tests.conftest import midday_zone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_checks_in_from_my_reservations(
    new_page, live_server, make_location, make_space, alice
):
    location = make_location("HQ", time_zone=midday_zone(), check_in_required=True)
    room = make_space(location, name="Severn")
    now = timezone.now()
    start = now + timedelta(minutes=5)
    booking = services.book(
        actor=alice, space=room, start=start, end=start + timedelta(hours=1),
        title="Design review", now=now - timedelta(hours=1),
    ).reservations[0]  # fmt: skip

    page = new_page(alice)
    page.goto(f"{live_server.url}/my/")
    card = page.locator(".booking-card", has_text="Design review")
    card.get_by_role("button", name="Check in").click()
    expect(page.locator(".booking-card", has_text="Design review")).to_contain_text("Checked in")

    checked_in_at = Reservation.objects.get(pk=booking.pk).checked_in_at
    assert checked_in_at is not None
    when = f"{checked_in_at.astimezone(location.zone):%H:%M}"
    expect(page.get_by_text(f"Checked in at {when}.")).to_be_visible()  # the message
    card = page.locator(".booking-card", has_text="Design review")
    expect(card).to_contain_text(f"Checked in at {when}")
    expect(card.get_by_role("button", name="Check in")).to_have_count(0)
