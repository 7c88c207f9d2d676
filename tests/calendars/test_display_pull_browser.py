"""Room displays and room calendars (Outlook and Google through the sandbox): a booking pulled
from the room's calendar shows on the display within its 5-second poll, without a reload,
with "Reserved" for its title; and the sync rules hold on the display too (a meeting made in
Outlook is changed in Outlook, not ended from the door)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calendars.sync import pull
from reservations import displays
from reservations.models import Reservation, Source
from tests.support.pull import Remote


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["microsoft", "google"])
def test_the_display_shows_a_pulled_booking_within_the_poll(
    kind, request, sandbox, new_page, live_server
):
    from playwright.sync_api import expect

    binding = request.getfixturevalue("ms_binding" if kind == "microsoft" else "google_binding")
    pull.pull_binding(binding.pk)
    space = binding.space
    _display, token = displays.pair(displays.create(space=space).code, address="127.0.0.1")
    page = new_page(width=1280, height=800)
    page.goto(f"{live_server.url}/display/{token}/")
    expect(page.locator(".state-word")).to_have_text("Free")

    now = timezone.now().replace(second=0, microsecond=0)
    start, end = now - timedelta(minutes=5), now + timedelta(hours=1)
    Remote(sandbox, kind).create("Board meeting", start, end)
    assert pull.pull_binding(binding.pk).created == 1
    row = Reservation.objects.get(space=space)
    assert row.source == (Source.EXCHANGE if kind == "microsoft" else Source.GOOGLE)

    expect(page.locator(".state-word")).to_have_text("Busy", timeout=7_000)
    until = f"{row.end.astimezone(space.location.zone):%H:%M}"
    expect(page.locator(".state-detail")).to_contain_text(f"Reserved until {until}")
    expect(page.get_by_text("Board meeting")).to_have_count(0)  # a title never shows


@pytest.mark.django_db
def test_a_meeting_made_in_outlook_is_not_ended_from_the_display(request, sandbox, client):
    binding = request.getfixturevalue("ms_binding")
    pull.pull_binding(binding.pk)
    _display, token = displays.pair(displays.create(space=binding.space).code, address="::1")
    now = timezone.now().replace(second=0, microsecond=0)
    Remote(sandbox, "microsoft").create(
        "Board meeting", now - timedelta(minutes=5), now + timedelta(hours=1)
    )
    assert pull.pull_binding(binding.pk).created == 1
    row = Reservation.objects.get(space=binding.space)
    response = client.post(reverse("display:end", args=[token]), {"reservation": row.pk})
    assert response.status_code == 409
    assert (
        "This booking was made in Microsoft 365 (Exchange Online); change it there."
        in response.content.decode()
    )
    row.refresh_from_db()
    assert row.end == now + timedelta(hours=1) and row.version == 1
