"""The portal in a real browser: Debian's Chromium driven by Playwright against live_server.

What a new user does: sign in, search, book, find it in My reservations, reschedule, cancel;
quick reservation; the schedule with someone else's booking greyed out and its reason on
hover and on keyboard focus; a conflict that offers other rooms; a phone-width screen.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from reservations.models import Reservation, ReservationStatus, Source
from tests.conftest import local, next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(1)


def test_sign_in_search_book_reschedule_cancel(new_page, live_server, office, alice):
    page = new_page()
    page.goto(f"{live_server.url}/my/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))  # sign in first
    page.get_by_label("Username or email").fill("alice@example.com")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My reservations")).to_be_visible()

    # Search: the form updates the results in place (htmx) and the URL follows.
    page.goto(f"{live_server.url}/")
    page.get_by_label("Date").fill(DAY.isoformat())
    page.get_by_label("From").fill("10:00")
    page.get_by_role("spinbutton", name=re.compile("^People")).fill("3")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".space-card h3")).to_have_text(["Small room", "Big room"])
    expect(page).to_have_url(re.compile(r"capacity=3"))

    page.get_by_role("link", name="Book Small room").click()
    page.get_by_label("Title").fill("Design review")
    page.get_by_role("button", name="Book Small room").click()
    expect(page.get_by_text("Booked Small room.")).to_be_visible()
    expect(page.get_by_role("heading", name="Design review")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My reservations").click()
    card = page.locator(".booking-card", has_text="Design review")
    expect(card).to_contain_text("10:00")
    card.get_by_role("link", name="Reschedule").click()
    page.get_by_label("From").fill("14:00")
    page.get_by_label("Until").fill("15:30")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Your booking was updated.")).to_be_visible()
    expect(page.locator(".lead")).to_contain_text("14:00")
    reservation = Reservation.objects.get(title="Design review")
    assert reservation.start == local(office.location, DAY, 14)
    assert reservation.end == local(office.location, DAY, 15, 30)

    page.get_by_role("link", name="Cancel booking").click()
    page.get_by_label("Reason").fill("Moved online")
    page.get_by_role("button", name="Cancel booking").click()
    expect(page.get_by_text("Your booking was cancelled.")).to_be_visible()
    expect(page.locator(".booking-card", has_text="Design review")).to_have_count(0)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED


def test_quick_reservation(new_page, live_server, office, alice, monkeypatch):
    monkeypatch.setattr(
        "django.utils.timezone.now", lambda: local(office.location, DAY, 11, 1)
    )  # the live server runs in this process, so it sees the same clock
    page = new_page(alice)
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Quick reservation").click()
    expect(page.get_by_text("Booth is yours from 11:00 to 11:30")).to_be_visible()
    reservation = Reservation.objects.get(requested_for=alice)
    assert (reservation.space, reservation.source) == (office.booth, Source.QUICK)


def test_schedule_greys_out_someone_elses_booking_with_the_reason(
    new_page, live_server, office, alice, bob, make_reservation
):
    theirs = make_reservation(office.big, user=bob, start=local(office.location, DAY, 9))
    page = new_page(alice)
    page.goto(f"{live_server.url}/schedule/?location={office.location.pk}&date={DAY}")
    block = page.locator(f"[aria-describedby='why-{theirs.pk}']")
    tip = page.locator(f"#why-{theirs.pk}")
    expect(tip).to_be_hidden()
    block.hover()
    expect(tip).to_be_visible()
    expect(tip).to_have_text("This is someone else's reservation.")
    page.mouse.move(0, 0)
    expect(tip).to_be_hidden()
    # Keyboard: into the grid, then arrow keys to the booking; the reason shows without a
    # mouse (the big room is the first row; its first free half hour is 07:00, two before).
    page.get_by_label("Date").focus()
    while not page.evaluate("!!document.activeElement.closest('[role=grid]')"):
        page.keyboard.press("Tab")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(block).to_be_focused()
    expect(tip).to_be_visible()

    # The next day is one click away, and a free slot books through the event planner.
    heading = page.locator(".schedule-day")
    page.get_by_role("link", name="Next day").click()
    expect(heading).to_contain_text(f"{DAY + timedelta(days=1):%A} ")  # swapped in by htmx
    expect(page).to_have_url(re.compile(f"date={DAY + timedelta(days=1)}"))
    page.get_by_role("link", name="Previous day").click()
    expect(heading).to_contain_text(f"{DAY:%A} ")
    page.get_by_role("link", name="Book Small room from 13:00").click()
    expect(page.get_by_label("From")).to_have_value("13:00")
    page.get_by_role("button", name="Book Small room").click()
    expect(page.get_by_text("Booked Small room.")).to_be_visible()
    booked = Reservation.objects.get(requested_for=alice)
    assert booked.source == Source.EVENT_PLANNER
    assert booked.start == local(office.location, DAY, 13)


def test_a_conflict_offers_other_free_rooms(
    new_page, live_server, office, alice, bob, make_reservation
):
    page = new_page(alice)
    page.goto(f"{live_server.url}/book/?space={office.small.pk}&date={DAY}&start=10:00&end=11:00")
    page.get_by_label("Title").fill("Interview")
    # Someone takes the slot while the form is open.
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 10))
    page.get_by_role("button", name="Book Small room").click()
    conflict = page.get_by_role("alert")
    expect(conflict).to_contain_text("Small room is already booked from 10:00 to 11:00")
    expect(page.get_by_label("Title")).to_have_value("Interview")  # what was typed is kept
    conflict.get_by_role("button", name="Book Big room instead").click()
    expect(page.get_by_text("Booked Big room.")).to_be_visible()
    mine = Reservation.objects.get(requested_for=alice)
    assert (mine.space, mine.title) == (office.big, "Interview")


def test_phone_width(new_page, live_server, office, alice, make_reservation):
    make_reservation(office.small, user=alice, start=local(office.location, DAY, 10))
    page = new_page(alice, width=375, height=740)
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    for path in (
        f"/?location={office.location.pk}&date={DAY}&start=10:00",
        f"/schedule/?location={office.location.pk}&date={DAY}",
        f"/book/?space={office.big.pk}&date={DAY}&start=12:00",
        "/my/",
        "/profile/",
    ):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate(overflow) <= 0, f"{path} scrolls sideways at 375 px"
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    # The schedule scrolls inside its own box; the space names stay put.
    page.goto(f"{live_server.url}/schedule/?location={office.location.pk}&date={DAY}")
    scroller = page.locator(".schedule-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
    name = page.locator(".space-name", has_text="Small room")
    before = name.bounding_box()["x"]
    scroller.evaluate("el => el.scrollLeft = 400")
    assert scroller.evaluate("el => el.scrollLeft") > 0
    assert name.bounding_box()["x"] == before  # sticky: the names stay in view
    # Booking works at that width, too.
    page.goto(f"{live_server.url}/book/?space={office.big.pk}&date={DAY}&start=12:00&end=13:00")
    page.get_by_role("button", name="Book Big room").click()
    expect(page.get_by_text("Booked Big room.")).to_be_visible()
