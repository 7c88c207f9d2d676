"""Fixtures for the portal tests: a small office, people, signed-in clients, and Chromium.

Browser tests (marked ``browser``) drive Debian's Chromium (/usr/bin/chromium, or CHROMIUM)
through Playwright against pytest-django's ``live_server``. Outside CI they are skipped with
a reason when Chromium is missing; in CI (CI set) a missing browser is an error, never a skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time as clock
from pathlib import Path

import pytest

from reservations.models import Amenity, Location, Space, SpaceKind

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse the
# ORM calls the tests make while it is running (SynchronousOnlyOperation).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Office:
    location: Location
    booth: Space  # room for 1
    small: Space  # room for 4, display
    big: Space  # room for 10, display + video, groups allowed
    desk: Space
    display: Amenity
    video: Amenity


@pytest.fixture
def office(make_location, make_space) -> Office:
    location = make_location("HQ", time_zone="Europe/London", opens=clock(7), closes=clock(20))
    display = Amenity.objects.create(name="Display")
    video = Amenity.objects.create(name="Video conferencing")
    booth = make_space(location, name="Booth", capacity=1)
    small = make_space(location, name="Small room", capacity=4)
    small.amenities.add(display)
    big = make_space(location, name="Big room", capacity=10, allows_group=True)
    big.amenities.add(display, video)
    desk = make_space(location, name="Desk 1", kind=SpaceKind.DESK, capacity=1)
    return Office(location, booth, small, big, desk, display, video)


@pytest.fixture
def alice(make_user):
    return make_user("alice", first_name="Alice", last_name="Archer")


@pytest.fixture
def bob(make_user):
    return make_user("bob", first_name="Bob", last_name="Baker")


@pytest.fixture
def assistant(make_user):
    return make_user("ann", first_name="Ann", perms=("reservations.book_on_behalf",))


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


# --- browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # The CI machine runs other suites alongside; give slow pages time before failing.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """``new_page(user=None, width=1280, height=900)``: a page in a fresh browser context,
    signed in as ``user`` (through the session cookie) when given."""
    contexts = []

    def make(user=None, *, width: int = 1280, height: int = 900):
        from django.test import Client

        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies["sessionid"]
            context.add_cookies(
                [{"name": "sessionid", "value": cookie.value, "url": live_server.url}]
            )
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
