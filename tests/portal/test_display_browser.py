"""Room displays in a real browser (Chromium via Playwright) at a tablet's 1280x800: the
tablet types its pairing code and books the room from its page; it shows "Offline — retrying"
while its polls fail and recovers by itself; portrait works too; a change made elsewhere
shows within the 5-second poll without a reload."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reservations import displays, services
from reservations.models import Reservation, Source
from tests.conftest import midday_zone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 800, "height": 1280}
POLL = 7_000  # ms: one 5-second poll and its answer


@pytest.fixture
def room(make_location, make_space):
    location = make_location("London HQ", time_zone=midday_zone())
    return make_space(location, name="Thames", capacity=12)


def test_pair_with_the_code_then_book_from_the_display(new_page, live_server, room):
    pairing = displays.create(space=room)
    page = new_page(**LANDSCAPE)
    page.goto(f"{live_server.url}/display/")  # the tablet's start page: not paired yet
    expect(page.get_by_role("heading", name="Pair this display")).to_be_visible()
    page.get_by_label("Pairing code").fill(f"{pairing.code[:3]} {pairing.code[3:]}")
    page.get_by_role("button", name="Pair").click()

    expect(page.get_by_role("heading", name="Thames")).to_be_visible()
    expect(page.locator(".state-word")).to_have_text("Free")
    page.get_by_role("button", name=re.compile(r"^Book 30 min")).click()
    expect(page.locator(".state-word")).to_have_text("Busy")
    booking = Reservation.objects.get(space=room)
    until = f"{booking.end.astimezone(room.location.zone):%H:%M}"
    expect(page.locator("#display-message")).to_have_text(f"Booked until {until}.")
    expect(page.locator(".state-detail")).to_contain_text(f"Walk-in until {until}")
    assert booking.source == Source.DISPLAY
    assert booking.history.get().change_source == Source.DISPLAY

    # End it from the display: free again at once.
    page.get_by_role("button", name="End now").click()
    expect(page.locator(".state-word")).to_have_text("Free")

    # The cookie brings a reloaded tablet back to its room.
    page.goto(f"{live_server.url}/display/")
    expect(page.get_by_role("heading", name="Thames")).to_be_visible()


def test_a_booking_made_elsewhere_shows_within_the_poll(new_page, live_server, room, make_user):
    _display, token = displays.pair(displays.create(space=room).code, address="127.0.0.1")
    page = new_page(**LANDSCAPE)
    page.goto(f"{live_server.url}/display/{token}/")
    expect(page.locator(".state-word")).to_have_text("Free")
    now = timezone.now()
    services.book(
        actor=make_user(), space=room, start=now - timedelta(minutes=1),
        end=now + timedelta(minutes=45), title="Private title", public_nickname="Design crit",
        now=now - timedelta(minutes=2),
    )  # fmt: skip
    expect(page.locator(".state-word")).to_have_text("Busy", timeout=POLL)
    expect(page.locator(".state-detail")).to_contain_text("Design crit")
    expect(page.get_by_text("Private title")).to_have_count(0)


def test_offline_banner_while_polls_fail_then_recovery(new_page, live_server, room, make_user):
    _display, token = displays.pair(displays.create(space=room).code, address="127.0.0.1")
    page = new_page(**LANDSCAPE)
    page.goto(f"{live_server.url}/display/{token}/")
    banner = page.get_by_role("alert").filter(has_text="Offline — retrying")
    expect(banner).to_be_hidden()

    page.route("**/state/", lambda route: route.abort("internetdisconnected"))
    expect(banner).to_be_visible(timeout=POLL)
    now = timezone.now()
    services.book(
        actor=make_user(), space=room, start=now - timedelta(minutes=1),
        end=now + timedelta(minutes=30), public_nickname="Back online",
        now=now - timedelta(minutes=2),
    )  # fmt: skip
    page.unroute("**/state/")
    expect(banner).to_be_hidden(timeout=POLL)
    expect(page.locator(".state-detail")).to_contain_text("Back online")


def test_portrait_and_landscape_fit_the_tablet(new_page, live_server, room):
    _display, token = displays.pair(displays.create(space=room).code, address="127.0.0.1")
    for viewport in (LANDSCAPE, PORTRAIT):
        page = new_page(**viewport)
        page.goto(f"{live_server.url}/display/{token}/")
        word = page.locator(".state-word")
        expect(word).to_have_text("Free")
        box = word.bounding_box()
        assert box["height"] >= 80, box  # readable from across the room
        button = page.get_by_role("button", name=re.compile(r"^Book 60 min"))
        button_box = button.bounding_box()
        assert button_box["y"] + button_box["height"] <= viewport["height"], (viewport, button_box)
        assert button_box["x"] + button_box["width"] <= viewport["width"], (viewport, button_box)
