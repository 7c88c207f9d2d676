"""The Content-Security-Policy in a real browser: the portal, the admin (a changelist, and a
change form with its autocomplete and date widgets) and the Swagger UI work under it, and
Chromium reports no violation on any of them (console and ``securitypolicyviolation``)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from reservations import services
from tests.conftest import local, next_weekday
from tests.support.browser import Watched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(2)


@pytest.fixture
def booked(office, alice, bob):
    """A day with one of Alice's bookings and one of Bob's in the small room."""
    location = office.location
    mine = services.book(
        actor=alice,
        space=office.small,
        start=local(location, DAY, 9),
        end=local(location, DAY, 10),
        title="Alice's review",
    ).reservations[0]
    services.book(
        actor=bob,
        space=office.small,
        start=local(location, DAY, 11),
        end=local(location, DAY, 12, 30),
        title="Bob's call",
    )
    return mine


def test_portal_pages_work_under_the_policy(new_page, live_server, office, alice, booked):
    watched = Watched(new_page(alice))
    page = watched.page
    base = live_server.url

    watched.goto(f"{base}/")
    page.get_by_label("Date").fill(DAY.isoformat())
    page.get_by_label("From").fill("14:00")
    page.get_by_role("button", name="Search").click()  # htmx swaps the results in
    expect(page.locator(".space-card h3").first).to_be_visible()

    watched.goto(f"{base}/schedule/?location={office.location.pk}&date={DAY.isoformat()}")
    mine = page.locator(".block-mine", has_text="Alice's review")
    expect(mine).to_be_visible()
    locked = page.locator(".block-locked")
    # The blocks are laid out by the stylesheet: Bob's later booking sits right of Alice's,
    # and is wider (1h30 against 1h).
    mine_box, locked_box = mine.bounding_box(), locked.bounding_box()
    assert locked_box["x"] > mine_box["x"] + mine_box["width"]
    assert locked_box["width"] > mine_box["width"] * 1.3
    page.get_by_role("link", name=re.compile("Next")).click()  # htmx
    expect(page).to_have_url(re.compile(r"date="))

    watched.goto(f"{base}/book/?space={office.big.pk}&date={DAY.isoformat()}&start=15:00&end=16:00")
    page.get_by_label("Repeat").select_option("weekly")  # portal.js shows the details
    expect(page.locator("[data-recurrence-details]")).to_be_visible()

    watched.goto(f"{base}/my/")
    watched.goto(f"{base}/reservations/{booked.pk}/")

    watched.goto(f"{base}/profile/")
    page.get_by_role("button", name="Create a feed link").click()
    address = page.get_by_label("Feed address")
    expect(address).to_have_value(re.compile(r"/feeds/.+\.ics$"))
    address.focus()  # portal.js selects it (this was an inline onclick)
    assert page.evaluate("window.getSelection().toString() || document.activeElement.value")

    watched.assert_clean()

    signed_out = Watched(new_page())
    signed_out.goto(f"{base}/accounts/login/")
    expect(signed_out.page.get_by_role("button", name="Sign in")).to_be_visible()
    signed_out.assert_clean()


def test_admin_pages_work_under_the_policy(new_page, live_server, office, make_user, booked):
    admin = make_user("root", is_staff=True, is_superuser=True)
    watched = Watched(new_page(admin))
    page = watched.page
    base = live_server.url

    watched.goto(f"{base}/admin/")
    watched.goto(f"{base}/admin/reservations/reservation/")
    expect(page.locator("#result_list")).to_contain_text("Small room")
    page.locator("#changelist-filter").first.wait_for()

    watched.goto(f"{base}/admin/reservations/reservation/{booked.pk}/change/")
    # The autocomplete (select2 + its AJAX search) and the date widget's calendar: admin JS.
    page.locator("#id_requested_for + .select2, .field-requested_for .select2").first.click()
    page.locator(".select2-search__field").fill("bo")
    expect(page.locator(".select2-results__option", has_text="bob")).to_be_visible()
    page.keyboard.press("Escape")
    calendar_link = page.locator(".datetimeshortcuts a[id^=calendarlink]").first
    if calendar_link.count():
        calendar_link.click()
        expect(page.locator(".calendarbox").first).to_be_visible()

    watched.goto(f"{base}/admin/reservations/feedtoken/add/")
    watched.goto(f"{base}/calendars/setup/spaces/")  # the calendar setup pages
    watched.goto(f"{base}/calendars/setup/spaces/{office.small.pk}/")
    watched.goto(f"{base}/admin/calendars/calendarprovider/add/")
    watched.goto(f"{base}/admin/auth/user/{admin.pk}/change/")
    watched.assert_clean()


@pytest.mark.parametrize("public_schema", [True, False])
def test_swagger_ui_works_under_the_policy(
    new_page, live_server, make_user, settings, public_schema
):
    settings.API_PUBLIC_SCHEMA = public_schema  # private: the page's script and schema requests
    watched = Watched(new_page(make_user("reader")))  # go with the session
    page = watched.page
    watched.goto(f"{live_server.url}/api/docs/")
    operation = page.locator(".opblock-summary", has_text="/api/v1/locations/").first
    expect(operation).to_be_visible()  # the schema was fetched and rendered by Swagger UI
    operation.click()
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    watched.assert_clean()
