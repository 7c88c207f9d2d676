"""End to end in a real browser: a person books, moves and cancels a synced room in the portal
(Debian's Chromium driven by Playwright against ``live_server``), and a real Celery worker
process, over Redis and PostgreSQL, makes the sandbox room's event follow each time.

The sandbox runs in this test process; the worker reaches it through the provider's aliases
in the shared test database, and the test reads the room mailbox through the sandbox's
control API with a bounded poll.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from playwright.sync_api import expect

from reservations.models import Reservation, ReservationStatus
from tests.calendars.conftest import MS_ROOM, remote_events, sync_worker
from tests.conftest import local, next_weekday, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

DAY = next_weekday(2)
WAIT = 60  # seconds for the worker to reach the sandbox


@pytest.fixture
def worker():
    """A real Celery worker on a private queue, with the ``sync`` tasks routed to it."""
    with sync_worker("test-push-browser") as process:
        yield process


def _starts_at(event: dict, when) -> bool:
    return event["start"]["dateTime"].startswith(when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))


def test_book_move_cancel_in_the_browser_and_the_room_follows(
    new_page,
    live_server,
    ms_binding,
    sandbox,
    make_user,
    worker,
):
    user = make_user("carol", first_name="Carol", last_name="Cole")
    space = ms_binding.space
    page = new_page(user)

    # Book: the booking form for the synced room, prefilled like a click on a free slot.
    page.goto(
        f"{live_server.url}/book/?space={space.pk}&date={DAY.isoformat()}&start=10:00&end=11:00"
    )
    page.get_by_label("Title").fill("Browser sync check")
    page.get_by_role("button", name=f"Book {space.name}").click()
    expect(page.get_by_text(f"Booked {space.name}.")).to_be_visible()
    reservation = Reservation.objects.get(title="Browser sync check")
    start = local(space.location, DAY, 10)
    assert reservation.start == start

    created = wait_for(lambda: remote_events(sandbox, "microsoft", MS_ROOM), timeout=WAIT)
    assert created and len(created) == 1, f"the worker pushed nothing within {WAIT} s"
    assert _starts_at(created[0], start)

    # Move: reschedule from My reservations.
    page.goto(f"{live_server.url}/my/")
    card = page.locator(".booking-card", has_text="Browser sync check")
    card.get_by_role("link", name="Reschedule").click()
    page.get_by_label("From").fill("14:00")
    page.get_by_label("Until").fill("15:30")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Your booking was updated.")).to_be_visible()
    moved_start = local(space.location, DAY, 14)
    reservation.refresh_from_db()
    assert reservation.start == moved_start

    def moved_remotely():
        events = remote_events(sandbox, "microsoft", MS_ROOM)
        return events if len(events) == 1 and _starts_at(events[0], moved_start) else None

    moved = wait_for(moved_remotely, timeout=WAIT)
    assert moved, f"the move did not reach the room within {WAIT} s"
    assert moved[0]["id"] == created[0]["id"]  # the same event, moved: not a second one
    assert moved[0]["end"]["dateTime"].startswith(
        local(space.location, DAY, 15, 30).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    )

    # Cancel: from the details page.
    page.get_by_role("link", name="Cancel booking").click()
    page.get_by_label("Reason").fill("Not needed")
    page.get_by_role("button", name="Cancel booking").click()
    expect(page.get_by_text("Your booking was cancelled.")).to_be_visible()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED

    gone = wait_for(lambda: not remote_events(sandbox, "microsoft", MS_ROOM), timeout=WAIT)
    assert gone, f"the cancellation did not reach the room within {WAIT} s"
