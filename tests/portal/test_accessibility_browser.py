"""axe-core over every portal page in Chromium: no serious or critical violation.

axe-core is vendored (static/vendor/axe.min.js, MPL-2.0, see static/vendor/README.md) and
loaded from the live server like any other script, so the run needs no network and works
under the Content-Security-Policy. Each page is checked as a person meets it: signed in, with
a booking on the day shown, after the htmx swaps it makes on load.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from playwright.sync_api import expect

from calendars.models import SyncLink
from reservations import approvals, displays, services
from reservations.models import ApprovalRule, Closure, FloorMap
from tests.conftest import local, next_weekday
from tests.support.images import svg

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(2)
SERIOUS = ("serious", "critical")


def axe_violations(page, live_server) -> list[str]:
    """The page's serious and critical violations, one line each: rule, impact, targets."""
    page.wait_for_load_state("load")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=f"{live_server.url}/static/vendor/axe.min.js")
    results = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {v['targets']}"
        for v in results
        if v["impact"] in SERIOUS
    ]


def check(page, live_server, url: str, problems: dict[str, list[str]]) -> None:
    response = page.goto(f"{live_server.url}{url}")
    if response is None or not response.ok:
        problems[url] = [f"HTTP {response.status if response else '-'}"]
        return
    found = axe_violations(page, live_server)
    if found:
        problems[url] = found


def report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{url}: {line}" for url, lines in problems.items() for line in lines)


@pytest.fixture
def booked(office, alice, bob):
    """One of Alice's bookings and one of Bob's in the small room, and a floor map."""
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
        end=local(location, DAY, 11, 30),
        title="Bob's call",
    )
    for n, space in enumerate((office.booth, office.small, office.big, office.desk)):
        space.floor, space.map_x, space.map_y = "1", 0.15 + n * 0.2, 0.5
        space.save()
    floor_map = FloorMap(location=office.location, floor="1")
    floor_map.image = SimpleUploadedFile("plan.svg", svg())
    floor_map.save()
    return mine


def test_every_signed_in_portal_page_passes_axe(
    new_page, live_server, office, alice, booked, make_user
):
    # Insights and the approvals queue: someone who manages every booking.
    manager = make_user("mo", perms=("reservations.view_insights", "reservations.manage_all"))
    page = new_page(alice)
    problems: dict[str, list[str]] = {}
    location, day = office.location.pk, DAY.isoformat()
    search = f"location={location}&date={day}&start=09:00&duration=60&capacity=1"
    for url in (
        "/",
        f"/?{search}",
        f"/?{search}&view=map",
        f"/schedule/?location={location}&date={day}",
        f"/schedule/space/{office.small.pk}/?week={day}",
        "/my/",
        f"/book/?space={office.big.pk}&date={day}&start=15:00&end=16:00",
        f"/reservations/{booked.pk}/",
        f"/reservations/{booked.pk}/change/",
        f"/reservations/{booked.pk}/cancel/",
        "/profile/",
        "/calendars/connect/",
    ):
        check(page, live_server, url, problems)
    managing = new_page(manager)
    for url in ("/insights/", "/approvals/"):
        check(managing, live_server, url, problems)

    # The booking form after a clash: the error, the alternatives.
    page.goto(f"{live_server.url}/book/?space={office.small.pk}&date={day}&start=09:00&end=10:00")
    page.get_by_role("button", name=re.compile("^Book")).click()
    expect(page.locator("#conflict")).to_be_visible()
    if found := axe_violations(page, live_server):
        problems["booking form with a clash"] = found
    assert problems == {}, report(problems)


def test_signed_out_pages_pass_axe(new_page, live_server, office, alice):
    page = new_page()
    problems: dict[str, list[str]] = {}
    alice.email = "alice@example.com"
    alice.save()
    key = f"{user_pk_to_url_str(alice)}-{default_token_generator.make_token(alice)}"
    for url in (
        "/accounts/login/",
        "/accounts/password/reset/",
        "/accounts/password/reset/done/",
        f"/accounts/password/reset/key/{key}/",
        "/accounts/password/reset/key/done/",
        "/display/",
    ):
        check(page, live_server, url, problems)
    assert problems == {}, report(problems)


def test_the_display_page_passes_axe(new_page, live_server, office):
    pairing = displays.create(space=office.small)
    page = new_page(width=1280, height=800)
    page.goto(f"{live_server.url}/display/")
    page.get_by_label("Pairing code").fill(pairing.code)
    page.get_by_role("button", name="Pair").click()
    expect(page.get_by_role("heading", name="Small room")).to_be_visible()
    found = axe_violations(page, live_server)
    assert found == [], "\n".join(found)


def test_the_schedule_is_one_tab_stop_with_arrow_keys_and_enter_books(
    new_page, live_server, office, alice, bob
):
    """Keyboard only: one Tab from the date field enters the grid (at its first free half
    hour), the arrows move by half hours and spaces, and Enter opens the booking form for the
    cell in focus; a second Tab leaves the grid."""
    location = office.location
    services.book(
        actor=bob, space=office.booth, start=local(location, DAY, 7), end=local(location, DAY, 8)
    )
    page = new_page(alice)
    page.goto(f"{live_server.url}/schedule/?location={location.pk}&date={DAY}")
    grid = page.get_by_role("grid")
    expect(grid).to_be_visible()
    page.get_by_label("Date").focus()
    page.keyboard.press("Tab")  # the previous/next day links come after the form
    while not page.evaluate("!!document.activeElement.closest('[role=grid]')"):
        page.keyboard.press("Tab")
    # Rows are ordered by floor then name: Big room, Booth, Desk 1, Small room. The first free
    # half hour is the big room's 07:00.
    expect(page.locator(":focus")).to_have_text("Book Big room from 07:00")
    page.keyboard.press("ArrowDown")  # the booth at 07:00: Bob's booking
    expect(page.locator(":focus")).to_contain_text("07:00\u201308:00")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # 08:00, free again
    expect(page.locator(":focus")).to_have_text("Book Booth from 08:00")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")  # the big room at 08:30
    expect(page.locator(":focus")).to_have_text("Book Big room from 08:30")
    page.keyboard.press("Home")  # the row header: the big room's week
    expect(page.locator(":focus")).to_have_attribute("aria-label", "Big room: week view")
    page.keyboard.press("ArrowRight")
    expect(page.locator(":focus")).to_have_text("Book Big room from 07:00")

    # Only one element of the grid is in the tab order.
    tabbable = page.evaluate(
        "Array.from(document.querySelectorAll('[role=grid] a[href], [role=grid] [tabindex]'))"
        ".filter(el => el.tabIndex >= 0).length"
    )
    assert tabbable == 1
    page.keyboard.press("Tab")
    assert not page.evaluate("!!document.activeElement.closest('[role=grid]')")
    page.keyboard.press("Shift+Tab")  # back to the cell last visited
    expect(page.locator(":focus")).to_have_text("Book Big room from 07:00")

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Book Big room")).to_be_visible()
    expect(page.get_by_label("Date")).to_have_value(DAY.isoformat())
    expect(page.get_by_label("From")).to_have_value("08:00")


def test_pages_in_their_other_states_pass_axe(
    new_page,
    live_server,
    office,
    alice,
    make_user,
    provider,
):
    """The details page with its calendar sync panel still waiting, a closed day on the
    schedule, the page a space's check-in QR code opens, and an approver's queue with a
    booking in it and the page their email's link opens."""
    location = office.location
    facilities = Group.objects.create(name="Facilities")
    ApprovalRule.objects.create(location=location, space=office.big, approvers=facilities)
    fiona = make_user("fiona", first_name="Fiona")
    fiona.groups.add(facilities)
    awaiting = services.book(
        actor=alice,
        space=office.big,
        start=local(location, DAY, 14),
        end=local(location, DAY, 15),
    ).reservations[0]
    approver = new_page(fiona)
    problems: dict[str, list[str]] = {}
    link = reverse("portal:approval_link", args=[approvals.link_token(awaiting, "approve")])
    for url in ("/approvals/", link):
        check(approver, live_server, url, problems)
    booked = services.book(
        actor=alice,
        space=office.small,
        start=local(location, DAY, 10),
        end=local(location, DAY, 11),
    ).reservations[0]
    SyncLink.objects.update_or_create(
        reservation=booked,
        defaults={"provider": provider, "mailbox": "room@example.com", "state": "pending"},
    )
    closed = DAY + timedelta(days=1)
    Closure.objects.create(location=location, start_date=closed, end_date=closed, reason="Move")
    page = new_page(alice)
    for url in (
        f"/reservations/{booked.pk}/",
        f"/schedule/?location={location.pk}&date={closed.isoformat()}",
        f"/spaces/{office.small.pk}/check-in/",
    ):
        check(page, live_server, url, problems)
    assert problems == {}, report(problems)


def test_a_short_booking_stays_readable(new_page, live_server, office, alice):
    location = office.location
    services.book(
        actor=alice,
        space=office.small,
        start=local(location, DAY, 9),
        end=local(location, DAY, 9, 10),
        title="Stand-up",
    )
    page = new_page(alice)
    page.goto(f"{live_server.url}/schedule/?location={location.pk}&date={DAY}")
    block = page.locator(".block-mine", has_text="Stand-up")
    expect(block).to_have_attribute("title", "Stand-up, 09:00\u201309:10")
    # Ten minutes of a 13-hour day would be about 11 px wide; it keeps 2.6rem.
    assert block.bounding_box()["width"] >= 2.6 * 16 - 1
