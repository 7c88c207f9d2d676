"""The week view and the next free time in a real browser, under the Content-Security-Policy:
from the day grid to a room's week, a free half hour clicked (and one chosen with the
keyboard) lands on the booking form prefilled; a taken slot offers the room's next free time,
which books when clicked; on a phone the week scrolls sideways inside its frame."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from reservations import services
from reservations.models import Reservation
from tests.conftest import local, next_weekday
from tests.support.browser import Watched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(2)  # a Wednesday next week
THURSDAY = DAY + timedelta(days=1)


def test_from_the_day_grid_to_the_week_and_a_free_half_hour_to_the_booking_form(
    new_page, live_server, office, alice, bob
):
    office.small.setup_minutes, office.small.cleanup_minutes = 15, 15
    office.small.save()
    services.book(
        actor=bob, space=office.small, start=local(office.location, DAY, 10),
        end=local(office.location, DAY, 11), title="Bob's secret workshop",
    )  # fmt: skip
    watched = Watched(new_page(alice))
    page = watched.page
    watched.goto(f"{live_server.url}/schedule/?location={office.location.pk}&date={DAY}")
    page.get_by_role("link", name="Small room: week view").click()
    page.wait_for_url(f"**/schedule/space/{office.small.pk}/?week={DAY}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Small room")

    wednesday = page.locator(f".week-col[data-day='{DAY}']")
    block = wednesday.locator(".block-locked")
    expect(block).to_have_count(1)
    expect(block).to_contain_text("Booked")
    expect(page.get_by_text("Bob's secret workshop")).to_have_count(0)
    # The block sits in its day's column, with hatched buffers above and below it.
    column, box = wednesday.bounding_box(), block.bounding_box()
    assert column["x"] <= box["x"] and box["x"] + box["width"] <= column["x"] + column["width"]
    setup = wednesday.locator(".buffer-setup").bounding_box()
    cleanup = wednesday.locator(".buffer-cleanup").bounding_box()
    assert abs(setup["y"] + setup["height"] - box["y"]) <= 2
    assert abs(cleanup["y"] - (box["y"] + box["height"])) <= 2
    assert cleanup["height"] == pytest.approx(box["height"] / 4, rel=0.2)  # 15 of 60 minutes
    assert page.locator("[style]").count() == 0

    name = f"Book Small room on {THURSDAY:%A} {THURSDAY.day} {THURSDAY:%B} from 14:00"
    page.get_by_role("link", name=name).click()
    page.wait_for_url("**/book/**")
    expect(page.locator("input[name=date]")).to_have_value(THURSDAY.isoformat())
    expect(page.locator("input[name=start]")).to_have_value("14:00")
    expect(page.locator("input[name=end]")).to_have_value("15:00")
    expect(page.locator("select[name=space]")).to_have_value(str(office.small.pk))

    # The keyboard path: back to the week, focus a free half hour, press Enter.
    page.go_back()
    noon = f"Book Small room on {DAY:%A} {DAY.day} {DAY:%B} from 12:00"
    slot = page.get_by_role("link", name=noon)
    slot.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/**")
    expect(page.locator("input[name=start]")).to_have_value("12:00")
    watched.assert_clean()


def test_a_taken_slot_offers_the_next_free_time_which_books_when_clicked(
    new_page, live_server, office, alice, bob
):
    services.book(
        actor=bob, space=office.small, start=local(office.location, DAY, 10),
        end=local(office.location, DAY, 12),
    )  # fmt: skip
    watched = Watched(new_page(alice))
    page = watched.page
    watched.goto(
        f"{live_server.url}/book/?space={office.small.pk}&date={DAY}&start=10:00&end=11:00"
    )
    page.fill("input[name=title]", "Planning")
    page.click("#book-submit")
    expect(page.get_by_role("heading", name="That slot is taken")).to_be_visible()
    offers = page.locator("#next-free")
    expect(offers).to_contain_text("Small room is free next:")
    expect(offers).to_contain_text("12:00")
    # Other rooms offered hold at least the small room's four people.
    expect(page.get_by_role("button", name="Book Big room instead")).to_be_visible()
    expect(page.get_by_role("button", name="Book Booth instead")).to_have_count(0)

    offers.get_by_role("button").first.click()
    page.wait_for_url("**/reservations/*/")
    expect(page.locator(".messages")).to_contain_text("Booked Small room.")
    mine = Reservation.objects.get(requested_for=alice)
    assert mine.title == "Planning" and mine.space == office.small
    assert mine.start == local(office.location, DAY, 12)
    assert mine.end == local(office.location, DAY, 13)
    watched.assert_clean()


def test_on_a_phone_the_week_scrolls_inside_its_frame(new_page, live_server, office, alice):
    watched = Watched(new_page(alice, width=375, height=740))
    page = watched.page
    watched.goto(f"{live_server.url}/schedule/space/{office.small.pk}/?week={DAY}")
    frame = page.locator(".week-scroll")
    sizes = frame.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert sizes[0] > sizes[1]  # seven days do not fit: the frame scrolls
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1  # the page itself does not
    expect(page.get_by_role("link", name="Next week")).to_be_visible()
    watched.assert_clean()
