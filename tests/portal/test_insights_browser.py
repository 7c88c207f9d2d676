"""Insights in a real browser (Chromium via Playwright): an analyst opens the page from the
navigation, filters one location and two days, and reads the hand-counted figures; the
heatmap is drawn (SVG cells with a tooltip) and its numbers open as a table."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from reservations.insights import rollup
from tests.support.insights_data import D1, D2, build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_insights_page_shows_the_hand_count_for_a_filter(
    new_page, live_server, make_location, make_space, make_user
):
    office = build(make_location, make_space, make_user)
    rollup.rebuild(D1, D2)
    analyst = make_user("fiona", perms=("reservations.view_insights",))
    page = new_page(analyst)
    page.goto(f"{live_server.url}/my/")
    page.get_by_role("link", name="Insights").click()
    page.get_by_label("Location").select_option(label="HQ")
    page.get_by_label("From", exact=True).fill(str(D1))
    page.get_by_label("To", exact=True).fill(str(D2))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"location={office.location.pk}&.*start={D1}&end={D2}"))
    expect(page.locator("#figure-utilisation")).to_have_text("21%")
    expect(page.locator("#figure-bookings")).to_have_text("5")
    expect(page.locator("#figure-released")).to_have_text("33%")
    expect(page.locator("#busiest-table tbody tr").first).to_contain_text("Desk C")
    expect(page.locator("#heatmap rect")).to_have_count(7 * 24)
    table = page.locator("#heatmap-table")
    expect(table).to_be_hidden()
    page.get_by_text("Booked minutes as a table").click()
    tuesday = table.get_by_role("row", name="Tuesday")
    expect(tuesday.get_by_role("cell").nth(10)).to_have_text("180")
    expect(page.locator("#sources-table tr[data-source='exchange'] td")).to_have_text("1")
