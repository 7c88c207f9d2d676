"""Floor maps in a real browser (Chromium via Playwright): a marker opens its popover and
books with the mouse, and with the keyboard alone (Tab to the marker, Enter, Tab to Book,
Enter; Escape closes the popover and gives the focus back); the admin places a space by
clicking on the plan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from reservations.models import FloorMap, Reservation
from tests.conftest import local, next_weekday
from tests.support.images import svg

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(2)


@pytest.fixture
def mapped(office, make_reservation, bob):
    """The office's spaces on floor 1's map; the small room is booked at 10:00."""
    for n, space in enumerate((office.booth, office.small, office.big, office.desk)):
        space.floor, space.map_x, space.map_y = "1", 0.15 + n * 0.2, 0.5
        space.save()
    floor_map = FloorMap(location=office.location, floor="1")
    floor_map.image = SimpleUploadedFile("plan.svg", svg())
    floor_map.save()
    make_reservation(office.small, user=bob, start=local(office.location, DAY, 10))
    return floor_map


def open_map(page, live_server, office):
    page.goto(
        f"{live_server.url}/?location={office.location.pk}&date={DAY}&start=10:00"
        "&duration=60&capacity=1&view=map"
    )


def test_click_a_marker_then_book_from_its_popover(new_page, live_server, office, mapped, alice):
    page = new_page(alice)
    open_map(page, live_server, office)
    expect(page.get_by_role("button", name="Small room, 4 seats, booked")).to_be_visible()
    marker = page.get_by_role("button", name="Big room, 10 seats, free")
    popover = page.get_by_role("dialog", name="Big room")
    expect(popover).to_be_hidden()
    marker.click()
    expect(popover).to_be_visible()
    expect(marker).to_have_attribute("aria-expanded", "true")
    expect(popover).to_contain_text("10 people")
    expect(popover).to_contain_text("Video conferencing")
    popover.get_by_role("link", name="Book Big room").click()
    expect(page.get_by_role("heading", name="Book Big room")).to_be_visible()
    expect(page.get_by_label("Date")).to_have_value(DAY.isoformat())
    expect(page.get_by_label("From")).to_have_value("10:00")
    expect(page.locator("#id_end")).to_have_value("11:00")
    page.get_by_label("Title").fill("Planning")
    page.get_by_role("button", name="Book Big room").click()
    expect(page.get_by_text("Booked Big room.")).to_be_visible()
    booked = Reservation.objects.get(requested_for=alice)
    assert booked.space == office.big and booked.title == "Planning"
    assert booked.start == local(office.location, DAY, 10)
    assert booked.end - booked.start == timedelta(hours=1)


def test_the_keyboard_path(new_page, live_server, office, mapped, alice):
    page = new_page(alice)
    open_map(page, live_server, office)
    marker = page.get_by_role("button", name="Booth, 1 seat, free")
    page.get_by_role("button", name="Search").focus()
    for _ in range(10):  # Tab from the search form to the first marker
        page.keyboard.press("Tab")
        if marker.evaluate("m => m === document.activeElement"):
            break
    expect(marker).to_be_focused()
    popover = page.get_by_role("dialog", name="Booth")
    page.keyboard.press("Enter")
    expect(popover).to_be_visible()
    page.keyboard.press("Escape")  # closes it, the focus back on the marker
    expect(popover).to_be_hidden()
    expect(marker).to_be_focused()
    page.keyboard.press("Enter")
    expect(popover).to_be_visible()
    page.keyboard.press("Tab")
    book = popover.get_by_role("link", name="Book Booth")
    expect(book).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Book Booth")).to_be_visible()
    page.get_by_label("Title").focus()
    page.keyboard.type("Call")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Booked Booth.")).to_be_visible()
    assert Reservation.objects.get(requested_for=alice).space == office.booth


def test_admin_places_a_space_by_clicking_on_the_plan(
    new_page, live_server, office, mapped, make_user
):
    admin = make_user("boss", is_staff=True, is_superuser=True)
    office.desk.map_x = office.desk.map_y = None
    office.desk.save()
    page = new_page(admin)
    page.goto(f"{live_server.url}/admin/reservations/floormap/{mapped.pk}/change/")
    page.get_by_label("Space to place").select_option(label="Desk 1 (not placed)")
    plan = page.get_by_role("img", name="Plan of HQ floor 1")
    box = plan.bounding_box()
    plan.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.25})
    expect(page.get_by_role("status")).to_contain_text("Desk 1 placed at 75 % across, 25 % down")
    office.desk.refresh_from_db()
    assert office.desk.map_x == pytest.approx(0.75, abs=0.01)
    assert office.desk.map_y == pytest.approx(0.25, abs=0.01)
    expect(page.locator(f'.marker[data-space="{office.desk.pk}"]')).to_have_class(
        "marker at-x75 at-y25 selected"
    )
