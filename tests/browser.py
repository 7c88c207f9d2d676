"""Chromium fixtures for browser tests, in any test directory (registered by tests/conftest.py).

Browser tests (marked ``browser``) drive Debian's Chromium (/usr/bin/chromium, or CHROMIUM)
through Playwright against pytest-django's ``live_server``. Outside CI they are skipped with
a reason when Chromium is missing; in CI (CI set) a missing browser is an error, never a skip.

One definition for the whole session: Playwright's sync API refuses to start a second
instance in the thread while one runs, so a module must never define (or import) its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
