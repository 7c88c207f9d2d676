"""The shared Copy button (static/reservations/copy.js) on the portal's one-time feed address;
the admin's API client page uses the same file (tests/api/test_admin_client_browser.py)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_new_feed_address_can_be_copied(new_page, live_server, alice):
    from playwright.sync_api import expect

    page = new_page(alice)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/profile/")
    page.get_by_role("button", name="Create a feed link").click()
    address = page.locator("#feed-address").input_value()
    assert address.startswith("http")
    copy = page.locator("button[data-copy='#feed-address']")
    expect(copy).to_have_text("Copy")  # shown: the browser offers the clipboard
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == address
