"""The schedule's buffer edges in a real browser, under the Content-Security-Policy: laid out
by the stylesheet alone (no style attribute), hatched, either side of the booking and as wide
as their minutes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reservations import services
from tests.conftest import local, next_weekday
from tests.support.browser import Watched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(2)


def test_buffers_are_hatched_edges_either_side_of_the_booking(
    new_page, live_server, office, alice, bob
):
    office.small.setup_minutes, office.small.cleanup_minutes = 15, 30
    office.small.save()
    services.book(
        actor=bob, space=office.small, start=local(office.location, DAY, 10),
        end=local(office.location, DAY, 11), title="Bob's workshop",
    )  # fmt: skip
    watched = Watched(new_page(alice))
    page = watched.page
    watched.goto(f"{live_server.url}/schedule/?location={office.location.pk}&date={DAY}")

    block = page.locator(".block-locked").first
    setup, cleanup = page.locator(".buffer-setup"), page.locator(".buffer-cleanup")
    expect(setup).to_have_count(1)
    expect(cleanup).to_have_count(1)
    box, before, after = block.bounding_box(), setup.bounding_box(), cleanup.bounding_box()
    # Setup ends where the booking starts, cleanup starts where it ends (to a pixel or so).
    assert abs(before["x"] + before["width"] - box["x"]) <= 2
    assert abs(after["x"] - (box["x"] + box["width"])) <= 2
    # 15, 60 and 30 minutes: a quarter and a half of the booking's width.
    assert before["width"] == pytest.approx(box["width"] / 4, rel=0.15)
    assert after["width"] == pytest.approx(box["width"] / 2, rel=0.15)
    hatch = setup.evaluate("e => getComputedStyle(e).backgroundImage")
    assert "repeating-linear-gradient" in hatch
    assert page.locator("[style]").count() == 0
    expect(page.get_by_text("Setup / cleanup (kept free)")).to_be_visible()
    watched.assert_clean()
