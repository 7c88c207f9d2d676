"""The admin home in a real browser: each number that needs attention links to the filtered
list that shows exactly those rows (Debian's Chromium, ``tests/browser.py``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from calendars.models import (
    BindingStatus,
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    JobKind,
    JobStatus,
    LinkState,
    ProviderKind,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    TokenStatus,
    UserToken,
)
from reservations import displays
from reservations.models import Reservation, ReservationStatus
from tests.conftest import local, next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(make_user, make_location, make_space, make_reservation):
    """Two of everything that needs attention, next to one of each that does not."""
    now = timezone.now()
    thames = make_location("Thames House", time_zone="Europe/London")
    tower = make_location("Tower", time_zone="America/New_York")
    rooms = [make_space(thames, name=f"Thames {n}") for n in range(3)]
    person = make_user("dana")

    # Two conflicts and one ordinary booking, all next week.
    day = next_weekday(1)
    later = [
        make_reservation(rooms[0], user=person, start=local(thames, day, hour))
        for hour in (9, 11, 13)
    ]
    Reservation.objects.filter(pk__in=[later[0].pk, later[1].pk]).update(
        status=ReservationStatus.CONFLICTED
    )
    # Two bookings today in Thames House, one cancelled (not counted): booked next week, then
    # moved to today's noon on the London clock, whatever the time now.
    noon = local(thames, now.astimezone(thames.zone).date(), 12)
    today = [make_reservation(rooms[1], user=person, start=local(thames, day, h)) for h in (9, 11)]
    for booking, status in zip(
        today, (ReservationStatus.CONFIRMED, ReservationStatus.CANCELLED), strict=True
    ):
        Reservation.objects.filter(pk=booking.pk).update(
            start=noon, end=noon + timedelta(minutes=30), status=status
        )

    provider = CalendarProvider.objects.create(
        name="M365",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(name="graph", kind=ProviderKind.MICROSOFT),
        credential=CredentialAlias.objects.create(
            name="app", kind=ProviderKind.MICROSOFT, tenant_id="t", client_id="c"
        ),
    )
    paused = SpaceCalendar.objects.create(
        space=rooms[2], provider=provider, resource_email="r2@example.com"
    )
    SpaceCalendar.objects.filter(pk=paused.pk).update(
        status=BindingStatus.PAUSED,
        last_error="ErrorAccessDenied: Access is denied. Check credentials and try again. "
        "The application does not have permission to the mailbox r2@example.com (403).",
    )
    SpaceCalendar.objects.create(
        space=make_space(tower, name="Hudson"), provider=provider, resource_email="h@example.com"
    )
    SyncLink.objects.create(
        reservation=later[2], provider=provider, mailbox="r0@example.com", state=LinkState.FAILED
    )
    SyncLink.objects.create(
        reservation=today[0], provider=provider, mailbox="r1@example.com", state=LinkState.SYNCED
    )
    SyncJob.objects.create(kind=JobKind.EXPORT, binding=paused, status=JobStatus.RUNNING)
    SyncJob.objects.create(kind=JobKind.EXPORT, binding=paused, status=JobStatus.SUCCEEDED)
    SyncJob.objects.create(kind=JobKind.PUSH, status=JobStatus.RUNNING)
    UserToken.objects.create(
        user=person, provider=provider, account_email="d@example.com", status=TokenStatus.REVOKED
    )
    admin = make_user("ada", is_staff=True, is_superuser=True)
    shown = displays.create(space=rooms[0], name="North door", created_by=admin).display
    displays.create(space=rooms[1], name="Never paired", created_by=admin)
    shown.__class__.objects.filter(pk=shown.pk).update(
        paired_at=now - timedelta(hours=2), last_seen_at=now - timedelta(hours=1)
    )
    return admin


def _follow(page, live_server, label: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.locator("#attention li", has_text=label).locator("a.count").click()


def test_each_number_lands_on_a_list_of_exactly_those_rows(new_page, live_server, site):
    page = new_page(site, width=1366, height=900)
    refused = []  # the Content-Security-Policy refuses inline styles and scripts
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{live_server.url}/admin/")
    expect(page.locator("#attention .count.some").first).to_have_css("color", "rgb(186, 33, 33)")
    assert refused == []
    expected = {
        "Conflicts": 2,
        "Today's bookings in Thames House": 1,
        "Today's bookings in Tower": 0,
        "Room displays offline": 1,
        "Space calendars paused or failing": 1,
        "Failed pushes": 1,
        "Exports running or queued": 1,
        "Calendar tokens expiring, expired or revoked": 1,
    }
    for label, count in expected.items():
        row = page.locator("#attention li", has_text=label)
        expect(row.locator("a.count")).to_have_text(str(count))

    for label, count in expected.items():
        _follow(page, live_server, label)
        rows = page.locator("#result_list tbody tr")
        if count:
            expect(rows).to_have_count(count)
        else:
            expect(page.locator("#result_list")).to_have_count(0)  # "0 results"
        # The filter is shown as applied in the sidebar, not only carried in the URL.
        expect(page.locator("#changelist-filter")).to_be_visible()

    _follow(page, live_server, "Conflicts")
    expect(page.locator("#result_list tbody")).not_to_contain_text("Confirmed")
    _follow(page, live_server, "Room displays offline")
    expect(page.locator("#result_list tbody")).to_contain_text("North door")
    _follow(page, live_server, "Exports running or queued")
    expect(page.locator("#result_list tbody")).to_contain_text("Bulk export")


def test_sections_are_ordered_by_use(new_page, live_server, site):
    page = new_page(site)
    page.goto(f"{live_server.url}/admin/")
    captions = page.locator("#content-main .module caption").all_text_contents()
    assert [c.strip() for c in captions[:5]] == [
        "Reservations",
        "Spaces and locations",
        "Calendar sync",
        "People and access",
        "API",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/reservations/reservation/",
        "/admin/reservations/reservation/?conflicts=yes",
        "/admin/calendars/calendarprovider/",
        "/admin/calendars/spacecalendar/",
    ],
)
def test_the_key_lists_fit_a_1366_pixel_screen(new_page, live_server, site, path):
    page = new_page(site, width=1366, height=768)
    page.goto(f"{live_server.url}{path}")
    expect(page.locator("#result_list")).to_be_visible()
    overflow = page.evaluate(
        """() => {
            const box = document.querySelector('#changelist .results');
            return {scroll: box.scrollWidth, width: box.clientWidth,
                    page: document.documentElement.scrollWidth, window: window.innerWidth};
        }"""
    )
    assert overflow["scroll"] <= overflow["width"], overflow
    assert overflow["page"] <= overflow["window"], overflow


def test_a_location_time_zone_is_found_by_typing(new_page, live_server, site):
    page = new_page(site)
    page.goto(f"{live_server.url}/admin/reservations/location/add/")
    page.locator(".field-time_zone .select2-selection").click()
    page.locator(".select2-search__field").fill("kolk")
    options = page.locator(".select2-results__option")
    expect(options).to_have_text(["Asia/Kolkata"])  # not Asia/Calcutta, its old name
    options.first.click()
    assert page.locator("select#id_time_zone").input_value() == "Asia/Kolkata"
