"""Closures in a real browser (Chromium via Playwright): the schedule's hatched "Closed" block
shows the closure's reason on hover and on keyboard focus; booking a closed room says why and
offers an open room, which books in one click."""

from __future__ import annotations

from datetime import time as clock

import pytest
from playwright.sync_api import expect

from reservations.models import Closure, Reservation
from tests.conftest import next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(1)


def test_the_schedule_shows_a_closed_room_with_its_reason(new_page, live_server, office, alice):
    Closure.objects.create(
        location=office.location,
        space=office.small,
        start_date=DAY,
        end_date=DAY,
        start_time=clock(9),
        end_time=clock(12),
        reason="New carpets",
    )
    page = new_page(alice)
    page.goto(f"{live_server.url}/schedule/?location={office.location.pk}&date={DAY}")
    block = page.locator(".block-closed")
    tip = block.get_by_role("tooltip")
    expect(block).to_contain_text("Closed")
    expect(tip).to_be_hidden()
    block.hover()
    expect(tip).to_be_visible()
    expect(tip).to_have_text(
        f"Small room is closed from 09:00 to 12:00 on {DAY:%a %d %b %Y}: New carpets."
    )
    page.mouse.move(0, 0)
    expect(tip).to_be_hidden()
    block.focus()
    expect(tip).to_be_visible()
    expect(page.get_by_role("link", name="Book Small room from 10:00")).to_have_count(0)
    expect(page.get_by_role("link", name="Book Small room from 13:00")).to_have_count(1)


def test_booking_a_closed_room_says_why_and_offers_an_open_one(
    new_page, live_server, office, alice
):
    page = new_page(alice)
    page.goto(f"{live_server.url}/book/?space={office.small.pk}&date={DAY}&start=10:00&end=11:00")
    page.get_by_label("Title").fill("Interview")
    # The room is closed while the form is open.
    Closure.objects.create(
        location=office.location,
        space=office.small,
        start_date=DAY,
        end_date=DAY,
        reason="Water leak",
    )
    page.get_by_role("button", name="Book Small room").click()
    alert = page.get_by_role("alert")
    expect(alert.get_by_role("heading")).to_have_text("Closed at that time")
    expect(alert).to_contain_text(f"Small room is closed on {DAY:%a %d %b %Y}: Water leak.")
    alert.get_by_role("button", name="Book Big room instead").click()
    expect(page.get_by_text("Booked Big room.")).to_be_visible()
    assert Reservation.objects.get(requested_for=alice).space == office.big
