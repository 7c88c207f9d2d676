"""Screenshots of the portal with demo data: ``make screenshots`` (or run this file).

Starts Reserva on a throw-away SQLite database with the demo data, drives Debian's Chromium
through Playwright (never downloads a browser) and saves PNGs into ``docs/screenshots/``.
Needs ``/usr/bin/chromium`` (``apt-get install chromium``) or CHROMIUM=/path/to/chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the browser tests' Chromium

OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 740}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def next_weekday(today: date) -> date:
    day = today + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603 - fixed argv


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not start")


# The demo user whose screens are shown: Alice works in London but lives on Paris time, so
# the pages show both the location's time and hers.
PREPARE = """
from django.contrib.auth import get_user_model
from reservations.models import Profile
alice = get_user_model().objects.get(username="alice")
profile = Profile.for_user(alice)
profile.time_zone = "Europe/Paris"
profile.save()
"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            DEBUG="true",
            DATABASE_URL=f"sqlite:///{tmp}/screens.sqlite3",
            MEDIA_ROOT=f"{tmp}/media",  # the demo's drawn floor maps and photos
            EMAIL_URL="dummymail://",
            PYTHONPATH=str(ROOT),
        )
        env.pop("REDIS_URL", None)
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "seed_demo", "-v0")
        manage(env, "shell", "-c", PREPARE)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 - fixed argv, our own manage.py
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(f"{base}/healthz")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    shoot(browser, base)
                    shoot_display(browser, base, env)
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"Screenshots saved in {OUT.relative_to(ROOT)}/")


def shoot(browser, base: str) -> None:
    day = next_weekday(date.today()).isoformat()
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "reserva-alice")
    save(page, "01-sign-in")
    page.click("button[type=submit]:visible")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/?date={day}&start=10:00&duration=60&capacity=4")
    save(page, "02-find-a-space")

    page.click(".space-card a.btn >> nth=0")
    page.wait_for_load_state()
    form_url = page.url
    page.fill("input[name=title]", "Design review")
    page.select_option("select[name=repeat]", "weekly")
    page.fill("input[name=count]", "4")
    save(page, "03-booking-form")
    page.click("#book-submit")
    # Alice may book 14 days ahead (README "Limits per person"): the series offers the dates
    # within her window.
    free_dates_only = page.locator("button[name=skip_unavailable]")
    if free_dates_only.count():
        free_dates_only.click()
    page.wait_for_url("**/reservations/*/")
    save(page, "04-details")

    # A conflict: the same slot again, in the room that was just booked: the room's next free
    # times, and the other rooms free then for as many people as searched for (4).
    page.goto(form_url)
    page.click("#book-submit")
    page.wait_for_selector("#conflict")
    save(page, "05-conflict-alternatives")

    page.goto(f"{base}/schedule/?date={day}")
    locked = page.locator(".block-locked").first
    locked.focus()
    save(page, "06-schedule")

    # The demo's Thames rooms keep 15 minutes free before and after every booking: hatched
    # edges either side of the noon "Lunch and learn" (README "Buffers").
    page.evaluate("document.activeElement && document.activeElement.blur()")
    thames = page.locator(".schedule-row", has=page.locator(".space-name", has_text="Thames"))
    legend, row = page.locator(".legend").bounding_box(), thames.first.bounding_box()
    top = legend["y"] - 8
    page.screenshot(
        path=str(OUT / "10-schedule-buffers.png"),
        full_page=True,
        clip={
            "x": 0,
            "y": top,
            "width": DESKTOP["width"],
            "height": row["y"] + 2 * row["height"] - top,
        },
    )
    print("  10-schedule-buffers.png")

    # Thames's week, from its name in the schedule (README "Week view and next free time").
    page.get_by_role("link", name="Thames: week view").click()
    page.wait_for_selector(".week")
    save(page, "16-week-view")

    page.goto(f"{base}/my/")
    save(page, "07-my-reservations", full_page=False)

    phone = browser.new_page(viewport=PHONE, device_scale_factor=2)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{base}/?date={day}&start=10:00&duration=60&capacity=4")
    save(phone, "08-phone-find", full_page=False)
    phone.goto(f"{base}/schedule/?date={day}")
    save(phone, "09-phone-schedule", full_page=False)
    shoot_map(page, base, day)
    shoot_limits(browser, base)
    shoot_admin(browser, base)
    shoot_insights(browser, base)


def shoot_map(page, base: str, day: str) -> None:
    """Find a space as a map: floor 1 of London HQ, Thames's popover open (README "Floor
    maps and photos")."""
    import re

    page.set_viewport_size(DESKTOP)
    page.goto(f"{base}/?date={day}&start=10:00&duration=60&capacity=4&view=map&floor=1")
    page.get_by_role("button", name=re.compile(r"^Thames, ")).click()
    page.wait_for_selector(".space-popover:popover-open")
    save(page, "15-floor-map", full_page=False)


def shoot_limits(browser, base: str) -> None:
    """Carol, a contractor at her limit of two active bookings at London HQ, tries a third
    (README "Limits per person")."""
    day = (next_weekday(date.today()) + timedelta(days=7)).isoformat()
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", "carol")
    page.fill("input[name=password]", "reserva-carol")
    page.click("button[type=submit]:visible")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/schedule/?date={day}")
    page.get_by_role("link", name="Book Trent from 10:00").click()
    page.fill("input[name=title]", "Site survey")
    page.click("#book-submit")
    page.wait_for_selector(".alert-error")
    save(page, "12-limit-refused", full_page=False)
    page.close()


def shoot_admin(browser, base: str) -> None:
    """The demo admin's pages: the approvals queue, where alice's booking of Trent awaits them
    (README "Approvals"), the admin home (README "The admin") and Severn's printable check-in
    QR code (README "Check-in")."""
    admin = browser.new_page(viewport=DESKTOP)
    admin.goto(f"{base}/accounts/login/")
    admin.fill("input[name=login]", "admin")
    admin.fill("input[name=password]", "reserva-admin")
    admin.click("button[type=submit]:visible")
    admin.wait_for_url(f"{base}/")
    admin.goto(f"{base}/approvals/")
    save(admin, "11-approvals-queue", full_page=False)

    # The admin home: what needs attention, each count a link to its filtered list, then the
    # pages by use (README "The admin").
    admin.set_viewport_size({"width": 1366, "height": 860})
    admin.goto(f"{base}/admin/")
    admin.wait_for_selector("#attention")
    save(admin, "18-admin-home", full_page=False)
    admin.set_viewport_size(DESKTOP)

    admin.goto(f"{base}/admin/reservations/space/?q=Severn")
    admin.click("#result_list tbody tr >> nth=0 >> a")
    admin.get_by_role("link", name="Check-in QR code").click()
    save(admin, "13-check-in-qr", full_page=False)


# The room display shows the room as it is now; the demo's London HQ is closed at weekends and
# at night, when the display is dark. For a picture of a working day, London opens today around
# the clock on this throw-away database and Thames gets a booking later today.
OPEN_NOW = """
from datetime import time, timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from reservations import services
from reservations.models import Location, OpeningHours, Space
london = Location.objects.get(name="London HQ")
today = timezone.now().astimezone(london.zone)
OpeningHours.objects.update_or_create(
    location=london, weekday=today.weekday(), defaults={"opens": time(0), "closes": time(23, 59)}
)
thames = Space.objects.get(location=london, name="Thames")
bob = get_user_model().objects.get(username="bob")
start = (today + timedelta(minutes=75)).replace(minute=0, second=0, microsecond=0)
try:
    services.book(actor=bob, space=thames, start=start, end=start + timedelta(hours=1),
                  title="Roadmap", public_nickname="Team Atlas")
except services.BookingError:
    pass
"""


def shoot_display(browser, base: str, env: dict[str, str]) -> None:
    """The demo's room display of Thames on a 1280x800 tablet (README "Room displays")."""
    manage(env, "shell", "-c", OPEN_NOW)
    tablet = browser.new_page(viewport={"width": 1280, "height": 800})
    tablet.goto(f"{base}/display/demo-thames-display/")
    tablet.wait_for_selector(".state-word")
    save(tablet, "14-room-display", full_page=False)
    tablet.close()


def shoot_insights(browser, base: str) -> None:
    """The demo admin's Insights page over the demo's eight weeks of past bookings: London HQ,
    the last four weeks (README "Insights")."""
    admin = browser.new_page(viewport=DESKTOP)
    admin.goto(f"{base}/accounts/login/")
    admin.fill("input[name=login]", "admin")
    admin.fill("input[name=password]", "reserva-admin")
    admin.click("button[type=submit]:visible")
    admin.wait_for_url(f"{base}/")
    admin.goto(f"{base}/insights/")
    admin.get_by_label("Location").select_option(label="London HQ")
    admin.get_by_role("button", name="Show").click()
    admin.wait_for_selector("#heatmap svg")
    save(admin, "17-insights")
    admin.close()


def save(page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
    print(f"  {name}.png")


if __name__ == "__main__":
    main()
