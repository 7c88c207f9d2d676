"""The schedule's floor picker and space pages in Chromium: htmx swaps, the address bar, axe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.conftest import next_weekday
from tests.portal.test_accessibility_browser import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(1)


def test_pages_of_spaces_and_the_floor_picker(
    new_page, live_server, make_location, make_space, alice, settings
):
    settings.SCHEDULE_PAGE_SIZE = 2
    tower = make_location("Tower")
    for name, floor in (("Ash", "10"), ("Beech", "2"), ("Cedar", "2"), ("Dove", ""), ("Elm", "10")):
        make_space(tower, name=name, floor=floor)
    page = new_page(alice)
    page.goto(f"{live_server.url}/schedule/?location={tower.pk}&date={DAY}")
    names = page.locator(".space-name")
    expect(names).to_have_text(["Beech", "Cedar"])
    assert not axe_violations(page, live_server)

    page.get_by_role("link", name="Next spaces").click()
    expect(names).to_have_text(["Ash", "Elm"])  # swapped in by htmx
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.get_by_text("Spaces 3\u20134 of 5")).to_be_visible()
    page.get_by_role("link", name="Next day").click()  # the day changes, the page stays
    expect(page).to_have_url(re.compile(f"date={DAY + timedelta(days=1)}&page=2"))
    expect(names).to_have_text(["Ash", "Elm"])

    page.get_by_label("Floor").select_option("2")
    expect(names).to_have_text(["Beech", "Cedar"])
    expect(page).to_have_url(re.compile(r"floor=2"))
    expect(page).not_to_have_url(re.compile(r"page="))
    expect(page.locator(".schedule-day")).to_contain_text("floor 2")
    expect(page.get_by_role("navigation", name="Pages of spaces")).to_have_count(0)
    # The grid is still one tab stop with arrow keys inside.
    page.get_by_label("Floor").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('[role=grid]')"):
            break
    page.keyboard.press("ArrowDown")
    expect(page.locator("[role=grid] :focus")).to_have_count(1)
    assert not axe_violations(page, live_server)
