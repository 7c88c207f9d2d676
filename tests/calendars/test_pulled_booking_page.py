"""A booking pulled from a room calendar has no Reserva user behind it (``booked_by`` is
empty, ``requested_for`` too when the organizer is unknown): its details page answers 200
and says who booked it in plain words (issue 12: it answered 500)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calendars.sync import pull
from reservations.models import Reservation
from tests.calendars.conftest import binding_for
from tests.support.pull import KINDS, Remote, at


def pulled_booking(request, sandbox, kind: str, **event) -> Reservation:
    binding = binding_for(kind, request)
    pull.pull_binding(binding.pk)
    Remote(sandbox, kind).create("Board meeting", at(0, 9), at(0, 10), **event)
    assert pull.pull_binding(binding.pk).created == 1
    row = Reservation.objects.get(space=binding.space)
    assert row.booked_by is None and row.requested_for is None
    return row


@pytest.mark.parametrize("kind", KINDS)
def test_a_pulled_bookings_page_answers_and_names_the_calendar(
    kind, request, sandbox, admin_client
):
    row = pulled_booking(request, sandbox, kind)
    page = admin_client.get(reverse("portal:detail", args=[row.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Board meeting" in text
    calendar = "Google Calendar" if kind == "google" else "Outlook calendar"
    assert f'<dd>Someone outside Reserva <span class="muted">· from {calendar}</span>' in text


def test_a_pulled_booking_names_its_organizer_when_the_location_reads_them(
    request, sandbox, admin_client, ms_binding
):
    location = ms_binding.space.location
    location.pull_organizer_details = True
    location.save()
    organizer = {"organizer": {"emailAddress": {"name": "Olga Outlook", "address": "olga@x.test"}}}
    row = pulled_booking(request, sandbox, "microsoft", **organizer)
    page = admin_client.get(reverse("portal:detail", args=[row.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "<dt>For</dt><dd>Olga Outlook</dd>" in text
    assert "<dt>Booked by</dt><dd>Olga Outlook <span" in text


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_pulled_bookings_page_in_the_browser(request, sandbox, new_page, live_server, make_user):
    from playwright.sync_api import expect

    row = pulled_booking(request, sandbox, "google")
    admin = make_user("ada", first_name="Ada", is_staff=True, is_superuser=True)
    page = new_page(admin)
    answer = page.goto(f"{live_server.url}{reverse('portal:detail', args=[row.pk])}")
    assert answer.status == 200
    expect(page.get_by_role("heading", name="Board meeting")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Someone outside Reserva · from Google Calendar")
